"""BAMSProd trains Keras models: model.fit, GradientTape loops, tf.function, XLA, mixed
precision, and keeps the dtype of every variable."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from bamsprod_reference import TOLERANCES, init_state, reference_step
from optimizers_under_test import OPTIMIZER_CLASSES, OPTIMIZERS_UNDER_TEST, make_optimizer
from tiny_models import regression_data, tiny_model

CLASSES = pytest.mark.parametrize(
    "factory", OPTIMIZER_CLASSES.values(), ids=OPTIMIZER_CLASSES.keys()
)


@pytest.mark.parametrize("factory,kwargs,serializable", OPTIMIZERS_UNDER_TEST)
def test_loss_falls_on_a_tiny_seeded_model(factory, kwargs, serializable, keras_session):
    x, y = regression_data()
    model = tiny_model()
    model.compile(make_optimizer(factory, kwargs), loss="mse")
    before = model.evaluate(x, y, verbose=0)
    model.fit(x, y, batch_size=32, epochs=6, shuffle=False, verbose=0)
    after = model.evaluate(x, y, verbose=0)
    assert after < 0.5 * before


@pytest.mark.parametrize("dtype", ["float16", "float64"])
@pytest.mark.parametrize("factory,kwargs,serializable", OPTIMIZERS_UNDER_TEST)
def test_dtype_of_variables_and_state_is_kept(factory, kwargs, serializable, dtype):
    optimizer = make_optimizer(factory, kwargs)
    var = tf.Variable(np.linspace(-1.0, 1.0, 6).reshape(2, 3).astype(dtype))
    for _ in range(3):
        optimizer.apply_gradients([(tf.fill((2, 3), tf.constant(0.5, dtype)), var)])
    assert var.dtype == tf.as_dtype(dtype)
    variables = optimizer.variables  # a method in the legacy API, a property in the new
    state = [v for v in (variables() if callable(variables) else variables)
             if tuple(v.shape) == (2, 3)]
    assert len(state) == 3  # m, v, v_hat
    assert {v.dtype for v in state} == {tf.as_dtype(dtype)}
    assert np.all(np.isfinite(var.numpy()))


@CLASSES
def test_trains_in_a_custom_gradient_tape_loop(factory, execution_mode, keras_session):
    x, y = regression_data()
    model = tiny_model()
    optimizer = factory(learning_rate=0.05)
    loss_fn = tf.keras.losses.MeanSquaredError()

    @execution_mode
    def train_step(x_batch, y_batch):
        with tf.GradientTape() as tape:
            loss = loss_fn(y_batch, model(x_batch, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    before = float(loss_fn(y, model(x)))
    for _ in range(5):
        for i in range(0, len(x), 32):
            train_step(tf.constant(x[i:i + 32]), tf.constant(y[i:i + 32]))
    assert int(optimizer.iterations.numpy()) == 20
    assert float(loss_fn(y, model(x))) < 0.5 * before


@CLASSES
def test_model_fit_with_jit_compile_matches_plain_model_fit(factory):
    x, y = regression_data()
    weights = {}
    for jit_compile in (False, True):
        tf.keras.backend.clear_session()
        tf.keras.utils.set_random_seed(0)
        model = tiny_model()
        model.compile(factory(learning_rate=0.05), loss="mse", jit_compile=jit_compile)
        before = model.evaluate(x, y, verbose=0)
        model.fit(x, y, batch_size=32, epochs=5, shuffle=False, verbose=0)
        assert model.evaluate(x, y, verbose=0) < 0.5 * before
        weights[jit_compile] = model.get_weights()
    for plain, jitted in zip(weights[False], weights[True]):
        np.testing.assert_allclose(jitted, plain, rtol=1e-4, atol=1e-5)


@CLASSES
def test_mixed_float16_model_trains_with_loss_scaling(factory, mixed_float16, keras_session):
    x, y = regression_data()
    model = tiny_model()
    model.compile(factory(learning_rate=0.05), loss="mse")
    assert isinstance(model.optimizer.inner_optimizer, factory)  # wrapped for loss scaling
    before = model.evaluate(x, y, verbose=0)
    model.fit(x, y, batch_size=32, epochs=8, shuffle=False, verbose=0)
    assert model.evaluate(x, y, verbose=0) < 0.5 * before
    assert all(w.dtype == tf.float32 for w in model.trainable_weights)
    assert model(x[:2]).dtype == tf.float16


@CLASSES
def test_loss_scaled_step_with_overflow_leaves_variable_and_moments_untouched(
    factory, execution_mode
):
    # Keras' LossScaleOptimizer skips a non-finite step but still counts it in
    # `iterations` (both APIs), so the next step is BAMSProd's step t = iterations + 1
    # from zero moments.
    optimizer = tf.keras.mixed_precision.LossScaleOptimizer(factory(learning_rate=0.05))
    w0 = np.array([0.5, -0.25, 1.0])
    var = tf.Variable(w0, dtype=tf.float32)

    @execution_mode
    def step(grad):
        optimizer.apply_gradients([(grad, var)])

    step(tf.constant([np.inf, 1.0, 1.0], tf.float32))
    np.testing.assert_array_equal(var.numpy(), w0.astype("float32"))
    state = init_state(w0)
    state.iterations = int(optimizer.inner_optimizer.iterations.numpy())
    grad = np.array([0.3, -2.0, 0.01])
    step(tf.constant(grad, tf.float32))
    expected = reference_step(state, grad, learning_rate=0.05)
    np.testing.assert_allclose(var.numpy(), expected.w, **TOLERANCES["float32"])
