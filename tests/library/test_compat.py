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


@pytest.mark.skipif(not KERAS_3_POSSIBLE, reason="tf.keras cannot be Keras 3 on TF 2.15")
def test_import_after_keras_3_raises_with_the_fix():
    result = _python("import tensorflow as tf\ntf.keras.layers.Dense\nimport larq_bamsprod")
    assert result.returncode != 0
    assert "ImportError: larq_bamsprod needs Keras 2 (tf-keras)" in result.stderr
    assert "export TF_USE_LEGACY_KERAS=1" in result.stderr
    assert "import larq_bamsprod before tensorflow" in result.stderr


@pytest.mark.skipif(KERAS_3_POSSIBLE, reason="on TF >= 2.16 importing TF first gives Keras 3")
def test_import_after_tensorflow_works_where_tf_keras_is_always_keras_2():
    result = _python(
        "import tensorflow as tf\ntf.keras.layers.Dense\nimport larq_bamsprod\n"
        "print(isinstance(larq_bamsprod.legacy.BAMSProd(), tf.keras.optimizers.legacy.Optimizer))"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["True"]
