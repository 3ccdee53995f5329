"""Keras 3 tests: run on the backend named by KERAS_BACKEND (jax if unset and installed).

``make test`` runs them on JAX (``.venv-keras3-jax``: Keras 3 and JAX, no TensorFlow) and
on TensorFlow (``.venv-tf221``), each with ``--confcutdir=tests/keras3`` so that
``tests/conftest.py`` (which imports TensorFlow) is not loaded. With PyTorch installed,
``KERAS_BACKEND=torch`` runs them there (the jit paths skip).
"""

# isort: off
import importlib.util
import os
import sys
from pathlib import Path

if "KERAS_BACKEND" not in os.environ:
    for _backend in ("jax", "tensorflow", "torch"):
        if importlib.util.find_spec(_backend) is not None:
            os.environ["KERAS_BACKEND"] = _backend
            break

_TESTS = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(_TESTS), str(_TESTS / "support")]  # bamsprod_reference, invalid_arguments

import keras  # noqa: E402
import pytest  # noqa: E402

# isort: on


@pytest.fixture(autouse=True)
def keras_session():
    """A fresh Keras session with every random seed set to 0."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    yield
    keras.backend.clear_session()
