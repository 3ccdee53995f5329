"""The optimizer table of the comparison: names, defaults, overrides, schedule scaling."""

import json
import re

import larq as lq
import numpy as np
import pytest
import tensorflow as tf

import larq_bamsprod  # noqa: F401  (selects Keras 2 before TensorFlow loads)
from larq_bamsprod.harness.catalogue import registry
from larq_bamsprod.legacy import BAMSProd


def test_names_are_case_insensitive_and_deduplicated():
    assert registry.parse_optimizer_list("BAMSProd, bop,Adam,bop") == ["bamsprod", "bop", "adam"]


def test_unknown_optimizer_lists_valid_choices():
    with pytest.raises(ValueError, match="valid optimizers: bamsprod, bop, adam, amsgrad"):
        registry.parse_optimizer_list("bamsprod,lamb")


def test_bop_is_case_optimizer_with_bop_on_binary_and_adam_elsewhere():
    opt = registry.make_optimizer("bop")
    assert isinstance(opt, lq.optimizers.CaseOptimizer)
    (predicate, bop), = opt.pred_opt_pairs
    assert predicate is lq.optimizers.Bop.is_binary_variable
    assert isinstance(bop, lq.optimizers.Bop)
    assert bop.get_config()["threshold"] == pytest.approx(1e-8)
    assert bop.get_config()["gamma"] == pytest.approx(1e-4)
    assert isinstance(opt.default, tf.keras.optimizers.legacy.Adam)
    assert opt.default.get_config()["learning_rate"] == pytest.approx(1e-2)


@pytest.mark.parametrize(
    "name, cls, config",
    [
        ("adam", tf.keras.optimizers.legacy.Adam, {"learning_rate": 1e-3, "amsgrad": False}),
        ("amsgrad", tf.keras.optimizers.legacy.Adam, {"learning_rate": 1e-3, "amsgrad": True}),
        ("sgdm", tf.keras.optimizers.legacy.SGD, {"learning_rate": 0.1, "momentum": 0.9}),
        ("bamsprod", BAMSProd, {"learning_rate": larq_bamsprod.DEFAULTS["learning_rate"]}),
    ],
)
def test_recommended_defaults(name, cls, config):
    opt = registry.make_optimizer(name)
    assert type(opt) is cls
    got = opt.get_config()
    for key, value in config.items():
        assert got[key] == pytest.approx(value)


def test_override_replaces_one_hyperparameter():
    opt = registry.make_optimizer("bamsprod", {"learning_rate": 0.1, "bound_target": None})
    assert opt.get_config()["learning_rate"] == pytest.approx(0.1)
    assert opt.get_config()["bound_target"] is None


def test_parse_overrides_types_and_errors():
    parsed = registry.parse_overrides(
        ["bamsprod.learning_rate=0.1", "BAMSProd.bound_target=none", "sgdm.nesterov=true"]
    )
    assert parsed == {
        "bamsprod": {"learning_rate": 0.1, "bound_target": None},
        "sgdm": {"nesterov": True},
    }
    with pytest.raises(ValueError, match="must look like OPTIMIZER.NAME=VALUE"):
        registry.parse_overrides(["learning_rate=0.1"])
    with pytest.raises(ValueError, match="unknown hyperparameter 'betas' for optimizer 'adam'"):
        registry.parse_overrides(["adam.betas=0.9"])


def test_schedule_shape_scales_every_base_rate():
    shape = tf.keras.optimizers.schedules.PiecewiseConstantDecay([10], [1.0, 0.1])
    adam = registry.make_optimizer("adam", schedule_shape=shape)
    bop = registry.make_optimizer("bop", schedule_shape=shape)
    lr = adam._get_hyper("learning_rate")
    assert float(lr(0)) == pytest.approx(1e-3)
    assert float(lr(20)) == pytest.approx(1e-4)
    (_, bop_inner), = bop.pred_opt_pairs
    assert float(bop_inner._get_hyper("gamma")(20)) == pytest.approx(1e-5)
    assert float(bop.default._get_hyper("learning_rate")(20)) == pytest.approx(1e-3)


def test_variants_get_their_own_overrides_and_keep_base_defaults():
    overrides = registry.parse_overrides(["bamsprod@lr0.1.learning_rate=0.1"])
    assert overrides == {"bamsprod@lr0.1": {"learning_rate": 0.1}}
    opt = registry.make_optimizer("bamsprod@lr0.1", overrides["bamsprod@lr0.1"])
    assert isinstance(opt, BAMSProd)
    assert opt.get_config()["learning_rate"] == pytest.approx(0.1)
    assert opt.get_config()["beta_2"] == pytest.approx(larq_bamsprod.DEFAULTS["beta_2"])
    assert registry.parse_optimizer_list("bamsprod,BAMSProd@LR0.1") == [
        "bamsprod",
        "bamsprod@lr0.1",
    ]


def test_variant_of_unknown_optimizer_or_bad_label_is_rejected():
    with pytest.raises(ValueError, match="unknown optimizer 'lamb@x'"):
        registry.canonical_name("lamb@x")
    with pytest.raises(ValueError, match="variant label in 'adam@a b'"):
        registry.canonical_name("adam@a b")


def test_named_beta_1_schedules_follow_the_paper():
    inverse = registry.beta_1_schedule("inverse_time")
    corollary = registry.beta_1_schedule("corollary4", beta_2=0.999)
    for t in (1, 2, 10):  # Keras evaluates schedules at iterations = t - 1
        assert float(inverse(t - 1)) == pytest.approx(0.9 / t)
        assert float(corollary(t - 1)) == pytest.approx(0.9 * (0.9 / 0.999**0.5) ** (t - 1))
    with pytest.raises(ValueError, match="beta_1 must be a float or one of inverse_time"):
        registry.beta_1_schedule("linear")
    opt = registry.make_optimizer("bamsprod", {"beta_1": "inverse_time"})
    assert opt.get_config()["beta_1"]["class_name"] == "InverseTimeDecay"


def test_scheduled_optimizer_rebuilds_from_its_config():
    shape = tf.keras.optimizers.schedules.CosineDecay(1.0, decay_steps=100)
    opt = registry.make_optimizer("bamsprod", schedule_shape=shape)
    config = json.loads(json.dumps(opt.get_config()))
    clone = BAMSProd.from_config(config)
    lr = clone._get_hyper("learning_rate")
    expected = larq_bamsprod.DEFAULTS["learning_rate"] * float(shape(50))
    assert float(lr(50)) == pytest.approx(expected)


def test_bamsprod_with_fp_learning_rate_takes_bops_layout():
    opt = registry.make_optimizer("bamsprod@case", {"fp_learning_rate": 0.01, "lr_decay": None})
    assert isinstance(opt, lq.optimizers.CaseOptimizer)
    (predicate, inner), = opt.pred_opt_pairs
    assert predicate is lq.optimizers.Bop.is_binary_variable
    assert isinstance(inner, BAMSProd) and inner.get_config()["lr_decay"] is None
    assert isinstance(opt.default, tf.keras.optimizers.legacy.Adam)
    assert opt.default.get_config()["learning_rate"] == pytest.approx(0.01)
    assert type(registry.make_optimizer("bamsprod")) is BAMSProd  # the paper's layout


def test_bamsprod_with_fp_learning_rate_routes_binary_kernels_only():
    # One step on a binary QuantDense + real Dense: the binary kernel moves as a lone
    # BAMSProd would move it, every other variable as a lone Adam(0.01) would.
    def model():
        tf.keras.utils.set_random_seed(0)
        return tf.keras.Sequential([
            tf.keras.Input((4,)),
            lq.layers.QuantDense(3, kernel_quantizer="ste_sign", input_quantizer="ste_sign",
                                 kernel_constraint="weight_clip", use_bias=False),
            tf.keras.layers.Dense(2),
        ])

    x = tf.random.stateless_normal((8, 4), seed=(1, 2))

    def step(net, optimizer):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(net(x) ** 2)
        optimizer.apply_gradients(zip(tape.gradient(loss, net.trainable_weights),
                                      net.trainable_weights))
        return [v.numpy() for v in net.trainable_weights]

    case = step(model(), registry.make_optimizer("bamsprod", {"fp_learning_rate": 0.01}))
    alone = step(model(), registry.make_optimizer("bamsprod"))
    adam = step(model(), tf.keras.optimizers.legacy.Adam(0.01))
    net = model()
    assert lq.optimizers.Bop.is_binary_variable(net.trainable_weights[0])
    assert not any(map(lq.optimizers.Bop.is_binary_variable, net.trainable_weights[1:]))
    np.testing.assert_allclose(case[0], alone[0], rtol=1e-6)
    for got, want in zip(case[1:], adam[1:]):
        np.testing.assert_allclose(got, want, rtol=1e-6)
    assert not np.allclose(alone[1], adam[1])  # the two layouts do differ on real weights


@pytest.mark.parametrize("value", [0, -0.01, "fast", True])
def test_bad_fp_learning_rate_is_rejected_when_parsed(value):
    with pytest.raises(ValueError, match=f"fp_learning_rate must be a number > 0 .*received "
                                         f"fp_learning_rate={re.escape(repr(value))} for "
                                         f"optimizer 'bamsprod@case'"):
        registry.hyperparameters("bamsprod@case", {"fp_learning_rate": value})
