"""Small seeded data and models shared by the Keras, serialization and Larq tests."""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def regression_data(n: int = 128, seed: int = 0):
    """Inputs of width 4 and a smooth nonlinear target a small MLP can learn."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 4)).astype("float32")
    w = np.array([[1.5], [-2.0], [0.5], [1.0]])
    y = (np.tanh(x @ w) + 0.5 * x[:, :1]).astype("float32")
    return x, y


def tiny_model() -> tf.keras.Model:
    """A two-layer regression MLP; seed with ``tf.keras.utils.set_random_seed`` first."""
    return tf.keras.Sequential([
        tf.keras.Input((4,)),
        tf.keras.layers.Dense(16, activation="tanh"),
        tf.keras.layers.Dense(1),
    ])


def tiny_larq_model() -> tf.keras.Model:
    """:func:`tiny_model` with a binary first layer (Larq's ``QuantDense``, ``ste_sign``
    kernel, clipped weights), for the tests of the binary-weight paths."""
    import larq as lq

    return tf.keras.Sequential([
        tf.keras.Input((4,)),
        lq.layers.QuantDense(16, kernel_quantizer="ste_sign", kernel_constraint="weight_clip",
                             use_bias=False),
        tf.keras.layers.Activation("tanh"),
        tf.keras.layers.Dense(1),
    ])
