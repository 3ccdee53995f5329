"""Property-based tests (hypothesis) of the update rule, ``step_scalars`` +
``bamsprod_update``, against the NumPy reference and against Keras' AMSGrad, over random
shapes, dtypes, hyperparameters and gradient sequences."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from bamsprod_reference import init_state, reference_step
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from larq_bamsprod.update_rule import bamsprod_update, step_scalars

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True)
TOL = {"float16": {"rtol": 1e-2, "atol": 1e-2}, "float32": {"rtol": 1e-4, "atol": 1e-5},
       "float64": {"rtol": 1e-10, "atol": 1e-12}}


def _round(value, dtype):
    return value if isinstance(value, (str, type(None))) else float(np.asarray(value, dtype))


FLOAT_TARGETS = st.floats(1e-4, 10.0)
ANY_TARGET = st.one_of(st.just("mean"), st.none(), FLOAT_TARGETS)


@st.composite
def problems(draw, bound_targets=ANY_TARGET, dtypes=("float32", "float64")):
    """A dtype, hyperparameters (rounded to the dtype), a start point and gradients."""
    dtype = draw(st.sampled_from(dtypes))
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=4))
    steps = draw(st.integers(1, 4))
    grads = draw(hnp.arrays(np.float64, (steps,) + shape,
                            elements=st.floats(-10, 10, allow_subnormal=False)))
    w0 = draw(hnp.arrays(np.float64, shape, elements=st.floats(-2, 2, allow_subnormal=False)))
    hyper = {
        "learning_rate": draw(st.floats(1e-4, 0.5)),
        "beta_1": draw(st.floats(0.0, 0.99)),
        "beta_2": draw(st.floats(0.5, 0.9999)),
        # float16 holds no epsilon below its subnormals (6e-8): draw from its normal range.
        "epsilon": draw(st.floats(1e-3 if dtype == "float16" else 1e-8, 1e-2)),
        "gamma": draw(st.floats(1e-4, 10.0)),
        "bound_target": draw(bound_targets),
        "lr_decay": draw(st.sampled_from(["sqrt", None])),
        "bias_correction": draw(st.booleans()),
    }
    hyper = {k: _round(v, dtype) if k not in ("lr_decay", "bias_correction") else v
             for k, v in hyper.items()}
    return dtype, hyper, w0.astype(dtype), grads.astype(dtype)


def _run(dtype, hyper, w0, grads):
    """The package's update rule; yields (scalars, grad, old v_hat, delta, m, v, v_hat, w)."""
    w = tf.constant(w0)
    m = v = v_hat = tf.zeros_like(w)
    for i, grad in enumerate(grads):
        scalars = step_scalars(step=tf.constant(i + 1, tf.int64), dtype=tf.as_dtype(dtype),
                               **hyper)
        old_v_hat = v_hat
        delta, m, v, v_hat = bamsprod_update(tf.constant(grad), m, v, v_hat, scalars)
        w = w - delta
        yield scalars, grad, old_v_hat.numpy(), delta.numpy(), m.numpy(), v.numpy(), \
            v_hat.numpy(), w.numpy()


def _assert_every_step_matches_the_reference(problem):
    dtype, hyper, w0, grads = problem
    state = init_state(w0)
    for _, grad, _, _, m, v, v_hat, w in _run(dtype, hyper, w0, grads):
        state = reference_step(state, grad, **hyper)
        for name, ours, ref in (("w", w, state.w), ("m", m, state.m), ("v", v, state.v),
                                ("v_hat", v_hat, state.v_hat)):
            assert ours.dtype == dtype
            np.testing.assert_allclose(ours, ref, **TOL[dtype], err_msg=name)


@SETTINGS
@given(problems())
def test_every_step_matches_the_numpy_reference(problem):
    _assert_every_step_matches_the_reference(problem)


@SETTINGS
@given(problems(dtypes=("float16",)))
def test_every_float16_step_matches_the_numpy_reference(problem):
    # The update computed in float16 against the float64 reference with the same
    # float16-rounded hyperparameters; float16 rounds every intermediate to ~1e-3.
    _assert_every_step_matches_the_reference(problem)


@SETTINGS
@given(problems(dtypes=("float16", "float32", "float64")))
def test_v_hat_never_decreases(problem):
    for _, _, old_v_hat, _, _, _, v_hat, _ in _run(*problem):
        assert np.all(v_hat >= old_v_hat)


@SETTINGS
@given(problems(bound_targets=st.one_of(st.just("mean"), FLOAT_TARGETS)))
def test_v_til_lies_inside_the_bounds(problem):
    # v_til is not returned; it is read off the step: delta = eta_t m / (sqrt(v_til) + eps).
    dtype, hyper, w0, grads = problem
    problem = ("float64", hyper, w0.astype("float64"), grads.astype("float64"))
    for scalars, _, _, delta, m, _, v_hat, _ in _run(*problem):
        eps, eta = float(scalars.epsilon), float(scalars.step_size)
        c = np.mean(v_hat) if hyper["bound_target"] == "mean" else hyper["bound_target"]
        low, high = c * float(scalars.lower_scale), c * float(scalars.upper_scale)
        assert low <= high
        moved = np.abs(m) > 1e-12
        sqrt_v_til = eta * m[moved] / delta[moved] - eps
        tol = 1e-9 * (np.abs(sqrt_v_til) + eps)
        assert np.all(sqrt_v_til >= np.sqrt(low) - tol)
        assert np.all(sqrt_v_til <= np.sqrt(high) + tol)


@SETTINGS
@given(problems(bound_targets=st.none()))
def test_without_bound_target_it_is_keras_amsgrad_with_the_same_step_size(problem):
    dtype, hyper, w0, grads = problem
    hyper.update(lr_decay=None, bias_correction=True)  # Keras Adam's eta_t
    adam = tf.keras.optimizers.Adam(
        learning_rate=hyper["learning_rate"], beta_1=hyper["beta_1"],
        beta_2=hyper["beta_2"], epsilon=hyper["epsilon"], amsgrad=True)
    var = tf.Variable(w0)
    for *_, w in _run(dtype, hyper, w0, grads):
        adam.apply_gradients([(tf.constant(grads[int(adam.iterations.numpy())]), var)])
        # Keras keeps the learning rate in float32, so compare in float32 terms.
        np.testing.assert_allclose(w, var.numpy(), **TOL["float32"])
