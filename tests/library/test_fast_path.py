"""Every fast path of BAMSProd's update equals the plain path, and falls back cleanly.

The plain path is :func:`larq_bamsprod.update_rule.bamsprod_update` run as separate ops
(``fast.use("reference")``); ``test_update_reference.py`` holds it to the NumPy reference.
Here the compiled kernel and the XLA path run the same steps on the same variables and
must reproduce every variable and slot after every step (PyTorch's
``test_foreach_matches_forloop``).
"""

from __future__ import annotations

import functools
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
from optimizers_under_test import CONFIGS, OPTIMIZER_CLASSES, make_optimizer

from larq_bamsprod import fast, kernels

KERNEL_OP = "LarqBamsprodResourceApply"
NUM_STEPS = 12
# A scalar, two small matrices of one shape (a path that mixed up same-shaped variables
# would show), a vector over three kernel blocks (the last one partial, so the mean's
# block sums and the threads' shards both matter) and a conv-like kernel.
SHAPES = [(), (3, 4), (3, 4), (2 * 4096 + 17,), (3, 3, 8, 16)]
# Differences come only from the order in which mean(v_hat) is summed (kernel) or from
# XLA's own rounding: tight in float64, a few ulps of float32 compounded over the steps.
TOLERANCES = {"float32": {"rtol": 2e-5, "atol": 1e-6}, "float64": {"rtol": 1e-12, "atol": 1e-13}}


def _scheduled_beta_1_no_bias():
    return {"learning_rate": 0.05, "gamma": 0.1, "bias_correction": False,
            "beta_1": tf.keras.optimizers.schedules.ExponentialDecay(0.9, 1, 0.95)}


# The shared table (optimizers_under_test.CONFIGS) plus combinations it does not hold.
FAST_PATH_CONFIGS = [(name, kwargs) for name, kwargs, _ in CONFIGS] + [
    ("float_target_sqrt_no_bias", {"learning_rate": 0.05, "bound_target": 0.04, "gamma": 0.5,
                                   "lr_decay": "sqrt", "bias_correction": False}),
    ("no_bound_sqrt_no_bias", {"learning_rate": 0.02, "bound_target": None, "lr_decay": "sqrt",
                               "bias_correction": False}),
    ("mean_scheduled_beta_1_no_bias", _scheduled_beta_1_no_bias),
]

needs_kernel = pytest.mark.skipif(
    kernels.load() is None,
    reason=f"the BAMSProd kernel could not be built here: {kernels._state['error']}",
)
FAST_PATHS = [pytest.param("kernel", marks=needs_kernel), "xla"]
CLASSES = pytest.mark.parametrize(
    "factory", OPTIMIZER_CLASSES.values(), ids=OPTIMIZER_CLASSES.keys()
)


def _inputs(dtype, steps=NUM_STEPS, seed=0):
    """Starting points and gradients whose scales span two decades, so ``v_hat`` spans
    four and the projection clips (see ``test_inputs_make_the_projection_clip``)."""
    rng = np.random.default_rng(seed)
    w0, grads = [], []
    for shape in SHAPES:
        size = int(np.prod(shape))
        scale = np.logspace(-1, 1, num=size).reshape(shape)
        rng.shuffle(scale.reshape(-1))
        w0.append(rng.uniform(-1, 1, size=shape).astype(dtype))
        grads.append([(scale * rng.standard_normal(shape)).astype(dtype)
                      for _ in range(steps)])
    return w0, [[g[t] for g in grads] for t in range(steps)]


def _optimizer_variables(optimizer):
    found = optimizer.variables() if callable(optimizer.variables) else optimizer.variables
    return list(found)


def _run(factory, kwargs, path, dtype, wrap=tf.function, steps=NUM_STEPS, inputs=None):
    """Trajectory of every model and optimizer variable, and the traced op types."""
    w0, grads = inputs or _inputs(dtype, steps)
    variables = [tf.Variable(w) for w in w0]
    optimizer = make_optimizer(factory, kwargs)

    def step(gradients):
        optimizer.apply_gradients(zip(gradients, variables))

    step = wrap(step)
    trajectory = []
    with fast.use(path):
        for gradients in grads:
            step([tf.constant(g) for g in gradients])
            state = variables + _optimizer_variables(optimizer)
            trajectory.append([v.numpy() for v in state])
        ops = []
        if hasattr(step, "get_concrete_function"):
            graph = step.get_concrete_function([tf.constant(g) for g in grads[0]]).graph
            ops = graph.get_operations()
    return trajectory, ops, optimizer


def _types(ops, arrays_only=False):
    """Types of ``ops``; with ``arrays_only``, of those with a non-scalar float output."""
    return [op.type for op in ops if not arrays_only or any(
        t.dtype.is_floating and t.shape.rank != 0 for t in op.outputs)]


def _assert_same_trajectories(actual, expected, dtype):
    assert len(actual) == len(expected)
    for t, (got, want) in enumerate(zip(actual, expected), start=1):
        assert len(got) == len(want)
        for i, (a, b) in enumerate(zip(got, want)):
            np.testing.assert_allclose(
                a, b, **TOLERANCES[dtype], err_msg=f"{dtype} step {t}, variable {i}"
            )


@functools.cache
def _plain_trajectory(factory, name, dtype):
    # Shared by both fast paths.
    trajectory, ops, _ = _run(factory, dict(FAST_PATH_CONFIGS)[name], "reference", dtype)
    assert KERNEL_OP not in _types(ops)
    return trajectory


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name, kwargs", FAST_PATH_CONFIGS, ids=[c[0] for c in FAST_PATH_CONFIGS])
@CLASSES
@pytest.mark.parametrize("path", FAST_PATHS)
def test_fast_path_matches_plain_path(path, factory, name, kwargs, dtype):
    expected = _plain_trajectory(factory, name, dtype)
    actual, ops, _ = _run(factory, kwargs, path, dtype)
    assert _types(ops).count(KERNEL_OP) == (len(SHAPES) if path == "kernel" else 0)
    _assert_same_trajectories(actual, expected, dtype)


def test_configs_cover_every_option():
    seen = {"bound_target": set(), "lr_decay": set(), "bias_correction": set(),
            "beta_1": set()}
    for _, kwargs in FAST_PATH_CONFIGS:
        kwargs = kwargs() if callable(kwargs) else kwargs
        target = kwargs.get("bound_target", "mean")
        seen["bound_target"].add("float" if isinstance(target, float) else target)
        seen["lr_decay"].add(kwargs.get("lr_decay"))  # the default is None
        seen["bias_correction"].add(kwargs.get("bias_correction", True))
        seen["beta_1"].add("scheduled" if callable(kwargs.get("beta_1")) else "float")
    assert seen == {"bound_target": {"float", "mean", None}, "lr_decay": {"sqrt", None},
                    "bias_correction": {True, False}, "beta_1": {"float", "scheduled"}}


def test_inputs_make_the_projection_clip():
    # Without clipped coordinates the tests above could not tell a wrong clip.
    trajectory, _, optimizer = _run(
        OPTIMIZER_CLASSES["legacy"], {"gamma": 0.5}, "reference", "float64"
    )
    [index] = [i for i, v in enumerate(_optimizer_variables(optimizer))
               if "vhat" in v.name and tuple(v.shape) == SHAPES[3]]
    v_hat = trajectory[-1][len(SHAPES) + index]
    t, gamma = NUM_STEPS, 0.5
    c = v_hat.mean()
    lower, upper = c * (1 - 1 / (gamma * t + 1)), c * (1 + 1 / (gamma * t))
    assert (v_hat < lower).any() and (v_hat > upper).any()


@needs_kernel
@CLASSES
def test_kernel_matches_plain_path_eagerly(factory):
    expected, _, _ = _run(factory, {"gamma": 0.1}, "reference", "float64",
                          wrap=lambda f: f, steps=4)
    actual, _, _ = _run(factory, {"gamma": 0.1}, "kernel", "float64",
                        wrap=lambda f: f, steps=4)
    _assert_same_trajectories(actual, expected, "float64")


@needs_kernel
@CLASSES
def test_kernel_is_one_op_per_variable_and_keeps_three_slots(factory):
    _, ops, optimizer = _run(factory, {}, "kernel", "float32", steps=1)
    assert _types(ops).count(KERNEL_OP) == len(SHAPES)
    # Outside the kernel, no arithmetic on whole arrays.
    assert not {"Sqrt", "Mean", "Maximum", "Minimum", "Mul", "Square"} & set(
        _types(ops, arrays_only=True))
    slots = [v for v in _optimizer_variables(optimizer) if v.dtype.is_floating]
    assert sorted(tuple(v.shape) for v in slots) == sorted(3 * SHAPES)


@needs_kernel
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("bound_target", ["mean", 0.04, None])
def test_kernel_matches_plain_path_on_a_variable_split_over_threads(bound_target, dtype):
    # From 256 blocks (1M elements) on, the kernel shards a variable over the thread pool.
    shape = (256 * 4096 + 3 * 4096 + 17,)
    rng = np.random.default_rng(1)
    scale = np.logspace(-1, 1, num=shape[0])
    rng.shuffle(scale)
    inputs = ([rng.uniform(-1, 1, size=shape).astype(dtype)],
              [[(scale * rng.standard_normal(shape)).astype(dtype)] for _ in range(3)])
    kwargs = {"bound_target": bound_target, "gamma": 0.5}
    factory = OPTIMIZER_CLASSES["legacy"]
    expected, _, _ = _run(factory, kwargs, "reference", dtype, steps=3, inputs=inputs)
    actual, ops, _ = _run(factory, kwargs, "kernel", dtype, steps=3, inputs=inputs)
    assert _types(ops).count(KERNEL_OP) == 1
    _assert_same_trajectories(actual, expected, dtype)
    again, _, _ = _run(factory, kwargs, "kernel", dtype, steps=3, inputs=inputs)
    for a, b in zip(actual[-1], again[-1]):  # the sharded mean does not depend on timing
        np.testing.assert_array_equal(a, b)


@needs_kernel
def test_kernel_is_deterministic():
    first, _, _ = _run(OPTIMIZER_CLASSES["legacy"], {}, "kernel", "float32", steps=3)
    second, _, _ = _run(OPTIMIZER_CLASSES["legacy"], {}, "kernel", "float32", steps=3)
    for a, b in zip(first[-1], second[-1]):
        np.testing.assert_array_equal(a, b)


@needs_kernel
@CLASSES
def test_xla_compiled_step_uses_plain_path(factory):
    # Under jit_compile XLA fuses the plain ops itself; the custom op has no XLA kernel.
    expected, _, _ = _run(factory, {}, "reference", "float32", steps=3)
    actual, ops, _ = _run(
        factory, {}, "kernel", "float32", steps=3,
        wrap=lambda f: tf.function(f, jit_compile=True),
    )
    assert KERNEL_OP not in _types(ops)
    _assert_same_trajectories(actual, expected, "float32")


@CLASSES
def test_float16_falls_back_to_plain_path(factory):
    inputs = _inputs("float16", steps=3)
    expected, _, _ = _run(factory, {}, "reference", "float16", steps=3, inputs=inputs)
    actual, ops, _ = _run(factory, {}, "kernel", "float16", steps=3, inputs=inputs)
    assert KERNEL_OP not in _types(ops)
    for got, want in zip(actual, expected):
        for a, b in zip(got, want):
            np.testing.assert_array_equal(a, b)


def test_disable_env_forces_plain_path(monkeypatch):
    monkeypatch.setenv(kernels.DISABLE_ENV, "1")
    variable = tf.Variable(tf.zeros([5]))
    with fast.use("kernel"):
        assert fast.choose_path(variable) == "reference"
    assert kernels.load() is None
    _, ops, _ = _run(OPTIMIZER_CLASSES["legacy"], {}, "kernel", "float32", steps=1)
    assert KERNEL_OP not in _types(ops)


def test_disable_env_zero_does_not_disable(monkeypatch):
    monkeypatch.setenv(kernels.DISABLE_ENV, "0")
    assert not kernels.disabled()


def test_unavailable_kernel_falls_back_to_plain_path(monkeypatch):
    monkeypatch.setattr(kernels, "load", lambda: None)
    variable = tf.Variable(tf.zeros([5]))
    assert fast.choose_path(variable) == "reference"


def _path_when_traced(variable):
    chosen = []
    tf.function(lambda: chosen.append(fast.choose_path(variable))).get_concrete_function()
    return chosen[0]


def test_gpu_variables_take_the_xla_path(monkeypatch):
    monkeypatch.setattr(fast, "_device_type", lambda variable: "GPU")
    assert _path_when_traced(tf.Variable(tf.zeros([5]))) == "xla"
    assert _path_when_traced(tf.Variable(tf.zeros([5], tf.float16))) == "xla"
    with fast.use("kernel"):  # no GPU kernel is compiled: the kernel cannot serve it
        assert _path_when_traced(tf.Variable(tf.zeros([5]))) == "reference"


def test_xla_path_is_not_used_eagerly():
    with fast.use("xla"):
        assert fast.choose_path(tf.Variable(tf.zeros([5]))) == "reference"
        assert _path_when_traced(tf.Variable(tf.zeros([5]))) == "xla"


def test_fast_env_is_validated(monkeypatch):
    monkeypatch.setenv(fast.FAST_ENV, "turbo")
    with pytest.raises(ValueError, match="LARQ_BAMSPROD_FAST must be one of .*'turbo'"):
        fast.requested_path()
    with pytest.raises(ValueError, match="path must be one of .*'turbo'"):
        with fast.use("turbo"):
            pass


def test_fast_env_selects_path(monkeypatch):
    monkeypatch.setenv(fast.FAST_ENV, "reference")
    assert fast.choose_path(tf.Variable(tf.zeros([5]))) == "reference"
    monkeypatch.setenv(fast.FAST_ENV, "xla")
    assert _path_when_traced(tf.Variable(tf.zeros([5]))) == "xla"


def test_failed_build_warns_and_falls_back(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv(kernels.DIR_ENV, str(tmp_path))
    monkeypatch.setenv(kernels.CXX_ENV, "false")  # a "compiler" that always fails
    monkeypatch.delenv(kernels.DISABLE_ENV, raising=False)
    monkeypatch.setattr(kernels, "_state", {"loaded": False, "module": None, "error": None})
    with pytest.warns(RuntimeWarning, match="kernel is unavailable, using the pure-Tens"):
        assert kernels.load() is None
    assert list(tmp_path.glob("*.failed"))
    assert fast.choose_path(tf.Variable(tf.zeros([5]))) == "reference"
    # Plain `build` reports the failure and exits 0 (`build --require`, which the
    # Makefile runs, exits 1: tests/library/test_kernel_build.py).
    monkeypatch.setattr(kernels, "_state", {"loaded": False, "module": None, "error": None})
    assert kernels.main(["build"]) == 0
    assert "could not build" in capsys.readouterr().err


@needs_kernel
@CLASSES
def test_sparse_gradients_take_the_fast_path(factory):
    def run(path):
        var = tf.Variable(np.linspace(-1, 1, 40).reshape(10, 4))
        optimizer = factory(learning_rate=0.05, gamma=0.5)

        @tf.function
        def step(values):
            grad = tf.IndexedSlices(values, tf.constant([1, 7, 1]), tf.constant([10, 4]))
            optimizer.apply_gradients([(grad, var)])

        with fast.use(path):
            for t in range(5):
                step(tf.constant(np.full((3, 4), 0.1 * (t + 1))))
            ops = [op.type for op in step.get_concrete_function(
                tf.TensorSpec([3, 4], tf.float64)).graph.get_operations()]
        return var.numpy(), ops

    expected, _ = run("reference")
    actual, ops = run("kernel")
    assert KERNEL_OP in ops
    np.testing.assert_allclose(actual, expected, **TOLERANCES["float64"])


@needs_kernel
def test_kernel_copies_a_buffer_that_is_still_being_read():
    # A tensor read from the variable may share its buffer; the update must not touch it.
    var = tf.Variable([1.0, 2.0, 3.0])
    optimizer = OPTIMIZER_CLASSES["legacy"](learning_rate=0.5)
    optimizer.apply_gradients([(tf.constant([1.0, 1.0, 1.0]), var)])
    before = var.value()
    snapshot = before.numpy().copy()
    with fast.use("kernel"):
        optimizer.apply_gradients([(tf.constant([1.0, 1.0, 1.0]), var)])
    np.testing.assert_array_equal(before.numpy(), snapshot)
    assert not np.array_equal(var.numpy(), snapshot)


@needs_kernel
def test_kernel_rejects_mismatched_shapes():
    op = kernels.load().larq_bamsprod_resource_apply
    var, m, v, v_hat = (tf.Variable(tf.zeros([4])) for _ in range(4))
    one = tf.constant(0.5)
    with pytest.raises(tf.errors.InvalidArgumentError, match="same shape"):
        op(var=var.handle, m=m.handle, v=v.handle, v_hat=v_hat.handle, grad=tf.zeros([5]),
           one_minus_beta_1=one, one_minus_beta_2=one, epsilon=one, step_size=one, lower_scale=one,
           upper_scale=one, target=one, bound_mode=2)
    with pytest.raises(tf.errors.InvalidArgumentError, match="bound_mode must be 0, 1 or 2"):
        op(var=var.handle, m=m.handle, v=v.handle, v_hat=v_hat.handle, grad=tf.zeros([4]),
           one_minus_beta_1=one, one_minus_beta_2=one, epsilon=one, step_size=one, lower_scale=one,
           upper_scale=one, target=one, bound_mode=3)


@pytest.mark.slow
@needs_kernel
def test_kernel_matches_plain_path_under_mirrored_strategy():
    # Two virtual CPUs must be configured before TensorFlow starts: a fresh process.
    script = textwrap.dedent("""
        import larq_bamsprod, numpy as np, tensorflow as tf
        from larq_bamsprod import BAMSProd, fast, legacy
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        strategy = tf.distribute.MirroredStrategy(
            ["/cpu:0", "/cpu:1"], cross_device_ops=tf.distribute.ReductionToOneDevice())
        for cls in (legacy.BAMSProd, BAMSProd):
            result = {}
            for path in ("kernel", "reference"):
                with strategy.scope():
                    var = tf.Variable(np.linspace(-1, 1, 5000).astype("float32"))
                    opt = cls(learning_rate=0.1, gamma=0.5)

                @tf.function
                def step(g):
                    strategy.run(lambda g: opt.apply_gradients([(g, var)]), args=(g,))

                with fast.use(path):
                    for t in range(6):
                        step(tf.constant(np.sin(np.arange(5000) * (t + 1)), tf.float32))
                    ops = [o.type for o in step.get_concrete_function(
                        tf.TensorSpec([5000], tf.float32)).graph.get_operations()]
                assert ("LarqBamsprodResourceApply" in ops) == (path == "kernel"), path
                result[path] = var.numpy()
            np.testing.assert_allclose(result["kernel"], result["reference"],
                                       rtol=2e-5, atol=1e-6)
        print("OK")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0 and "OK" in done.stdout, done.stderr[-3000:]
