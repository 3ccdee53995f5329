"""`import larq_bamsprod` selects Keras 2 for Larq, or says exactly what to do."""

import os
import subprocess
import sys


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


def test_import_after_keras_3_raises_with_the_fix():
    result = _python("import tensorflow as tf\ntf.keras.layers.Dense\nimport larq_bamsprod")
    assert result.returncode != 0
    assert "ImportError: larq_bamsprod needs Keras 2 (tf-keras)" in result.stderr
    assert "export TF_USE_LEGACY_KERAS=1" in result.stderr
    assert "import larq_bamsprod before tensorflow" in result.stderr
