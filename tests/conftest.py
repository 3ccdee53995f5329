"""Shared fixtures. ``larq_bamsprod`` is imported first so that ``tf.keras`` is Keras 2."""

# isort: off
import larq_bamsprod  # noqa: F401  (must precede every TensorFlow import)
import sys
from pathlib import Path

import pytest
import tensorflow as tf
# isort: on

sys.path.insert(0, str(Path(__file__).resolve().parent / "support"))  # the tests' helpers


@pytest.fixture
def keras_session():
    """A fresh Keras session with every random seed set to 0."""
    tf.keras.backend.clear_session()
    tf.keras.utils.set_random_seed(0)
    yield
    tf.keras.backend.clear_session()


@pytest.fixture(params=["eager", "tf_function", "jit_compile"])
def execution_mode(request):
    """How a training step runs: ``wrap(fn)`` returns fn eager, in tf.function, or XLA."""
    mode = request.param

    def wrap(fn):
        if mode == "eager":
            return fn
        return tf.function(fn, jit_compile=(mode == "jit_compile"))

    wrap.mode = mode
    return wrap


@pytest.fixture
def mixed_float16():
    """Run the test under the ``mixed_float16`` Keras policy, restored afterwards."""
    previous = tf.keras.mixed_precision.global_policy()
    tf.keras.mixed_precision.set_global_policy("mixed_float16")
    yield
    tf.keras.mixed_precision.set_global_policy(previous)


@pytest.fixture(params=["dense", "sparse"])
def gradient_form(request):
    """``form(grad)``: a dense gradient as is, or as a ``tf.IndexedSlices`` with the same
    dense equivalent, every row split over two entries of the same index."""
    if request.param == "dense":
        return lambda grad: grad

    def as_slices(grad):
        rows = tf.shape(grad, out_type=tf.int64)[0]
        indices = tf.concat([tf.range(rows), tf.reverse(tf.range(rows), [0])], axis=0)
        values = tf.concat([0.25 * grad, 0.75 * tf.reverse(grad, [0])], axis=0)
        return tf.IndexedSlices(values, indices, dense_shape=tf.shape(grad, out_type=tf.int64))

    return as_slices
