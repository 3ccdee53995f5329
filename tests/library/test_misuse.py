"""Safe under misuse (issue #13): what users get wrong, or do the old way, still trains as
Keras' own optimizers would, on every path.

Expected values come from the NumPy reference (``bamsprod_reference``) and from Keras'
``legacy.Adam``, never from ``larq_bamsprod.update_rule``.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import tensorflow as tf
from bamsprod_reference import ReferenceState, init_state, reference_step
from optimizers_under_test import OPTIMIZER_CLASSES

from larq_bamsprod import fast, kernels, legacy

CLASSES = pytest.mark.parametrize(
    "factory", OPTIMIZER_CLASSES.values(), ids=OPTIMIZER_CLASSES.keys()
)
needs_kernel = pytest.mark.skipif(
    kernels.load() is None, reason=f"no BAMSProd kernel here: {kernels._state['error']}"
)
ALL_PATHS = [pytest.param("kernel", marks=needs_kernel), "xla", "reference"]
# float16/bfloat16 never take the kernel (float32/float64 only).
LOW_PRECISION_PATHS = ["xla", "reference"]


def _f32(x: float) -> float:
    return float(np.float32(x))


def _step(optimizer, grads_and_vars_fn, path):
    """One ``apply_gradients`` traced in a tf.function under ``path``."""
    @tf.function
    def step():
        optimizer.apply_gradients(grads_and_vars_fn())

    with fast.use(path):
        step()


# ----------------------------------------------------------------------------------------
# lr= (the deprecated alias Keras' legacy optimizers still honour)


def test_legacy_lr_alias_trains_at_that_rate_as_keras_legacy_adam_does():
    hyper = {"beta_1": 0.875, "beta_2": 1 - 2.0**-10, "epsilon": 2.0**-23}
    with pytest.warns(UserWarning, match="`lr` argument is deprecated"):
        ours = legacy.BAMSProd(lr=0.125, lr_decay=None, bound_target=None, **hyper)
    with pytest.warns(UserWarning, match="`lr` argument is deprecated"):
        adam = tf.keras.optimizers.legacy.Adam(lr=0.125, amsgrad=True, **hyper)
    rng = np.random.default_rng(0)
    w0 = rng.uniform(-1, 1, 6)
    a, b = tf.Variable(w0), tf.Variable(w0)
    for _ in range(5):
        g = tf.constant(rng.standard_normal(6))
        ours.apply_gradients([(g, a)])
        adam.apply_gradients([(g, b)])
    moved = np.abs(b.numpy() - w0).max()
    assert moved > 0.3  # 0.125 per step, not the default 0.01
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-7)


@CLASSES
def test_lr_alias_is_honoured_by_both_classes(factory):
    with pytest.warns(UserWarning, match="learning_rate=0.1"):
        optimizer = factory(lr=0.1)
    var = tf.Variable([1.0, -2.0, 0.5])
    grad = np.array([0.5, -0.25, 1.0])
    optimizer.apply_gradients([(tf.constant(grad, tf.float32), var)])
    state = reference_step(init_state([1.0, -2.0, 0.5]), grad, learning_rate=_f32(0.1),
                           **_legacy_hyper(factory))
    np.testing.assert_allclose(var.numpy(), state.w, rtol=2e-6, atol=2e-6)
    assert optimizer.get_config()["learning_rate"] == pytest.approx(0.1)


def _legacy_hyper(factory):
    # The legacy class keeps its hyperparameters in float32 variables.
    if factory is legacy.BAMSProd:
        return {"beta_1": _f32(0.9), "beta_2": _f32(0.999), "epsilon": _f32(1e-7),
                "gamma": _f32(1e-3)}
    return {}


# ----------------------------------------------------------------------------------------
# float16 and bfloat16 variables: the step scalars are computed in float32


def _slots(optimizer, var):
    if isinstance(optimizer, tf.keras.optimizers.legacy.Optimizer):
        return [optimizer.get_slot(var, name) for name in ("m", "v", "vhat")]
    index = optimizer._index_dict[optimizer._var_key(var)]
    return [optimizer._momentums[index], optimizer._velocities[index],
            optimizer._velocity_hats[index]]


@CLASSES
@pytest.mark.parametrize("path", LOW_PRECISION_PATHS)
def test_float16_variable_still_moves_after_step_70000(factory, path):
    # In float16, t = 70001 is Inf: 1/sqrt(t) and with it the step were 0.
    w0 = np.zeros(8)
    m0 = np.linspace(-0.5, 0.5, 8)
    v0 = np.linspace(0.1, 0.3, 8)
    grad = np.linspace(1.0, -1.0, 8)
    var = tf.Variable(w0.astype("float16"))
    optimizer = factory(learning_rate=0.1, lr_decay="sqrt")  # the 1/sqrt(t) is the point
    if isinstance(optimizer, tf.keras.optimizers.legacy.Optimizer):
        optimizer._create_all_weights([var])
    else:
        optimizer.build([var])
    optimizer.iterations.assign(70_000)
    for slot, value in zip(_slots(optimizer, var), (m0, v0, v0)):
        slot.assign(value.astype("float16"))
    _step(optimizer, lambda: [(tf.constant(grad, tf.float16), var)], path)
    start = ReferenceState(
        w=w0,
        m=m0.astype("float16").astype("float64"),
        v=v0.astype("float16").astype("float64"),
        v_hat=v0.astype("float16").astype("float64"),
        iterations=70_000,
    )
    state = reference_step(start, grad, learning_rate=_f32(0.1), lr_decay="sqrt",
                           **_legacy_hyper(factory))
    assert np.abs(state.w).min() > 1e-5  # the reference does move every coordinate
    np.testing.assert_allclose(var.numpy().astype("float64"), state.w, rtol=1e-2, atol=1e-7)
    assert int(optimizer.iterations.numpy()) == 70_001


@CLASSES
@pytest.mark.parametrize("path", LOW_PRECISION_PATHS)
def test_bfloat16_variable_follows_the_reference_from_step_1(factory, path):
    # In bfloat16, beta_2 = 0.999 rounds to 1: v stayed 0 and the variable never moved.
    rng = np.random.default_rng(3)
    w0 = rng.uniform(-1, 1, 16)
    grads = [rng.standard_normal(16) for _ in range(10)]
    bf16 = tf.bfloat16.as_numpy_dtype
    var = tf.Variable(w0.astype(bf16))
    optimizer = factory(learning_rate=0.05)
    state = init_state(w0.astype(bf16).astype("float64"))
    for g in grads:
        g = g.astype(bf16)
        _step(optimizer, lambda g=g: [(tf.constant(g), var)], path)
        state = reference_step(state, g.astype("float64"), learning_rate=_f32(0.05),
                               **_legacy_hyper(factory))
    w = var.numpy().astype("float64")
    start = w0.astype(bf16).astype("float64")
    assert not np.allclose(start, state.w, rtol=3e-2, atol=1e-2)  # standing still fails
    np.testing.assert_allclose(w, state.w, rtol=3e-2, atol=1e-2)


# ----------------------------------------------------------------------------------------
# epsilon = 0 (and an epsilon that rounds to 0 in float16)


@CLASSES
@pytest.mark.parametrize("path", ALL_PATHS)
@pytest.mark.parametrize("bound_target", ["mean", None])
@pytest.mark.parametrize("dtype,epsilon", [("float32", 0.0), ("float64", 0.0),
                                           ("float16", 0.0), ("float16", 1e-9)])
def test_zero_epsilon_with_a_zero_gradient_gives_a_zero_step_not_nan(
    factory, path, bound_target, dtype, epsilon
):
    # 1e-9 rounds to 0 in float16. With a zero gradient m = v = v_hat = 0 and, with
    # bound_target=None or a variable whose whole gradient is 0, v_til = 0: 0/0.
    if path == "kernel" and dtype == "float16":
        pytest.skip("the kernel takes float32 and float64")
    w0 = np.array([1.0, -2.0, 0.5, 0.25])
    grads = [np.array([0.0, 0.5, -1.0, 0.0]), np.array([0.0, -0.25, 1.0, 0.0])]
    var = tf.Variable(w0.astype(dtype))
    still = tf.Variable(w0.astype(dtype))  # its gradient is 0 everywhere
    optimizer = factory(epsilon=epsilon, learning_rate=0.05, bound_target=bound_target)
    hyper = {"beta_1": 0.9, "beta_2": 0.999, "gamma": 1e-3, **_legacy_hyper(factory)}
    hyper.pop("epsilon", None)
    state = init_state(w0)
    for g in grads:
        _step(optimizer, lambda g=g: [(tf.constant(g.astype(dtype)), var),
                                      (tf.zeros_like(still), still)], path)
        state = reference_step(state, g, learning_rate=_f32(0.05), epsilon=0.0,
                               bound_target=bound_target, **hyper)
    w = var.numpy().astype("float64")
    assert np.all(np.isfinite(w))
    np.testing.assert_array_equal(w[[0, 3]], w0[[0, 3]])  # no gradient yet: no step
    np.testing.assert_array_equal(still.numpy().astype("float64"), w0)
    tol = {"float16": 3e-3, "float32": 2e-6, "float64": 1e-12}[dtype]
    np.testing.assert_allclose(w[[1, 2]], state.w[[1, 2]], rtol=tol, atol=tol)


# ----------------------------------------------------------------------------------------
# Sparse gradients in a subclass whose _resource_apply_dense takes no apply_state


class _NoApplyStateBAMSProd(legacy.BAMSProd):
    """A subclass in the style Keras allows (and Larq's Bop uses): no ``apply_state``."""

    def _resource_apply_dense(self, grad, var):
        return super()._resource_apply_dense(grad, var)


@pytest.mark.parametrize("path", ALL_PATHS)
def test_sparse_gradient_reaches_a_subclass_without_apply_state(path):
    w0 = np.linspace(-1, 1, 12).reshape(4, 3)
    values = np.arange(1.0, 10.0).reshape(3, 3) / 4
    indices = np.array([2, 0, 2])
    var = tf.Variable(w0.astype("float32"))
    optimizer = _NoApplyStateBAMSProd(learning_rate=0.05)
    _step(optimizer, lambda: [(tf.IndexedSlices(tf.constant(values, tf.float32),
                                                tf.constant(indices)), var)], path)
    dense = np.zeros((4, 3))
    np.add.at(dense, indices, values)
    state = reference_step(init_state(w0), dense, learning_rate=_f32(0.05),
                           **_legacy_hyper(legacy.BAMSProd))
    np.testing.assert_allclose(var.numpy(), state.w, rtol=2e-6, atol=2e-6)


# ----------------------------------------------------------------------------------------
# Gradients given as Python lists (tf-keras' optimizer_v2_test hands some over so)


@CLASSES
@pytest.mark.parametrize("path", ALL_PATHS)
@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_gradient_given_as_a_list_trains_like_a_tensor(factory, path, dtype):
    if path == "kernel" and dtype == "float16":
        pytest.skip("the kernel takes float32 and float64")
    var = tf.Variable(np.array([1.0, 2.0], dtype=dtype))
    adam_var = tf.Variable(np.array([1.0, 2.0], dtype=dtype))
    optimizer = factory(learning_rate=0.1)
    _step(optimizer, lambda: [([0.1, -0.1], var)], path)
    # Keras' own legacy Adam takes the same list in the same dtype.
    tf.keras.optimizers.legacy.Adam(0.1).apply_gradients([([0.1, -0.1], adam_var)])
    state = reference_step(init_state([1.0, 2.0]), [0.1, -0.1], learning_rate=_f32(0.1),
                           **_legacy_hyper(factory))
    tol = {"float16": 3e-3, "float32": 2e-6}[dtype]
    np.testing.assert_allclose(var.numpy(), state.w, rtol=tol, atol=tol)
    # The first step is the same as Adam's (sign step of size learning_rate / sqrt(1)).
    np.testing.assert_allclose(var.numpy(), adam_var.numpy(), rtol=tol, atol=tol)


@CLASSES
@pytest.mark.parametrize("path", ALL_PATHS)
def test_gradient_given_as_a_variable_trains_like_a_tensor(factory, path):
    # tf-keras' testGradientsAsVariables: the gradient is itself a tf.Variable.
    var = tf.Variable([1.0, 2.0])
    grad = tf.Variable([0.5, -0.25])
    optimizer = factory(learning_rate=0.1)
    _step(optimizer, lambda: [(grad, var)], path)
    state = reference_step(init_state([1.0, 2.0]), [0.5, -0.25], learning_rate=_f32(0.1),
                           **_legacy_hyper(factory))
    np.testing.assert_allclose(var.numpy(), state.w, rtol=2e-6, atol=2e-6)


# ----------------------------------------------------------------------------------------
# A gradient whose shape broadcasts to the variable's


@CLASSES
@pytest.mark.parametrize("path", ALL_PATHS)
def test_broadcastable_gradient_shape_is_accepted_on_every_path(factory, path):
    # Keras' (new) Adam accepts a [1] gradient for a [1, 1] kernel (its legacy Adam's
    # fused op does not); so does every path here, as its broadcast to [1, 1].
    var = tf.Variable([[0.5]])
    optimizer = factory(learning_rate=0.1)
    for g in (0.3, -0.2, 0.4):
        _step(optimizer, lambda g=g: [(tf.constant([g]), var)], path)
    state = init_state([[0.5]])
    for g in (0.3, -0.2, 0.4):
        state = reference_step(state, [[g]], learning_rate=_f32(0.1),
                               **_legacy_hyper(factory))
    assert var.shape == (1, 1)
    np.testing.assert_allclose(var.numpy(), state.w, rtol=2e-6, atol=2e-6)


@CLASSES
@pytest.mark.parametrize("path", ALL_PATHS)
def test_gradient_that_does_not_broadcast_is_refused_on_every_path(factory, path):
    var = tf.Variable([[0.5, 0.5]])
    optimizer = factory()
    with pytest.raises(ValueError, match=r"shape \(3,\), which does not broadcast to the "
                                         r"variable's shape \(1, 2\)"):
        _step(optimizer, lambda: [(tf.constant([1.0, 2.0, 3.0]), var)], path)


# ----------------------------------------------------------------------------------------
# Hyperparameter variables are read once per step, device and dtype


def _hyper_reads(optimizer, graph) -> Counter:
    """ReadVariableOps of each of ``optimizer``'s hyperparameter variables in ``graph``."""
    handles = {id(v.handle): name for name, v in optimizer._hyper.items()
               if isinstance(v, tf.Variable)}
    captured = {inner.name: handles[id(outer)] for outer, inner in graph.captures
                if id(outer) in handles}
    return Counter(captured[op.inputs[0].name] for op in graph.get_operations()
                   if op.type == "ReadVariableOp" and op.inputs[0].name in captured)


@pytest.mark.parametrize("path", ALL_PATHS)
@pytest.mark.parametrize("beta_1", [0.9, "schedule"])
def test_legacy_hyperparameters_are_read_once_per_dtype_per_step(path, beta_1):
    if beta_1 == "schedule":
        beta_1 = tf.keras.optimizers.schedules.ExponentialDecay(0.9, 1, 0.99)
    # Twelve variables in two dtypes: reads must not scale with the variables.
    variables = [tf.Variable(tf.ones([3, 2], dtype)) for dtype in ("float32", "float64")
                 for _ in range(6)]
    optimizer = legacy.BAMSProd(beta_1=beta_1)

    @tf.function
    def step():
        optimizer.apply_gradients([(tf.ones_like(v) * 0.5, v) for v in variables])

    with fast.use(path):
        graph = step.get_concrete_function().graph
    reads = _hyper_reads(optimizer, graph)
    expected = {"learning_rate", "beta_2", "epsilon", "gamma"}
    if not isinstance(beta_1, tf.keras.optimizers.schedules.LearningRateSchedule):
        expected.add("beta_1")
    assert set(reads) == expected
    assert all(count == 2 for count in reads.values()), reads  # one per dtype
