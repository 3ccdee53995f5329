"""Non-finite and extreme inputs in float32.

The behaviour chosen (no opt-in flag; the classes are being changed elsewhere):

* With loss scaling (``tf.keras.mixed_precision.LossScaleOptimizer``, what mixed precision
  uses), a step with a NaN/Inf gradient is skipped: weights and m, v, v_hat are untouched.
* Without it, a NaN/Inf gradient is not filtered: it propagates into m, v and v_hat
  exactly as in Keras' ``Adam(amsgrad=True)``. With ``bound_target="mean"`` the target
  ``mean(v_hat)`` is then NaN/Inf, so the whole variable (layer) becomes NaN, not only the
  coordinate with the bad gradient; with a float target or ``None`` only that coordinate.
* Finite extremes stay finite: gradients of 1e-30 (their square underflows to 0, and
  epsilon keeps the step finite) up to the float32 maximum: a finite gradient beyond
  ``sqrt(float32 max) ~ 1.8e19`` is clipped to the largest value whose square is finite
  (Keras' Adam would make v Inf there), and a sum behind ``mean(v_hat)`` that overflows
  is taken again after scaling. Both are checked against the NumPy reference, which
  applies the same clip and takes the mean exactly. Zero gradients for many steps and
  steps beyond ``t = 1e7`` keep every slot finite and ``c_l(t) <= c_u(t)``.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from bamsprod_reference import TOLERANCES, init_state, reference_step, square_limit
from optimizers_under_test import OPTIMIZER_CLASSES, reference_kwargs

from larq_bamsprod import fast, kernels
from larq_bamsprod.bounds import bound_scales

CLASSES = pytest.mark.parametrize(
    "factory", OPTIMIZER_CLASSES.values(), ids=OPTIMIZER_CLASSES.keys()
)
W0 = np.array([0.5, -0.25, 1.0, 2.0], dtype="float32")
GRAD = np.array([0.3, -2.0, 0.01, 1.0], dtype="float32")


def _slots(optimizer, var) -> dict:
    if isinstance(optimizer, tf.keras.mixed_precision.LossScaleOptimizer):
        optimizer = optimizer.inner_optimizer
    if isinstance(optimizer, tf.keras.optimizers.legacy.Optimizer):
        return {name: optimizer.get_slot(var, name).numpy() for name in ("m", "v", "vhat")}
    # Keras 2.11+ API: m, v, vhat (BAMSProd) / velocity_hat (Adam), one per variable.
    return {name: v.numpy() for name, v in zip(("m", "v", "vhat"), optimizer.variables[1:])}


def _step(optimizer, var, grad):
    optimizer.apply_gradients([(tf.constant(grad, tf.float32), var)])


def _assert_all_finite(optimizer, var):
    assert np.all(np.isfinite(var.numpy()))
    for name, value in _slots(optimizer, var).items():
        assert np.all(np.isfinite(value)), name


@CLASSES
@pytest.mark.parametrize("bad", [np.inf, np.nan], ids=["inf", "nan"])
def test_loss_scaled_step_with_non_finite_gradient_leaves_weights_and_slots_unchanged(
    factory, bad
):
    optimizer = tf.keras.mixed_precision.LossScaleOptimizer(factory(learning_rate=0.05))
    var = tf.Variable(W0)
    _step(optimizer, var, GRAD)  # non-zero slots to corrupt
    weights, slots = var.numpy(), _slots(optimizer, var)
    _step(optimizer, var, np.array([bad, 1.0, 1.0, 1.0], dtype="float32"))
    np.testing.assert_array_equal(var.numpy(), weights)
    for name, value in _slots(optimizer, var).items():
        np.testing.assert_array_equal(value, slots[name], err_msg=name)


@CLASSES
def test_nan_gradient_propagates_into_slots_exactly_as_in_keras_amsgrad(factory):
    # Keras 2.11+ Adam for both classes: the legacy Adam's v_hat = max(v_hat, NaN) keeps
    # the old v_hat (seen with tf-keras 2.19), while m and v still turn NaN.
    adam_class = tf.keras.optimizers.Adam
    slots = {}
    for opt in (factory(learning_rate=0.05), adam_class(learning_rate=0.05, amsgrad=True)):
        var = tf.Variable(W0)
        _step(opt, var, GRAD)
        _step(opt, var, np.array([np.nan, 1.0, np.inf, 1.0], dtype="float32"))
        slots[type(opt)] = _slots(opt, var)
    ours, adam = slots[factory], slots[adam_class]
    # Same NaN/Inf pattern; finite entries differ only by how (1 - beta_2) is rounded.
    assert np.isnan(ours["m"][0]) and np.isnan(ours["v"][0]) and np.isnan(ours["vhat"][0])
    for name in ("m", "v", "vhat"):
        np.testing.assert_allclose(ours[name], adam[name], rtol=1e-4, equal_nan=True,
                                   err_msg=name)


@CLASSES
@pytest.mark.parametrize(
    "bound_target,all_nan", [("mean", True), (0.04, False), (None, False)],
    ids=["mean_target", "float_target", "no_bound"],
)
def test_nan_gradient_reaches_the_whole_variable_only_through_the_mean_target(
    factory, bound_target, all_nan
):
    optimizer = factory(learning_rate=0.05, bound_target=bound_target)
    var = tf.Variable(W0)
    _step(optimizer, var, GRAD)
    _step(optimizer, var, np.array([np.nan, 1.0, 1.0, 1.0], dtype="float32"))
    expected = np.ones(4, bool) if all_nan else np.array([True, False, False, False])
    np.testing.assert_array_equal(np.isnan(var.numpy()), expected)


@CLASSES
@pytest.mark.parametrize("scale", [1e-30, 1e-20, 1e18])
def test_extreme_finite_gradients_keep_weights_and_slots_finite(factory, scale):
    optimizer = factory(learning_rate=0.05)
    var = tf.Variable(W0)
    for _ in range(5):
        _step(optimizer, var, scale * GRAD)
        _assert_all_finite(optimizer, var)


PATHS = pytest.mark.parametrize("path", [
    pytest.param("kernel", marks=pytest.mark.skipif(
        kernels.load() is None, reason="the BAMSProd kernel could not be built here")),
    "xla",
    "reference",
])


def _run_against_reference(factory, path, w0, grads, dtype, **hyper):
    """Apply ``grads`` (in ``dtype``) by ``path`` and by the NumPy reference with the
    overflow guard of ``dtype``; return both final states."""
    optimizer = factory(**hyper)
    var = tf.Variable(np.asarray(w0, dtype))
    state = init_state(np.asarray(w0, dtype))
    rounded = reference_kwargs(hyper, factory, dtype)  # hyperparameters as the dtype has them
    with fast.use(path):
        for grad in grads:
            optimizer.apply_gradients([(tf.constant(grad, dtype), var)])
            state = reference_step(state, np.asarray(grad, dtype), **rounded,
                                   grad_limit=square_limit(dtype))
    return optimizer, var, state


def _assert_matches(optimizer, var, state, dtype):
    _assert_all_finite(optimizer, var)
    np.testing.assert_allclose(var.numpy(), state.w, **TOLERANCES[dtype])
    for name, ref in zip(("m", "v", "vhat"), (state.m, state.v, state.v_hat)):
        np.testing.assert_allclose(_slots(optimizer, var)[name], ref, **TOLERANCES[dtype],
                                   err_msg=name)


@CLASSES
@PATHS
@pytest.mark.parametrize("scale", [1e20, 1e30, 1.5e38])
def test_gradient_whose_square_overflows_is_clipped_to_the_square_limit(factory, path, scale):
    # g^2 overflows float32 above 1.8e19; the guard clips g there, so the step equals the
    # reference's for the clipped gradient and every slot stays finite.
    optimizer, var, state = _run_against_reference(
        factory, path, W0, [scale * GRAD, -scale * GRAD, GRAD], "float32", learning_rate=0.05)
    assert abs(state.m[1]) > 1e17  # the clipped gradient reached the reference's m
    _assert_matches(optimizer, var, state, "float32")


@CLASSES
@PATHS
@pytest.mark.parametrize("dtype,scale", [("float32", 1e30), ("float64", 1e200)])
def test_mean_target_survives_a_sum_of_v_hat_that_overflows(factory, path, dtype, scale):
    # 3000 elements of v_hat ~ (1 - beta_2) * max / 1 sum past the dtype's range; the
    # target mean(v_hat) must still be the mean (the reference takes it exactly).
    if path == "kernel" and dtype == "float32":
        pytest.skip("the kernel sums float32 in double: no overflow to guard against")
    rng = np.random.default_rng(0)
    w0 = rng.normal(size=3000)
    grads = [scale * rng.choice([-1.0, 1.0], size=3000) for _ in range(2)]
    optimizer, var, state = _run_against_reference(
        factory, path, w0, grads, dtype, learning_rate=0.05)
    assert np.isinf(np.sum(state.v_hat.astype(dtype)))  # the plain sum does overflow
    _assert_matches(optimizer, var, state, dtype)


@CLASSES
def test_float16_gradient_above_its_square_limit_is_clipped(factory):
    # float16's square limit is 255.875: a gradient of 1000 would make v Inf unguarded.
    optimizer, var, state = _run_against_reference(
        factory, "auto", W0, [1000.0 * GRAD] * 3, "float16", learning_rate=0.05)
    assert square_limit("float16") == 255.875
    _assert_matches(optimizer, var, state, "float16")


@CLASSES
def test_zero_gradients_for_many_steps_keep_state_finite_and_weights_still(factory):
    optimizer = factory(learning_rate=0.05)
    var = tf.Variable(W0)
    _step(optimizer, var, GRAD)

    @tf.function
    def zero_steps(n):
        for _ in tf.range(n):
            optimizer.apply_gradients([(tf.zeros_like(var), var)])

    zero_steps(tf.constant(3000))
    assert int(optimizer.iterations.numpy()) == 3001
    _assert_all_finite(optimizer, var)
    # m decays to ~0.9^3000 = 0: later steps move the weights by less than float32 resolves.
    after = var.numpy()
    zero_steps(tf.constant(10))
    np.testing.assert_array_equal(var.numpy(), after)


@CLASSES
@pytest.mark.parametrize("iterations", [10**7, 2 * 10**8])
def test_steps_beyond_1e7_match_the_reference_and_stay_finite(factory, iterations):
    # lr_decay="sqrt": 1/sqrt(t) of a t beyond float32's exact integers is what is tested
    optimizer = factory(learning_rate=0.05, gamma=1e-3, lr_decay="sqrt")
    var = tf.Variable(W0)
    _step(optimizer, var, GRAD)  # creates the slots and iterations
    optimizer.iterations.assign(iterations)
    state = init_state(var.numpy())
    state.m, state.v, state.v_hat = (_slots(optimizer, var)[k].astype("float64")
                                     for k in ("m", "v", "vhat"))
    state.iterations = iterations
    for _ in range(3):
        _step(optimizer, var, GRAD)
        state = reference_step(state, GRAD, learning_rate=0.05, gamma=1e-3, lr_decay="sqrt")
    _assert_all_finite(optimizer, var)
    np.testing.assert_allclose(var.numpy(), state.w, **TOLERANCES["float32"])
    for name, ref in zip(("m", "v", "vhat"), (state.m, state.v, state.v_hat)):
        np.testing.assert_allclose(_slots(optimizer, var)[name], ref,
                                   **TOLERANCES["float32"], err_msg=name)


@pytest.mark.parametrize("gamma", [1e-6, 1e-3, 1.0, 100.0])
def test_bound_scales_stay_finite_and_ordered_in_float32_up_to_huge_steps(gamma):
    steps = tf.constant([1.0, 2.0, 1e3, 1e7, 1e8, 1e12, 1e20], tf.float32)
    lower, upper = (s.numpy() for s in bound_scales(steps, tf.constant(gamma, tf.float32)))
    assert np.all(np.isfinite(lower)) and np.all(np.isfinite(upper))
    assert np.all(lower <= 1.0) and np.all(upper >= 1.0) and np.all(lower <= upper)
    assert np.all(np.diff(lower) >= 0) and np.all(np.diff(upper) <= 0)  # the range closes
