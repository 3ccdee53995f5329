"""Helpers of the Keras 3 tests (the backend, its JIT, conversion to NumPy)."""

import keras
import numpy as np
import pytest

BACKEND = keras.backend.backend()


def jit(fn):
    """``fn`` compiled by the backend's JIT (XLA on JAX and TensorFlow)."""
    if BACKEND == "jax":
        import jax

        return jax.jit(fn)
    if BACKEND == "tensorflow":
        import tensorflow as tf

        return tf.function(fn, jit_compile=True)
    pytest.skip(f"no jit_compile on the {BACKEND} backend")


def as_numpy(values):
    return [np.asarray(keras.ops.convert_to_numpy(v)) for v in values]
