"""The one place that decides which TensorFlow and Keras are present.

Larq 0.14 and larq-zoo 2.4 are built on Keras 2. On TensorFlow >= 2.16, ``tf.keras`` is
Keras 3 unless ``TF_USE_LEGACY_KERAS=1`` is set before TensorFlow is first imported, in
which case ``tf.keras`` is the ``tf-keras`` package (Keras 2). On TensorFlow 2.15 Keras 2
is built in and the variable must *not* be set unless ``tf-keras`` is installed too.
Nothing else in the package branches on versions.
"""

from __future__ import annotations

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


def _select_keras_2() -> None:
    """Set ``TF_USE_LEGACY_KERAS=1`` when it is needed and still has an effect."""
    if "tensorflow" in sys.modules:
        return  # too late to choose; `check_keras_2` reports a wrong choice
    tf_version = _installed_version("tensorflow") or _installed_version("tensorflow-cpu")
    has_tf_keras = _installed_version("tf-keras") is not None
    if tf_version is not None and (tf_version >= (2, 16) or has_tf_keras):
        os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")


_select_keras_2()

import tensorflow as tf  # noqa: E402


def check_keras_2() -> None:
    """Raise an ``ImportError`` with instructions if ``tf.keras`` is Keras 3."""
    version = str(getattr(tf.keras, "__version__", "2"))  # tf-keras 2.x does not set it
    if not version.startswith("3"):
        return
    raise ImportError(
        "larq_bamsprod needs Keras 2 (tf-keras), but `tf.keras` is Keras "
        f"{version} (TensorFlow {tf.__version__}): TensorFlow was imported before "
        "larq_bamsprod without TF_USE_LEGACY_KERAS=1. Fix: `pip install "
        "'tf-keras~=2.19.0'`, then either `export TF_USE_LEGACY_KERAS=1` before starting "
        "Python or import larq_bamsprod before tensorflow."
    )


check_keras_2()

keras = tf.keras
LegacyOptimizer = tf.keras.optimizers.legacy.Optimizer
Optimizer = tf.keras.optimizers.Optimizer
LearningRateSchedule = tf.keras.optimizers.schedules.LearningRateSchedule
register_serializable = tf.keras.utils.register_keras_serializable

TF_VERSION = tuple(int(p) for p in tf.__version__.split(".")[:2])


def in_xla_context() -> bool:
    """True while tracing code that XLA will compile (``jit_compile=True``, also nested).

    TensorFlow has no public test for this; tf-keras and TensorFlow's own ops ask the
    graph's control-flow context, as here. Any failure to ask reads as "not XLA".
    """
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
