"""What Keras' own optimizer tests ask of every optimizer (tf-keras ``optimizer_v2_test``,
Larq's ``optimizers_test``), asked of both BAMSProd classes: the learning rate can be
set after construction and by Keras' callbacks, and constraints apply after the update,
on every path."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from bamsprod_reference import init_state, reference_step
from optimizers_under_test import OPTIMIZER_CLASSES

from larq_bamsprod import fast, kernels, legacy

CLASSES = pytest.mark.parametrize(
    "factory", OPTIMIZER_CLASSES.values(), ids=OPTIMIZER_CLASSES.keys()
)
needs_kernel = pytest.mark.skipif(
    kernels.load() is None, reason=f"no BAMSProd kernel here: {kernels._state['error']}"
)
ALL_PATHS = [pytest.param("kernel", marks=needs_kernel), "xla", "reference"]


def _legacy_hyper(factory):
    # The legacy class keeps its hyperparameters in float32 variables.
    if factory is legacy.BAMSProd:
        return {k: float(np.float32(v)) for k, v in
                {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7, "gamma": 1e-3}.items()}
    return {}


@CLASSES
def test_learning_rate_set_after_construction_is_used(factory):
    optimizer = factory(learning_rate=0.01)
    var = tf.Variable([1.0, -2.0, 0.5])
    grads = [np.array([0.5, -0.25, 1.0]), np.array([-0.1, 0.3, 0.2])]
    optimizer.apply_gradients([(tf.constant(grads[0], tf.float32), var)])
    optimizer.learning_rate = 0.25
    optimizer.apply_gradients([(tf.constant(grads[1], tf.float32), var)])
    state = reference_step(init_state([1.0, -2.0, 0.5]), grads[0],
                           learning_rate=float(np.float32(0.01)), **_legacy_hyper(factory))
    state = reference_step(state, grads[1], learning_rate=0.25, **_legacy_hyper(factory))
    np.testing.assert_allclose(var.numpy(), state.w, rtol=2e-6, atol=2e-6)


# Keras' classes of the same API, to show what a zero-argument callable means there.
KERAS_ADAM = {legacy.BAMSProd: tf.keras.optimizers.legacy.Adam,
              OPTIMIZER_CLASSES["new"]: tf.keras.optimizers.Adam}


@CLASSES
def test_zero_argument_callable_learning_rate_is_used_as_keras_uses_it(factory):
    # #28 item 12: it was taken for a schedule and called with the step (TypeError). Keras'
    # legacy optimizers call it at every step; the new ones once, when they are built.
    rate = {"value": 0.005}
    optimizer = factory(learning_rate=lambda: rate["value"])
    adam = KERAS_ADAM[factory](learning_rate=lambda: rate["value"])
    var, adam_var = tf.Variable([1.0, -2.0, 0.5]), tf.Variable([1.0, -2.0, 0.5])
    grads = [np.array([0.5, -0.25, 1.0]), np.array([-0.1, 0.3, 0.2])]
    optimizer.apply_gradients([(tf.constant(grads[0], tf.float32), var)])
    adam.apply_gradients([(tf.constant(grads[0], tf.float32), adam_var)])
    rate["value"] = 0.25
    optimizer.apply_gradients([(tf.constant(grads[1], tf.float32), var)])
    adam.apply_gradients([(tf.constant(grads[1], tf.float32), adam_var)])

    keras_rate = float(tf.keras.backend.get_value(adam.learning_rate))  # 0.25 or 0.005
    assert float(tf.keras.backend.get_value(optimizer.learning_rate)) == keras_rate
    state = reference_step(init_state([1.0, -2.0, 0.5]), grads[0],
                           learning_rate=float(np.float32(0.005)), **_legacy_hyper(factory))
    state = reference_step(state, grads[1], learning_rate=float(np.float32(keras_rate)),
                           **_legacy_hyper(factory))
    np.testing.assert_allclose(var.numpy(), state.w, rtol=2e-6, atol=2e-6)
    assert optimizer.get_config()["learning_rate"] == pytest.approx(keras_rate)


class _AssertLearningRate(tf.keras.callbacks.Callback):
    """Larq's ``AssertLRCallback``: the optimizer's rate equals the schedule's each epoch."""

    def __init__(self, schedule):
        super().__init__()
        self.schedule = schedule
        self.seen = []

    def on_epoch_end(self, epoch, logs=None):
        rate = float(tf.keras.backend.get_value(self.model.optimizer.learning_rate))
        self.seen.append(rate)
        np.testing.assert_allclose(rate, self.schedule(epoch), rtol=1e-6)


def _data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 4)).astype("float32")
    return x, (x @ np.array([[1.0], [-2.0], [0.5], [1.0]])).astype("float32")


@CLASSES
def test_learning_rate_scheduler_callback_sets_the_rate(factory, keras_session):
    x, y = _data()
    model = tf.keras.Sequential([tf.keras.Input((4,)), tf.keras.layers.Dense(1)])
    model.compile(factory(), loss="mse")
    schedule = lambda epoch: 0.1 / (1 + epoch)  # noqa: E731
    check = _AssertLearningRate(schedule)
    model.fit(x, y, epochs=3, batch_size=8, verbose=0, callbacks=[
        tf.keras.callbacks.LearningRateScheduler(schedule), check])
    assert len(check.seen) == 3


@CLASSES
def test_reduce_lr_on_plateau_lowers_the_rate(factory, keras_session):
    x, y = _data()
    model = tf.keras.Sequential([tf.keras.Input((4,)), tf.keras.layers.Dense(1)])
    model.compile(factory(learning_rate=0.05), loss="mse")
    # min_delta so large that every epoch after the first (the baseline) is a plateau.
    reduce = tf.keras.callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=0,
                                                  min_delta=1e9, verbose=0)
    model.fit(x, y, epochs=3, batch_size=8, verbose=0, callbacks=[reduce])
    rate = float(tf.keras.backend.get_value(model.optimizer.learning_rate))
    np.testing.assert_allclose(rate, 0.05 / 4, rtol=1e-6)


@CLASSES
@pytest.mark.parametrize("path", ALL_PATHS)
def test_constraint_is_applied_after_the_update(factory, path):
    # tf-keras' testConstraint: the update, then the variable's constraint.
    var = tf.Variable([0.45, -0.45, 0.0],
                      constraint=lambda v: tf.clip_by_value(v, -0.5, 0.5))
    optimizer = factory(learning_rate=0.2)

    @tf.function
    def step():
        optimizer.apply_gradients([(tf.constant([-1.0, 1.0, 1.0]), var)])

    with fast.use(path):
        step()
    state = reference_step(init_state([0.45, -0.45, 0.0]), [-1.0, 1.0, 1.0],
                           learning_rate=float(np.float32(0.2)), **_legacy_hyper(factory))
    np.testing.assert_allclose(var.numpy(), np.clip(state.w, -0.5, 0.5), rtol=2e-6, atol=2e-6)
    assert var.numpy()[0] == 0.5 and var.numpy()[1] == -0.5  # the constraint did bite
