"""The binary layers: Larq's ste_sign and weight_clip, QuantDense/QuantConv2D against
Keras' own Dense/Conv2D on the quantized values, routing of binary kernels, and a binary
network that learns through ``keras.optimizers.MultiOptimizer``."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import ops
from keras3_support import BACKEND, as_numpy

from larq_bamsprod.keras3 import BAMSProd, BinaryRouter, Bop, is_binary_variable, layers
from larq_bamsprod.keras3.constraints import WeightClip
from larq_bamsprod.keras3.quantizers import SteSign

X = np.array([-2.0, -1.0, -0.5, -0.0, 0.0, 0.5, 1.0, 1.5], np.float32)


def _value_and_grad(fn, x):
    if BACKEND == "jax":
        import jax

        return jax.value_and_grad(lambda v: ops.sum(fn(v)))(x)
    if BACKEND == "tensorflow":
        import tensorflow as tf

        x = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.reduce_sum(fn(x))
        return y, tape.gradient(y, x)
    import torch

    x = torch.tensor(x, requires_grad=True)
    y = fn(x).sum()
    y.backward()
    return y, x.grad


def test_ste_sign_is_larqs_sign_forward_and_clipped_identity_backward():
    # Larq: ste_sign(x) = sign(x) with sign(0) = +1; gradient 1 where |x| <= 1, else 0.
    out = as_numpy([SteSign()(ops.convert_to_tensor(X))])[0]
    np.testing.assert_array_equal(out, [-1, -1, -1, 1, 1, 1, 1, 1])
    _, grad = _value_and_grad(SteSign(), X)
    np.testing.assert_array_equal(as_numpy([grad])[0], [0, 1, 1, 1, 1, 1, 1, 0])


def test_ste_sign_clip_value_moves_the_gradient_window():
    _, grad = _value_and_grad(SteSign(clip_value=0.5), X)
    np.testing.assert_array_equal(as_numpy([grad])[0], [0, 0, 1, 1, 1, 1, 0, 0])


def test_weight_clip_clips_to_the_unit_interval():
    out = as_numpy([WeightClip()(ops.convert_to_tensor(X))])[0]
    np.testing.assert_array_equal(out, np.clip(X, -1, 1))


def test_unknown_quantizer_name_lists_the_choices():
    with pytest.raises(ValueError, match=r"unknown quantizer 'approx_sign'.*\['ste_sign'\]"):
        layers.QuantDense(2, kernel_quantizer="approx_sign")


def test_quant_dense_is_dense_on_the_quantized_input_and_kernel():
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    layer = layers.QuantDense(3, input_quantizer="ste_sign", kernel_quantizer="ste_sign")
    out = as_numpy([layer(x)])[0]
    kernel, bias = as_numpy(layer.weights)
    expected = np.where(x >= 0, 1, -1) @ np.where(kernel >= 0, 1, -1) + bias
    np.testing.assert_allclose(out, expected, rtol=1e-6)


def test_quant_conv2d_is_conv2d_on_the_quantized_input_and_kernel():
    x = np.random.default_rng(0).normal(size=(2, 6, 6, 3)).astype(np.float32)
    layer = layers.QuantConv2D(4, 3, input_quantizer="ste_sign", kernel_quantizer="ste_sign",
                               padding="same", use_bias=False)
    out = as_numpy([layer(x)])[0]
    plain = keras.layers.Conv2D(4, 3, padding="same", use_bias=False)
    plain.build(x.shape)
    plain.set_weights([np.where(as_numpy(layer.weights)[0] >= 0, 1.0, -1.0)])
    expected = as_numpy([plain(np.where(x >= 0, 1.0, -1.0).astype(np.float32))])[0]
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_only_kernels_quantized_to_one_bit_are_binary_variables():
    model = keras.Sequential([
        keras.Input((4,)),
        layers.QuantDense(3, kernel_quantizer="ste_sign", kernel_constraint="weight_clip"),
        layers.QuantDense(2, input_quantizer="ste_sign"),
    ])
    assert [is_binary_variable(v) for v in model.trainable_variables] == [
        True, False, False, False]


def _binary_cnn():
    binary = {"input_quantizer": "ste_sign", "kernel_quantizer": "ste_sign",
              "kernel_constraint": "weight_clip", "use_bias": False}
    return keras.Sequential([
        keras.Input((8, 8, 1)),
        layers.QuantConv2D(8, 3, kernel_quantizer="ste_sign", kernel_constraint="weight_clip",
                           use_bias=False),
        keras.layers.BatchNormalization(),
        layers.QuantConv2D(8, 3, **binary),
        keras.layers.BatchNormalization(),
        keras.layers.Flatten(),
        layers.QuantDense(2, **binary),
        keras.layers.BatchNormalization(),
        keras.layers.Activation("softmax"),
    ])


def _images(n=256):
    # Two classes: a bright top half or a bright bottom half, plus noise.
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=n)
    x = rng.normal(scale=0.5, size=(n, 8, 8, 1)).astype(np.float32)
    x[y == 0, :4] += 1.0
    x[y == 1, 4:] += 1.0
    return x, y


@pytest.mark.parametrize("default", ["bamsprod", "adam"])
def test_a_binary_network_learns_through_multi_optimizer(default):
    x, y = _images()
    bop = Bop(gamma=1e-2, threshold=1e-6)
    rest = BAMSProd(0.01) if default == "bamsprod" else keras.optimizers.Adam(0.01)
    model = _binary_cnn()
    kernels_before = [as_numpy([v])[0] for v in model.trainable_variables
                      if is_binary_variable(v)]
    model.compile(keras.optimizers.MultiOptimizer(BinaryRouter(bop, rest)),
                  "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, batch_size=32, epochs=4, verbose=0).history
    assert history["loss"][-1] < 0.7 * history["loss"][0], history["loss"]
    assert history["accuracy"][-1] > 0.8, history["accuracy"]
    kernels = [as_numpy([v])[0] for v in model.trainable_variables if is_binary_variable(v)]
    assert len(kernels) == 3
    assert all(set(np.unique(k)) <= {-1.0, 1.0} for k in kernels)  # Bop keeps them binary
    assert any(np.any(np.sign(a) != b) for a, b in zip(kernels_before, kernels))  # flips


def test_keras_file_restores_multi_optimizer_state_and_training_continues(tmp_path):
    x, y = _images(64)
    model = _binary_cnn()
    model.compile(keras.optimizers.MultiOptimizer(
        BinaryRouter(Bop(gamma=1e-2, threshold=1e-6), BAMSProd(0.01))),
        "sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    model.save(tmp_path / "binary.keras")
    loaded = keras.models.load_model(tmp_path / "binary.keras")
    assert [type(o).__name__ for o in loaded.optimizer.optimizers] == ["Bop", "BAMSProd"]
    assert [is_binary_variable(v) for v in loaded.trainable_variables] == [
        is_binary_variable(v) for v in model.trainable_variables]
    for a, b in zip(as_numpy(model.optimizer.variables), as_numpy(loaded.optimizer.variables)):
        np.testing.assert_array_equal(a, b)
    for m in (model, loaded):
        m.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(as_numpy(model.weights), as_numpy(loaded.weights)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
