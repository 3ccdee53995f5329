"""Specification of AdaBound and AMSBound (Luo et al., ICLR 2019) against a NumPy reference."""

from __future__ import annotations  # noqa: I001  (larq_bamsprod must precede tensorflow)

import json

import larq_bamsprod  # noqa: F401  (selects Keras 2 before TensorFlow is imported)
import numpy as np
import pytest
import tensorflow as tf

from larq_bamsprod.harness.catalogue.adabound import AdaBound, AMSBound

OPTIMIZERS_UNDER_TEST = [
    # (class, constructor kwargs); the generic tests run every row.
    (AdaBound, {}),
    (AMSBound, {}),
    (AdaBound, {"learning_rate": 1e-2, "gamma": 0.05, "weight_decay": 1e-2}),
    (AMSBound, {"learning_rate": 1e-2, "beta_1": 0.5, "beta_2": 0.9, "gamma": 0.05}),
]
ROW_IDS = ["adabound", "amsbound", "adabound-wd-fastbounds", "amsbound-betas"]

TOLERANCE = {
    tf.float16: {"rtol": 2e-2, "atol": 2e-2},
    tf.float32: {"rtol": 1e-5, "atol": 1e-6},
    tf.float64: {"rtol": 1e-10, "atol": 1e-12},
}

# Where a schedule evaluated in float32, or a ratio of float32-rounded hyperparameters,
# enters a float64 run.
FLOAT64_VIA_FLOAT32 = {"rtol": 1e-6, "atol": 1e-7}

STORED_AS_FLOAT32 = ("learning_rate", "beta_1", "beta_2", "final_lr", "gamma")


def as_stored(kwargs):
    """The hyperparameters as the optimizer holds them.

    The legacy base class keeps these in float32 variables (as legacy Adam does), so a
    float64 variable sees them rounded to float32; the reference is given the same values.
    """
    defaults = {"learning_rate": 1e-3, "beta_1": 0.9, "beta_2": 0.999, "final_lr": 0.1,
                "gamma": 1e-3}
    out = {**defaults, **kwargs}
    for key in STORED_AS_FLOAT32:
        if isinstance(out[key], float):
            out[key] = float(np.float32(out[key]))
    return out


def reference_adabound(
    w0,
    grads,
    *,
    learning_rate=1e-3,
    beta_1=0.9,
    beta_2=0.999,
    final_lr=0.1,
    gamma=1e-3,
    epsilon=1e-8,
    weight_decay=0.0,
    amsbound=False,
    base_learning_rate=None,
    record=None,
):
    """AdaBound/AMSBound in float64, written from the authors' PyTorch code (Luolc/AdaBound).

    ``learning_rate`` is a float or a function of the Keras step (updates done so far,
    0-based). Returns the weights after each step. ``record`` (a dict), if given, counts
    how often the clip hit the lower and the upper bound.
    """
    lr_at = learning_rate if callable(learning_rate) else (lambda step: learning_rate)
    base = base_learning_rate if base_learning_rate is not None else lr_at(0)
    w = np.asarray(w0, np.float64).copy()
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    v_max = np.zeros_like(w)
    trajectory = []
    for t, g in enumerate(grads, start=1):
        g = np.asarray(g, np.float64) + weight_decay * w
        m = beta_1 * m + (1 - beta_1) * g
        v = beta_2 * v + (1 - beta_2) * g * g
        if amsbound:
            v_max = np.maximum(v_max, v)
            denom = np.sqrt(v_max) + epsilon
        else:
            denom = np.sqrt(v) + epsilon
        lr = lr_at(t - 1)
        step_size = lr * np.sqrt(1 - beta_2**t) / (1 - beta_1**t)
        final = final_lr * lr / base
        lower = final * (1 - 1 / (gamma * t + 1))
        upper = final * (1 + 1 / (gamma * t))
        rate = step_size / denom
        if record is not None:
            record["lower"] = record.get("lower", 0) + int(np.sum(rate < lower))
            record["upper"] = record.get("upper", 0) + int(np.sum(rate > upper))
        w = w - np.clip(rate, lower, upper) * m
        trajectory.append(w.copy())
    return trajectory


def random_gradients(steps, seed=0):
    rng = np.random.default_rng(seed)
    # Coordinates of very different scale, so the clip hits both bounds and neither.
    scales = np.array([1e-3, 1e-2, 1e-1, 1.0, 10.0])
    return [rng.normal(size=scales.shape) * scales for _ in range(steps)]


def run_optimizer(optimizer, w0, grads, dtype):
    var = tf.Variable(np.asarray(w0), dtype=dtype)
    trajectory = []
    for g in grads:
        optimizer.apply_gradients([(tf.constant(g, dtype=dtype), var)])
        trajectory.append(var.numpy().astype(np.float64))
    return var, trajectory


def reference_kwargs(cls, kwargs):
    return {**as_stored(kwargs), "amsbound": cls is AMSBound}


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("cls, kwargs", OPTIMIZERS_UNDER_TEST, ids=ROW_IDS)
def test_each_step_matches_the_numpy_reference(cls, kwargs, dtype):
    grads = random_gradients(60)
    w0 = np.linspace(-1.0, 1.0, 5)
    var, trajectory = run_optimizer(cls(**kwargs), w0, grads, dtype)
    expected = reference_adabound(w0, grads, **reference_kwargs(cls, kwargs))
    assert var.dtype == dtype
    for step, (got, want) in enumerate(zip(trajectory, expected), start=1):
        np.testing.assert_allclose(got, want, **TOLERANCE[dtype], err_msg=f"step {step}")


@pytest.mark.parametrize("cls", [AdaBound, AMSBound])
def test_float16_steps_match_the_numpy_reference(cls):
    # Gradients of order 1: float16 cannot hold (1 - beta_2) * g^2 for much smaller ones.
    grads = [np.random.default_rng(3).normal(size=5) for _ in range(10)]
    w0 = np.linspace(-1.0, 1.0, 5)
    var, trajectory = run_optimizer(cls(learning_rate=1e-2), w0, grads, tf.float16)
    expected = reference_adabound(w0, grads, learning_rate=1e-2, amsbound=cls is AMSBound)
    assert var.dtype == tf.float16
    np.testing.assert_allclose(trajectory[-1], expected[-1], **TOLERANCE[tf.float16])


def test_reference_cases_exercise_both_bounds():
    # Guards the test above: a case where the clip never acts would not test it.
    record = {}
    reference_adabound(
        np.zeros(5), random_gradients(60), learning_rate=1e-2, gamma=0.05, record=record
    )
    assert record["lower"] > 0 and record["upper"] > 0


def test_learning_rate_schedule_scales_final_lr_like_the_reference():
    schedule = tf.keras.optimizers.schedules.ExponentialDecay(1e-2, decay_steps=10, decay_rate=0.5)
    grads = random_gradients(60, seed=1)
    w0 = np.linspace(-1.0, 1.0, 5)
    _, trajectory = run_optimizer(AdaBound(schedule, gamma=0.05), w0, grads, tf.float64)
    expected = reference_adabound(
        w0, grads, learning_rate=lambda step: 1e-2 * 0.5 ** (step / 10), gamma=0.05
    )
    np.testing.assert_allclose(trajectory, expected, **FLOAT64_VIA_FLOAT32)


def test_explicit_base_learning_rate_scales_final_lr():
    grads = random_gradients(30, seed=2)
    w0 = np.zeros(5)
    opt = AdaBound(learning_rate=1e-2, base_learning_rate=4e-2, gamma=0.05)
    _, trajectory = run_optimizer(opt, w0, grads, tf.float64)
    # final_lr is scaled by lr / base = 1/4.
    expected = reference_adabound(w0, grads, learning_rate=1e-2, gamma=0.05, final_lr=0.025)
    np.testing.assert_allclose(trajectory, expected, **FLOAT64_VIA_FLOAT32)


def test_inverse_sqrt_schedule_gives_algorithm_2_of_the_paper():
    # Luo et al. (2019), Algorithm 2: eta_t = clip(alpha / sqrt(V_t), eta_l(t), eta_u(t)) / sqrt(t),
    # here with the reference's bias correction and epsilon inside the clip.
    alpha, final_lr, gamma, b1, b2, eps = 1e-2, 0.1, 0.05, 0.9, 0.999, 1e-8

    class InverseSqrt(tf.keras.optimizers.schedules.LearningRateSchedule):
        def __call__(self, step):
            return alpha / tf.sqrt(tf.cast(step, tf.float32) + 1.0)

        def get_config(self):
            return {}

    grads = random_gradients(40, seed=4)
    w = np.zeros(5)
    m = np.zeros(5)
    v = np.zeros(5)
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        corrected = alpha * np.sqrt(1 - b2**t) / (1 - b1**t) / (np.sqrt(v) + eps)
        bounds = final_lr * (1 - 1 / (gamma * t + 1)), final_lr * (1 + 1 / (gamma * t))
        w = w - np.clip(corrected, *bounds) / np.sqrt(t) * m
    var, _ = run_optimizer(AdaBound(InverseSqrt(), gamma=gamma), np.zeros(5), grads, tf.float64)
    np.testing.assert_allclose(var.numpy(), w, **FLOAT64_VIA_FLOAT32)


def test_amsbound_keeps_the_running_maximum_of_v():
    grads = [np.array([10.0])] + [np.array([0.1])] * 20
    opt = AMSBound()
    var, _ = run_optimizer(opt, np.zeros(1), grads, tf.float64)
    beta_2 = float(np.float32(0.999))  # as the optimizer stores it (see as_stored)
    v = 0.0
    v_max = 0.0
    for g in grads:
        v = beta_2 * v + (1 - beta_2) * g[0] ** 2
        v_max = max(v_max, v)
    np.testing.assert_allclose(opt.get_slot(var, "v").numpy(), [v], rtol=1e-6)
    np.testing.assert_allclose(opt.get_slot(var, "vhat").numpy(), [v_max], rtol=1e-6)
    assert v_max > 1.01 * v  # the sequence makes max and current differ


def test_adabound_has_no_running_maximum_slot():
    opt = AdaBound()
    var, _ = run_optimizer(opt, np.zeros(2), [np.ones(2)], tf.float32)
    assert sorted(opt.get_slot_names()) == ["m", "v"]


@pytest.mark.parametrize(
    "learning_rate, bound",
    # Adam's rate lr / |g| far below the lower bound, then far above the upper bound.
    [(1e-7, "lower"), (1e3, "upper")],
)
def test_effective_learning_rate_closes_on_final_lr(learning_rate, bound):
    final_lr, gamma, steps = 0.1, 0.1, 3000
    opt = AdaBound(learning_rate=learning_rate, final_lr=final_lr, gamma=gamma, beta_1=0.0)
    var = tf.Variable([0.0], dtype=tf.float64)

    @tf.function
    def run():
        for _ in tf.range(steps - 1):
            opt.apply_gradients([(tf.constant([1.0], tf.float64), var)])
        before = var.read_value()
        opt.apply_gradients([(tf.constant([1.0], tf.float64), var)])
        return before - var.read_value()

    rate = float(run()[0])  # beta_1 = 0 and g = 1, so the step is the effective rate
    t = steps
    expected = final_lr * (1 - 1 / (gamma * t + 1) if bound == "lower" else 1 + 1 / (gamma * t))
    np.testing.assert_allclose(rate, expected, rtol=1e-6)
    assert rate == pytest.approx(final_lr, rel=1.01 / (gamma * t))


def test_sparse_gradients_apply_as_their_dense_equivalent():
    values = tf.constant([[1.0, 2.0], [3.0, 4.0], [-1.0, 0.5]])
    # Index 0 twice: the dense equivalent sums them. Row 1 has a gradient at step 1 only.
    steps = [tf.constant([0, 1, 0])] + [tf.constant([0, 2, 0])] * 3
    w0 = np.arange(8, dtype=np.float32).reshape(4, 2) / 8.0
    sparse_var = tf.Variable(w0)
    dense_var = tf.Variable(w0)
    sparse_opt = AMSBound(learning_rate=0.1)
    dense_opt = AMSBound(learning_rate=0.1)
    for step, indices in enumerate(steps):
        sparse_opt.apply_gradients(
            [(tf.IndexedSlices(values, indices, tf.constant([4, 2])), sparse_var)]
        )
        dense_opt.apply_gradients([(tf.math.unsorted_segment_sum(values, indices, 4), dense_var)])
        if step == 0:
            row_1_after_first_step = sparse_var.numpy()[1]
    np.testing.assert_allclose(sparse_var.numpy(), dense_var.numpy(), rtol=1e-6)
    # Without a gradient, row 1 still moves: its momentum decays, it is not frozen.
    assert not np.allclose(sparse_var.numpy()[1], row_1_after_first_step)


@pytest.mark.parametrize("cls", [AdaBound, AMSBound])
def test_config_round_trip_keeps_every_argument_and_the_schedule(cls):
    schedule = tf.keras.optimizers.schedules.InverseTimeDecay(3e-3, 100, 0.5)
    opt = cls(
        learning_rate=schedule,
        beta_1=0.8,
        beta_2=0.99,
        final_lr=0.05,
        gamma=2e-3,
        epsilon=1e-7,
        weight_decay=1e-4,
        base_learning_rate=6e-3,
        clipnorm=1.0,
    )
    config = json.loads(json.dumps(opt.get_config()))  # JSON-clean
    rebuilt = cls.from_config(config)
    assert rebuilt.get_config() == opt.get_config()
    assert isinstance(rebuilt._hyper["learning_rate"], type(schedule))
    assert rebuilt._hyper["learning_rate"].get_config() == schedule.get_config()
    for key, value in {"beta_1": 0.8, "final_lr": 0.05, "gamma": 2e-3, "epsilon": 1e-7,
                       "weight_decay": 1e-4, "base_learning_rate": 6e-3, "clipnorm": 1.0}.items():
        assert config[key] == pytest.approx(value), key
    assert rebuilt.amsbound is (cls is AMSBound)


@pytest.mark.parametrize("cls", [AdaBound, AMSBound])
def test_keras_deserializes_the_registered_name(cls):
    serialized = tf.keras.optimizers.serialize(cls(final_lr=0.2))
    assert serialized["registered_name"] == f"larq_bamsprod>{cls.__name__}"
    rebuilt = tf.keras.optimizers.deserialize(serialized, use_legacy_optimizer=True)
    assert type(rebuilt) is cls
    assert rebuilt.get_config()["final_lr"] == pytest.approx(0.2)


def test_config_keeps_the_base_after_the_learning_rate_is_changed():
    # ReduceLROnPlateau-style change: final_lr must keep following lr / initial lr.
    opt = AdaBound(learning_rate=1e-2, gamma=0.05)
    var, _ = run_optimizer(opt, np.zeros(5), random_gradients(3), tf.float64)
    opt.learning_rate = 5e-3
    rebuilt = AdaBound.from_config(opt.get_config())
    grads = random_gradients(5, seed=7)
    _, got = run_optimizer(opt, var.numpy(), grads, tf.float64)
    _, got_rebuilt = run_optimizer(rebuilt, var.numpy(), grads, tf.float64)
    assert rebuilt.base_learning_rate == pytest.approx(1e-2)
    # The rebuilt optimizer starts again at t = 1 but pairs final_lr the same way: half of it.
    expected = reference_adabound(
        var.numpy(), grads, learning_rate=5e-3, gamma=0.05, base_learning_rate=1e-2
    )
    np.testing.assert_allclose(got_rebuilt, expected, **FLOAT64_VIA_FLOAT32)
    assert not np.allclose(got, got_rebuilt)  # the original continues at t = 4


def test_checkpoint_restore_continues_the_same_trajectory(tmp_path):
    grads = random_gradients(10, seed=5)
    var = tf.Variable(np.zeros(5))
    opt = AMSBound(learning_rate=1e-2, gamma=0.05)
    for g in grads[:5]:
        opt.apply_gradients([(tf.constant(g), var)])
    path = tf.train.Checkpoint(var=var, opt=opt).save(str(tmp_path / "ckpt"))
    for g in grads[5:]:
        opt.apply_gradients([(tf.constant(g), var)])

    var2 = tf.Variable(np.ones(5))
    opt2 = AMSBound(learning_rate=1e-2, gamma=0.05)
    tf.train.Checkpoint(var=var2, opt=opt2).restore(path)
    for g in grads[5:]:
        opt2.apply_gradients([(tf.constant(g), var2)])
    np.testing.assert_allclose(var2.numpy(), var.numpy(), rtol=1e-12)


@pytest.mark.parametrize("cls, kwargs", OPTIMIZERS_UNDER_TEST, ids=ROW_IDS)
def test_loss_falls_on_a_tiny_seeded_model(cls, kwargs):
    tf.keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(256, 4)).astype(np.float32)
    y = x @ np.array([[1.0], [-2.0], [0.5], [3.0]], np.float32) + 0.1
    model = tf.keras.Sequential([tf.keras.layers.Dense(8, activation="relu"),
                                 tf.keras.layers.Dense(1)])
    model.compile(optimizer=cls(**{**kwargs, "learning_rate": 5e-2}), loss="mse")
    history = model.fit(x, y, batch_size=32, epochs=8, verbose=0)
    assert history.history["loss"][-1] < 0.1 * history.history["loss"][0]


@pytest.mark.parametrize("cls", [AdaBound, AMSBound])
def test_updates_binary_variables_inside_larq_case_optimizer(cls):
    import larq as lq

    tf.keras.utils.set_random_seed(0)
    inner = cls(learning_rate=1e-2)
    optimizer = lq.optimizers.CaseOptimizer(
        (lq.optimizers.Bop.is_binary_variable, inner),
        default_optimizer=tf.keras.optimizers.legacy.Adam(1e-2),
    )
    model = tf.keras.Sequential([
        tf.keras.Input((4,)),
        lq.layers.QuantDense(16, kernel_quantizer="ste_sign", kernel_constraint="weight_clip"),
        tf.keras.layers.Dense(1),
    ])
    model.compile(optimizer=optimizer, loss="mse")
    x = np.random.default_rng(1).normal(size=(128, 4)).astype(np.float32)
    y = np.sign(x[:, :1])
    kernel = model.layers[0].kernel
    before = kernel.numpy()
    history = model.fit(x, y, batch_size=32, epochs=3, verbose=0)
    assert inner.iterations.numpy() == 12
    assert sorted(inner.get_slot_names()) == (["m", "v", "vhat"] if cls is AMSBound else ["m", "v"])
    assert inner.get_slot(kernel, "m") is not None
    assert not np.allclose(kernel.numpy(), before)
    assert history.history["loss"][-1] < history.history["loss"][0]


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"learning_rate": 0.0}, ValueError,
         r"learning_rate must be > 0.0, received learning_rate=0.0"),
        ({"learning_rate": "fast"}, TypeError, r"learning_rate must be a float"),
        ({"beta_1": 1.0}, ValueError, r"beta_1 must be in \[0, 1\), received beta_1=1.0"),
        ({"beta_1": -0.1}, ValueError, r"beta_1 must be in \[0, 1\), received beta_1=-0.1"),
        ({"beta_2": 1.5}, ValueError, r"beta_2 must be in \[0, 1\), received beta_2=1.5"),
        ({"beta_2": None}, TypeError, r"beta_2 must be a float, received beta_2=None"),
        ({"final_lr": 0.0}, ValueError, r"final_lr must be > 0.0, received final_lr=0.0"),
        ({"final_lr": -1.0}, ValueError, r"final_lr must be > 0.0, received final_lr=-1.0"),
        ({"gamma": 0.0}, ValueError, r"gamma must be > 0.0, received gamma=0.0"),
        ({"epsilon": -1e-8}, ValueError, r"epsilon must be >= 0.0, received epsilon=-1e-08"),
        ({"weight_decay": -0.1}, ValueError,
         r"weight_decay must be >= 0.0, received weight_decay=-0.1"),
        ({"weight_decay": True}, TypeError,
         r"weight_decay must be a float, received weight_decay=True"),
        ({"amsbound": 1}, TypeError, r"amsbound must be a bool, received amsbound=1"),
        ({"base_learning_rate": 0.0}, ValueError,
         r"base_learning_rate must be > 0.0, received base_learning_rate=0.0"),
        ({"clipnorm": -1.0}, ValueError, r"clipnorm >= 0, received: -1.0"),
    ],
)
def test_bad_arguments_raise_errors_naming_them(kwargs, error, match):
    with pytest.raises(error, match=match):
        AdaBound(**kwargs)


def test_amsbound_rejects_the_amsbound_argument():
    with pytest.raises(TypeError, match="amsbound"):
        AMSBound(amsbound=False)
