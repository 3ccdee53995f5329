"""Both BAMSProd classes follow the update rule of issue #2, step by step.

The expected values come from ``bamsprod_reference`` (NumPy, float64, written from the
formulas) and from Keras' own AMSGrad (``tf.keras.optimizers.legacy.Adam(amsgrad=True)``),
never from ``larq_bamsprod.update_rule``.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from bamsprod_reference import TOLERANCES, densify, init_state, reference_step
from optimizers_under_test import (
    CONFIGS,
    OPTIMIZER_CLASSES,
    OPTIMIZERS_UNDER_TEST,
    make_optimizer,
    reference_kwargs,
)

DTYPES = ["float16", "float32", "float64"]
NUM_STEPS = 25
SHAPE = (3, 4)


def _inputs(seed: int = 0, steps: int = NUM_STEPS, shape=SHAPE):
    """A starting point and gradients whose coordinates' scales span two decades.

    The spread makes ``v_hat`` span four decades, so the projection onto
    ``[c_l(t), c_u(t)]`` clips some coordinates (see
    ``test_reference_inputs_make_the_projection_clip``). Scales stay in [0.1, 10] so
    float16 neither overflows nor underflows.
    """
    rng = np.random.default_rng(seed)
    scale = np.logspace(-1, 1, num=int(np.prod(shape))).reshape(shape)
    rng.shuffle(scale.reshape(-1))
    w0 = rng.uniform(-1.0, 1.0, size=shape)
    grads = [scale * rng.standard_normal(shape) for _ in range(steps)]
    return w0, grads


def _reference_trajectory(w0, grads, **kwargs):
    state = init_state(w0)
    states = []
    for g in grads:
        state = reference_step(state, g, **kwargs)
        states.append(state)
    return states


def _optimizer_trajectory(optimizer, w0, grads, dtype, wrap=lambda fn: fn,
                          form=lambda grad: grad):
    var = tf.Variable(np.asarray(w0, dtype=dtype))

    def step(grad):
        optimizer.apply_gradients([(form(grad), var)])

    step = wrap(step)
    trajectory = []
    for g in grads:
        step(tf.constant(np.asarray(g, dtype=dtype)))
        trajectory.append(var.numpy().astype(np.float64))
    return trajectory


def _assert_trajectories_close(actual, expected_states, dtype):
    for t, (w, state) in enumerate(zip(actual, expected_states), start=1):
        np.testing.assert_allclose(
            w, state.w, **TOLERANCES[dtype], err_msg=f"{dtype} step t={t}"
        )


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("factory", OPTIMIZER_CLASSES.values(), ids=OPTIMIZER_CLASSES.keys())
def test_without_projection_decay_matches_keras_amsgrad(factory, dtype):
    # Powers of two, so Keras' float32 hyperparameter variables hold them exactly and the
    # float64 runs can be compared at float64 precision.
    hyper = {"learning_rate": 2.0**-7, "beta_1": 0.875, "beta_2": 1 - 2.0**-10,
             "epsilon": 2.0**-23}
    optimizer = factory(lr_decay=None, bias_correction=True, bound_target=None, **hyper)
    amsgrad = tf.keras.optimizers.legacy.Adam(amsgrad=True, **hyper)
    w0, grads = _inputs(seed=1, steps=60)

    actual = _optimizer_trajectory(optimizer, w0, grads, dtype)
    expected = _optimizer_trajectory(amsgrad, w0, grads, dtype)

    tolerance = {"float32": 1e-6, "float64": 1e-12}[dtype]
    for t, (w, w_keras) in enumerate(zip(actual, expected), start=1):
        np.testing.assert_allclose(w, w_keras, rtol=tolerance, atol=tolerance,
                                   err_msg=f"step t={t}")


@pytest.mark.parametrize("name,kwargs", [(c[0], c[1]) for c in CONFIGS if c[0] != "no_bound"],
                         ids=[c[0] for c in CONFIGS if c[0] != "no_bound"])
def test_reference_inputs_make_the_projection_clip(name, kwargs):
    # Guards the reference tests below: a broken clip could not fail them otherwise.
    w0, grads = _inputs()
    states = _reference_trajectory(w0, grads, **reference_kwargs(kwargs))
    assert sum(s.clipped_low for s in states) > 0
    if name == "float_target":
        assert sum(s.clipped_high for s in states) > 0


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("factory,kwargs,serializable", OPTIMIZERS_UNDER_TEST)
def test_matches_numpy_reference(factory, kwargs, serializable, dtype):
    w0, grads = _inputs()
    expected = _reference_trajectory(w0, grads, **reference_kwargs(kwargs, factory, dtype))
    actual = _optimizer_trajectory(make_optimizer(factory, kwargs), w0, grads, dtype)
    _assert_trajectories_close(actual, expected, dtype)


@pytest.mark.parametrize("factory", OPTIMIZER_CLASSES.values(), ids=OPTIMIZER_CLASSES.keys())
def test_matches_numpy_reference_in_every_execution_mode_and_gradient_form(
    factory, execution_mode, gradient_form
):
    kwargs = {"learning_rate": 0.05, "bound_target": 0.04, "gamma": 0.1}
    w0, grads = _inputs(seed=2)
    expected = _reference_trajectory(w0, grads, **kwargs)
    actual = _optimizer_trajectory(
        factory(**kwargs), w0, grads, "float32", execution_mode, gradient_form
    )
    _assert_trajectories_close(actual, expected, "float32")


@pytest.mark.parametrize("factory", OPTIMIZER_CLASSES.values(), ids=OPTIMIZER_CLASSES.keys())
def test_adaptive_target_is_the_mean_of_each_variable_separately(factory):
    # Two variables in one apply_gradients call, of different gradient scales and dtypes:
    # each is clipped around the mean of its own v_hat, whatever the order of updates.
    kwargs = {"learning_rate": 0.05, "gamma": 0.2}
    w0_a, grads_a = _inputs(seed=3)
    w0_b, grads_b = _inputs(seed=4, shape=(5,))
    grads_b = [100.0 * g for g in grads_b]
    optimizer = factory(**kwargs)
    var_a = tf.Variable(w0_a, dtype=tf.float32)
    var_b = tf.Variable(w0_b, dtype=tf.float64)
    expected_a = _reference_trajectory(
        w0_a, grads_a, **reference_kwargs(kwargs, factory, "float32"))
    expected_b = _reference_trajectory(
        w0_b, grads_b, **reference_kwargs(kwargs, factory, "float64"))

    for t, (g_a, g_b) in enumerate(zip(grads_a, grads_b)):
        optimizer.apply_gradients([
            (tf.constant(g_a, tf.float32), var_a),
            (tf.constant(g_b, tf.float64), var_b),
        ])
        np.testing.assert_allclose(var_a.numpy(), expected_a[t].w, **TOLERANCES["float32"])
        np.testing.assert_allclose(var_b.numpy(), expected_b[t].w, **TOLERANCES["float64"])


@pytest.mark.parametrize(
    "clip_kwargs,clip",
    [
        ({"clipnorm": 1.0}, lambda g: g * min(1.0, 1.0 / np.linalg.norm(g))),
        ({"global_clipnorm": 1.0}, lambda g: g * min(1.0, 1.0 / np.linalg.norm(g))),
        ({"clipvalue": 0.5}, lambda g: np.clip(g, -0.5, 0.5)),
    ],
    ids=["clipnorm", "global_clipnorm", "clipvalue"],
)
@pytest.mark.parametrize("factory", OPTIMIZER_CLASSES.values(), ids=OPTIMIZER_CLASSES.keys())
def test_base_class_gradient_clipping_applies_before_the_update(factory, clip_kwargs, clip):
    kwargs = {"learning_rate": 0.05, "gamma": 0.1}
    w0, grads = _inputs(seed=5)
    expected = _reference_trajectory(w0, [clip(g) for g in grads], **kwargs)
    actual = _optimizer_trajectory(factory(**kwargs, **clip_kwargs), w0, grads, "float32")
    _assert_trajectories_close(actual, expected, "float32")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("factory", OPTIMIZER_CLASSES.values(), ids=OPTIMIZER_CLASSES.keys())
def test_variable_and_state_keep_the_variable_dtype(factory, dtype):
    optimizer = factory()
    var = tf.Variable(np.ones(SHAPE, dtype=dtype))
    optimizer.apply_gradients([(tf.ones(SHAPE, dtype), var)])
    assert var.dtype == tf.as_dtype(dtype)
    variables = optimizer.variables  # a method in the legacy API, a property in the new
    state = [v for v in (variables() if callable(variables) else variables)
             if tuple(v.shape) == SHAPE]
    assert len(state) == 3  # m, v, v_hat
    assert all(v.dtype == tf.as_dtype(dtype) for v in state)


# --- Sparse gradients: the dense equivalent, duplicates summed, every row decays ---

NUM_ROWS, ROW_WIDTH = 6, 3
SPARSE_INDICES = [[0, 2, 2, 5], [2, 2, 2, 1], [4, 0, 4, 4], [3, 3, 1, 0]]  # repeats, gaps


def _sparse_inputs(steps: int = 12):
    rng = np.random.default_rng(6)
    w0 = rng.uniform(-1.0, 1.0, size=(NUM_ROWS, ROW_WIDTH))
    slices = []
    for t in range(steps):
        indices = np.array(SPARSE_INDICES[t % len(SPARSE_INDICES)])
        values = rng.standard_normal((len(indices), ROW_WIDTH)) * np.logspace(-1, 1, ROW_WIDTH)
        slices.append((values, indices))
    return w0, slices


@pytest.mark.parametrize("factory", OPTIMIZER_CLASSES.values(), ids=OPTIMIZER_CLASSES.keys())
def test_sparse_gradient_matches_reference_with_densified_gradient(factory, execution_mode):
    # A fixed target: with the adaptive one the step is invariant to the gradient's scale.
    # "sqrt" keeps float32's accumulated rounding (which grows with the step) within the
    # shared tolerance; the decay itself is not what this test is about.
    kwargs = {"learning_rate": 0.05, "bound_target": 0.05, "gamma": 0.2, "lr_decay": "sqrt"}
    w0, slices = _sparse_inputs()
    expected = _reference_trajectory(
        w0, [densify(values, indices, NUM_ROWS) for values, indices in slices], **kwargs
    )
    assert sum(s.clipped_low + s.clipped_high for s in expected) > 0
    optimizer = factory(**kwargs)
    var = tf.Variable(w0, dtype=tf.float32)

    @execution_mode
    def step(values, indices):
        grad = tf.IndexedSlices(values, indices, dense_shape=tf.shape(var, tf.int64))
        optimizer.apply_gradients([(grad, var)])

    for t, (values, indices) in enumerate(slices):
        step(tf.constant(values, tf.float32), tf.constant(indices, tf.int64))
        np.testing.assert_allclose(
            var.numpy(), expected[t].w, **TOLERANCES["float32"], err_msg=f"step {t + 1}"
        )


@pytest.mark.parametrize("factory", OPTIMIZER_CLASSES.values(), ids=OPTIMIZER_CLASSES.keys())
def test_embedding_layer_sparse_gradients_match_densified_reference(factory, keras_session):
    kwargs = {"learning_rate": 0.05, "gamma": 0.2}
    layer = tf.keras.layers.Embedding(NUM_ROWS, ROW_WIDTH)
    layer.build((None,))
    state = init_state(layer.embeddings.numpy())
    optimizer = factory(**kwargs)
    rng = np.random.default_rng(7)
    for t in range(10):
        ids = tf.constant(SPARSE_INDICES[t % len(SPARSE_INDICES)])
        target = tf.constant(rng.standard_normal((len(SPARSE_INDICES[0]), ROW_WIDTH)),
                             tf.float32)
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(target * layer(ids) ** 2)
        (grad,) = tape.gradient(loss, layer.trainable_variables)
        assert isinstance(grad, tf.IndexedSlices)
        state = reference_step(state, tf.convert_to_tensor(grad).numpy(), **kwargs)
        optimizer.apply_gradients([(grad, layer.embeddings)])
        np.testing.assert_allclose(
            layer.embeddings.numpy(), state.w, **TOLERANCES["float32"], err_msg=f"step {t}"
        )
