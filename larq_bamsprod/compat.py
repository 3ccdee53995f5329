"""The one place that decides which TensorFlow and Keras are present.

Larq 0.14 and larq-zoo 2.4 are built on Keras 2. On TensorFlow >= 2.16, ``tf.keras`` is
Keras 3 unless ``TF_USE_LEGACY_KERAS=1`` is set before TensorFlow is first imported, in
which case ``tf.keras`` is the ``tf-keras`` package (Keras 2). On TensorFlow 2.15 Keras 2
is built in and the variable must *not* be set unless ``tf-keras`` is installed too.
Nothing else in the package branches on versions.

Importing this module sets the variable but imports no TensorFlow: TensorFlow is imported,
and ``tf.keras`` checked to be Keras 2, when a tf.keras name (``Optimizer``,
``LegacyOptimizer``, ...) is first read from here, i.e. when the tf.keras classes are used.
:mod:`larq_bamsprod.keras3` needs neither TensorFlow nor tf-keras.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import os
import sys
from importlib import metadata


def _installed_version(dist: str) -> tuple[int, ...] | None:
    try:
        text = metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None
    parts = []
    for piece in text.split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def _tf_version() -> tuple[int, ...] | None:
    return _installed_version("tensorflow") or _installed_version("tensorflow-cpu")


def _select_keras_2() -> None:
    """Set ``TF_USE_LEGACY_KERAS=1`` when tf-keras is installed and the setting still has
    an effect. Without tf-keras it would break ``tf.keras`` (a Keras 3 user's)."""
    if "tensorflow" in sys.modules:
        return  # too late to choose; `check_keras_2` reports a wrong choice
    if _tf_version() is not None and _installed_version("tf-keras") is not None:
        os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")


_select_keras_2()


class _RegisterAfterLarq(importlib.abc.MetaPathFinder):
    """Imports :mod:`larq_bamsprod.legacy` right after ``larq`` is imported.

    Larq's ``CaseOptimizer`` records its inner optimizers by bare name (``"BAMSProd"``),
    which only a registered class resolves; before imports became lazy, ``import
    larq_bamsprod`` registered it, so a Larq user's ``load_model`` needed nothing more.
    TensorFlow is loaded by then (Larq imports it), so this costs no import time.
    """

    def find_spec(self, name, path, target=None):
        if name != "larq":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            exec_module = spec.loader.exec_module

            def exec_then_register(module):
                exec_module(module)
                _register_legacy()

            spec.loader.exec_module = exec_then_register
        return spec


def _register_legacy() -> None:
    try:
        importlib.import_module("larq_bamsprod.legacy")
    except ImportError:
        pass  # tf.keras is not Keras 2 here: using the class will say why


if "larq" in sys.modules:
    _register_legacy()
else:
    sys.meta_path.insert(0, _RegisterAfterLarq())


def tf_keras_install_line() -> str:
    """The pip line that installs the tf-keras of the installed TensorFlow (tf-keras X.Y
    requires TensorFlow X.Y, so any other version would move TensorFlow)."""
    major, minor = (_tf_version() or (2, 21))[:2]
    return f"pip install 'tf-keras~={major}.{minor}.0'"


def check_keras_2() -> None:
    """Raise an ``ImportError`` with instructions if ``tf.keras`` is not Keras 2.

    Called before ``tf.keras`` is first touched: on TensorFlow >= 2.16 without tf-keras,
    touching it with ``TF_USE_LEGACY_KERAS=1`` raises TensorFlow's own, less helpful error.
    """
    import tensorflow as tf

    tf_version = tuple(int(p) for p in tf.__version__.split(".")[:2])
    if tf_version < (2, 16):
        return  # tf.keras is Keras 2 whatever the environment says
    fix = (f"Fix: `{tf_keras_install_line()}` (the tf-keras of your TensorFlow; it does "
           "not change TensorFlow)")
    keras3 = "For Keras 3, use larq_bamsprod.keras3 instead."
    if _installed_version("tf-keras") is None:
        raise ImportError(
            f"larq_bamsprod's tf.keras optimizers need Keras 2 (tf-keras), which is not "
            f"installed (TensorFlow {tf.__version__}). {fix}. {keras3}"
        )
    setting = os.environ.get("TF_USE_LEGACY_KERAS")
    if setting is not None and setting not in ("1", "true", "True"):
        raise ImportError(
            f"larq_bamsprod's tf.keras optimizers need Keras 2 (tf-keras), but "
            f"TF_USE_LEGACY_KERAS={setting} is set, so `tf.keras` is Keras 3 (TensorFlow "
            f"{tf.__version__}). Fix: unset it, or `export TF_USE_LEGACY_KERAS=1`, before "
            f"starting Python. {keras3}"
        )
    version = str(getattr(tf.keras, "__version__", "2"))  # tf-keras 2.x does not set it
    if version.startswith("3"):
        raise ImportError(
            "larq_bamsprod needs Keras 2 (tf-keras), but `tf.keras` is Keras "
            f"{version} (TensorFlow {tf.__version__}): TensorFlow was imported before "
            "larq_bamsprod without TF_USE_LEGACY_KERAS=1. Fix: either `export "
            "TF_USE_LEGACY_KERAS=1` before starting Python or import larq_bamsprod before "
            f"tensorflow. {keras3}"
        )


_TF_NAMES = ("keras", "LegacyOptimizer", "Optimizer", "LearningRateSchedule",
             "register_serializable", "TF_VERSION")


def __getattr__(name: str):
    # TensorFlow is imported, and tf.keras checked, only when a tf.keras class is used
    # (PEP 562), so that `import larq_bamsprod.keras3` imports no TensorFlow.
    if name not in _TF_NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    check_keras_2()
    import tensorflow as tf

    values = {
        "keras": tf.keras,
        "LegacyOptimizer": tf.keras.optimizers.legacy.Optimizer,
        "Optimizer": tf.keras.optimizers.Optimizer,
        "LearningRateSchedule": tf.keras.optimizers.schedules.LearningRateSchedule,
        "register_serializable": tf.keras.utils.register_keras_serializable,
        "TF_VERSION": tuple(int(p) for p in tf.__version__.split(".")[:2]),
    }
    globals().update(values)
    return values[name]


def in_xla_context() -> bool:
    """True while tracing code that XLA will compile (``jit_compile=True``, also nested).

    TensorFlow has no public test for this; tf-keras and TensorFlow's own ops ask the
    graph's control-flow context, as here. Any failure to ask reads as "not XLA".
    """
    import tensorflow as tf

    graph = tf.compat.v1.get_default_graph()
    try:
        while graph is not None:
            context = graph._get_control_flow_context()
            while context is not None:
                if context.IsXLAContext():
                    return True
                context = context.outer_context
            graph = getattr(graph, "outer_graph", None)
    except AttributeError:
        return False
    return False
