"""`import larq_bamsprod` selects Keras 2 for Larq, or says exactly what to do."""

import os
import subprocess
import sys

import pytest
import tensorflow as tf

# TensorFlow 2.15's tf.keras is Keras 2 whatever is imported first; from 2.16 on it is
# Keras 3 unless TF_USE_LEGACY_KERAS=1 is set before TensorFlow loads.
KERAS_3_POSSIBLE = tuple(int(p) for p in tf.__version__.split(".")[:2]) >= (2, 16)


def _python(code: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=300)


def test_import_first_selects_tf_keras_for_larq():
    result = _python(
        "import larq_bamsprod, os, tensorflow as tf, larq\n"
        "print(os.environ['TF_USE_LEGACY_KERAS'], tf.keras.layers.Dense.__module__.split('.')[0])\n"
        "print(isinstance(larq_bamsprod.legacy.BAMSProd(), tf.keras.optimizers.legacy.Optimizer))"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["1", "tf_keras", "True"]


TF_KERAS_LINE = "pip install 'tf-keras~={}.{}.0'".format(*tf.__version__.split(".")[:2])
"""The tf-keras of the installed TensorFlow: tf-keras X.Y requires TensorFlow X.Y, so the
advised line never moves TensorFlow (#28 item 13)."""


def test_import_imports_no_tensorflow():
    result = _python("import sys, larq_bamsprod\nprint('tensorflow' in sys.modules)")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["False"]


@pytest.mark.skipif(not KERAS_3_POSSIBLE, reason="tf.keras cannot be Keras 3 on TF 2.15")
def test_use_after_keras_3_raises_with_the_fix():
    result = _python("import tensorflow as tf\ntf.keras.layers.Dense\nimport larq_bamsprod\n"
                     "larq_bamsprod.BAMSProd")
    assert result.returncode != 0
    assert "ImportError: larq_bamsprod needs Keras 2 (tf-keras)" in result.stderr
    assert "export TF_USE_LEGACY_KERAS=1" in result.stderr
    assert "import larq_bamsprod before tensorflow" in result.stderr
    assert "pip install" not in result.stderr  # tf-keras is installed: nothing to install


@pytest.mark.skipif(not KERAS_3_POSSIBLE, reason="tf.keras cannot be Keras 3 on TF 2.15")
def test_legacy_keras_turned_off_is_named_in_the_error():
    env_code = "import os\nos.environ['TF_USE_LEGACY_KERAS'] = '0'\n"
    result = _python(env_code + "import larq_bamsprod\nfrom larq_bamsprod import legacy")
    assert result.returncode != 0
    assert "TF_USE_LEGACY_KERAS=0 is set" in result.stderr
    assert "TensorFlow was imported before" not in result.stderr


# tf-keras made invisible, as if not installed: no distribution metadata, no module.
_WITHOUT_TF_KERAS = """
import importlib.abc, importlib.metadata as md, sys
real_version = md.version
def version(dist):
    if dist.replace("_", "-") == "tf-keras":
        raise md.PackageNotFoundError(dist)
    return real_version(dist)
md.version = version
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] == "tf_keras":
            raise ModuleNotFoundError(name)
sys.meta_path.insert(0, Block())
"""


@pytest.mark.skipif(not KERAS_3_POSSIBLE, reason="tf-keras is optional only on TF >= 2.16")
def test_without_tf_keras_import_works_and_use_names_tf_keras():
    result = _python(
        _WITHOUT_TF_KERAS + "import os, larq_bamsprod\n"
        "print(os.environ.get('TF_USE_LEGACY_KERAS'))\nlarq_bamsprod.BAMSProd"
    )
    assert result.stdout.split() == ["None"], result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: larq_bamsprod's tf.keras optimizers need Keras 2 "
                           "(tf-keras), which is not installed"), result.stderr[-2000:]
    assert TF_KERAS_LINE in last
    assert "larq_bamsprod.keras3" in last


@pytest.mark.skipif(KERAS_3_POSSIBLE, reason="on TF >= 2.16 importing TF first gives Keras 3")
def test_import_after_tensorflow_works_where_tf_keras_is_always_keras_2():
    result = _python(
        "import tensorflow as tf\ntf.keras.layers.Dense\nimport larq_bamsprod\n"
        "print(isinstance(larq_bamsprod.legacy.BAMSProd(), tf.keras.optimizers.legacy.Optimizer))"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["True"]


_SAVE_CASE = """
import larq_bamsprod, numpy as np, sys
import tensorflow as tf, larq as lq
from larq_bamsprod import legacy
model = tf.keras.Sequential([tf.keras.Input((3,)), lq.layers.QuantDense(
    2, kernel_quantizer="ste_sign", kernel_constraint="weight_clip")])
model.compile(lq.optimizers.CaseOptimizer(
    (lq.optimizers.Bop.is_binary_variable, legacy.BAMSProd()),
    default_optimizer=tf.keras.optimizers.legacy.Adam()), "mse")
model.fit(np.ones((4, 3)), np.ones((4, 2)), verbose=0)
model.save(sys.argv[1])
"""


def test_a_larq_user_loads_a_case_optimizer_model_after_import_larq_bamsprod(tmp_path):
    # CaseOptimizer names its inner optimizers "BAMSProd": the class must be registered
    # although `import larq_bamsprod` no longer imports it (it does once larq is imported).
    path = str(tmp_path / "case.h5")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    saved = subprocess.run([sys.executable, "-c", _SAVE_CASE, path], env=env,
                           capture_output=True, text=True, timeout=300)
    assert saved.returncode == 0, saved.stderr[-2000:]
    loaded = _python(
        "import larq_bamsprod, sys\nimport tensorflow as tf, larq\n"
        f"model = tf.keras.models.load_model({path!r})\n"
        "print([type(o).__name__ for _, o in model.optimizer.pred_opt_pairs])"
    )
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    assert loaded.stdout.split() == ["['BAMSProd']"]
