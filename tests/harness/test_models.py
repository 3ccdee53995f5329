"""Tests for larq_bamsprod.harness.catalogue.models: the paper's models, the registry, seeds and
training.

Every larq-zoo entry is built at both input shapes in ``test_models_zoo.py`` (slow).
"""

import larq as lq
import numpy as np
import pytest
import tensorflow as tf

from larq_bamsprod.harness.catalogue.models import MODELS, ZOO_MIN_INPUT, build_model

CUSTOM = ["BinaryCNN", "BinaryResNet34", "BinaryMobileNetV2"]
SHAPES = [(28, 28, 1), (32, 32, 3)]
is_binary = lq.optimizers.Bop.is_binary_variable

# MobileNetV2, Table 2 (Sandler et al., 2018): expansion t, channels c, repeats n, stride s.
MOBILENET_V2_TABLE = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                      (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]


@pytest.fixture(scope="module")
def built():
    """Models built once with seed=0, shared by the read-only tests of this module."""
    cache = {}

    def get(name, shape=(32, 32, 3), **kwargs):
        key = (name, shape, tuple(sorted(kwargs.items())))
        if key not in cache:
            cache[key] = build_model(name, shape, 10, seed=0, **kwargs)
        return cache[key]

    yield get
    tf.keras.backend.clear_session()


def _binary_and_real_kernels(model):
    binary = {v.name for v in model.trainable_weights if is_binary(v)}
    real = {v.name for v in model.trainable_weights if "kernel" in v.name} - binary
    return binary, real


@pytest.mark.parametrize("shape", SHAPES, ids=["28x28x1", "32x32x3"])
@pytest.mark.parametrize("name", CUSTOM)
def test_custom_model_maps_a_batch_to_class_probabilities(built, name, shape):
    model = built(name, shape)
    x = np.random.default_rng(0).uniform(-1, 1, (2, *shape)).astype(np.float32)
    y = model(x, training=False).numpy()
    assert y.shape == (2, 10)
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("name, kwargs", [
    ("BinaryCNN", {}), ("BinaryResNet34", {}), ("BinaryMobileNetV2", {}),
    ("BinaryMobileNetV2", {"width_multiplier": 0.35}),
    ("BinaryResNet34", {"width_multiplier": 0.25}),
], ids=["cnn", "resnet34", "mobilenetv2", "mobilenetv2-0.35", "resnet34-0.25"])
def test_every_binarised_input_takes_both_signs(built, name, kwargs):
    # A sign() after a ReLU (or any non-negative input) is +1 everywhere: the layer's
    # input carries no information, and a network without a shortcut around it cannot
    # learn. Every quantized layer's input must hold both signs on real-looking data.
    model = built(name, (28, 28, 1), **kwargs)
    layers = [layer for layer in model.layers if getattr(layer, "input_quantizer", None)]
    assert layers
    probe = tf.keras.Model(model.input, [layer.input for layer in layers])
    x = np.random.default_rng(0).uniform(0, 1, (8, 28, 28, 1)).astype(np.float32)
    for layer, value in zip(layers, probe(x, training=True)):
        positive = float(np.mean(value.numpy() >= 0))
        assert 0.05 < positive < 0.95, (layer.name, positive)


def test_binary_cnn_binarizes_all_but_the_first_conv_and_the_classifier(built):
    model = built("BinaryCNN")
    binary, real = _binary_and_real_kernels(model)
    assert len(binary) == 4  # three 3x3 convolutions and the hidden dense layer
    shapes = sorted(tuple(v.shape) for v in model.trainable_weights if is_binary(v))
    assert shapes == [(3, 3, 32, 64), (3, 3, 64, 128), (3, 3, 128, 256), (4 * 4 * 256, 128)]
    assert real == {model.get_layer("stem_conv").kernel.name,
                    model.get_layer("logits").kernel.name}
    assert model.count_params() <= 1_000_000


def test_binary_cnn_latent_weights_are_clipped(built):
    for layer in built("BinaryCNN").layers:
        if isinstance(layer, (lq.layers.QuantConv2D, lq.layers.QuantDense)):
            assert isinstance(layer.kernel_constraint, lq.constraints.WeightClip)


@pytest.mark.parametrize("width_multiplier, widths", [
    (1.0, (64, 128, 256, 512)),
    (0.25, (16, 32, 64, 128)),
    (0.1, (8, 16, 24, 48)),  # 6.4 -> 8 (never below 8), 12.8 -> 16, 25.6 -> 24, 51.2 -> 48
], ids=["1.0", "0.25", "0.1"])
def test_binary_resnet34_binarizes_every_3x3_conv_after_the_stem(built, width_multiplier,
                                                                 widths):
    model = built("BinaryResNet34", width_multiplier=width_multiplier)
    binary_params = sum(int(np.prod(v.shape)) for v in model.trainable_weights if is_binary(v))
    # ResNet-34 (He et al., 2016, Table 1): stages of [3, 4, 6, 3] basic blocks, two 3x3 convs
    # each, 64/128/256/512 filters (times the multiplier, rounded to multiples of 8 as
    # MobileNetV2 rounds); the first conv of a stage reads the previous width.
    expected, previous = 0, widths[0]
    assert model.get_layer("stem_conv").filters == widths[0]
    for filters, blocks in zip(widths, (3, 4, 6, 3)):
        expected += 9 * previous * filters + (2 * blocks - 1) * 9 * filters * filters
        previous = filters
    assert binary_params == expected
    assert sum(is_binary(v) for v in model.trainable_weights) == 2 * (3 + 4 + 6 + 3)


def test_binary_resnet34_shortcuts_stem_and_classifier_are_real_valued(built):
    model = built("BinaryResNet34")
    binary, real = _binary_and_real_kernels(model)
    shortcut_convs = [layer for layer in model.layers if "shortcut_conv" in layer.name]
    assert len(shortcut_convs) == 3  # one per downsampling stage
    expected_real = {layer.kernel.name for layer in shortcut_convs}
    expected_real |= {model.get_layer("stem_conv").kernel.name,
                      model.get_layer("logits").kernel.name}
    assert real == expected_real
    identity_adds = [layer for layer in model.layers if isinstance(layer, tf.keras.layers.Add)]
    assert len(identity_adds) == 3 + 4 + 6 + 3


def test_binary_mobilenet_v2_binarizes_exactly_the_depthwise_kernels(built):
    model = built("BinaryMobileNetV2")
    binary = [v for v in model.trainable_weights if is_binary(v)]
    assert len(binary) == sum(n for _, _, n, _ in MOBILENET_V2_TABLE)
    assert all(v.shape[:2] == (3, 3) and v.shape[3] == 1 for v in binary)
    # expanded channels of each block, from Table 2 (stem: 32 channels)
    expected, channels = 0, 32
    for t, c, n, _ in MOBILENET_V2_TABLE:
        for _ in range(n):
            expected += 9 * channels * t
            channels = c
    assert sum(int(np.prod(v.shape)) for v in binary) == expected


def test_binary_mobilenet_v2_pointwise_convs_are_real_valued(built):
    model = built("BinaryMobileNetV2")
    pointwise = [layer for layer in model.layers
                 if isinstance(layer, tf.keras.layers.Conv2D) and layer.kernel_size == (1, 1)]
    assert len(pointwise) == 16 + 17 + 1  # expand (not in the t=1 block), project, head
    assert not any(is_binary(layer.kernel) for layer in pointwise)
    assert not any(isinstance(layer, lq.layers.QuantConv2D) for layer in pointwise)


def test_binary_mobilenet_v2_width_multiplier_scales_the_channels(built):
    model = built("BinaryMobileNetV2", width_multiplier=0.5)
    projections = [model.get_layer(f"stage{i}_block0_project").filters
                   for i in range(len(MOBILENET_V2_TABLE))]
    # alpha = 0.5 rounded to multiples of 8 as in Keras' MobileNetV2 (16*0.5=8, 24*0.5=12->16)
    assert projections == [8, 16, 16, 32, 48, 80, 160]
    assert model.get_layer("stem_conv").filters == 16


@pytest.mark.parametrize("name", ["BinaryMobileNetV2", "BinaryResNet34", "BinaryResNetE18"])
@pytest.mark.parametrize("value", [0, -0.5, "0.5", True])
def test_width_multiplier_rejects_values_that_are_not_positive_numbers(name, value):
    with pytest.raises(ValueError, match=f"width_multiplier must be a number > 0, received "
                                         f"width_multiplier={value!r}"):
        build_model(name, (32, 32, 3), 10, width_multiplier=value)


def _conv_kernels(model):
    """(kernel shape, is a larq quantized conv) of every convolution, in layer order."""
    layers = [layer for layer in model.layers if isinstance(layer, tf.keras.Model)] or [model]
    return [(tuple(layer.kernel.shape), isinstance(layer, lq.layers.QuantConv2D))
            for layer in layers[-1].layers if isinstance(layer, tf.keras.layers.Conv2D)]


def test_binary_resnet_e18_at_full_width_is_larq_zoos_model(built):
    import larq_zoo

    ours = built("BinaryResNetE18", (32, 32, 3))
    zoo = larq_zoo.literature.BinaryResNetE18(input_shape=(32, 32, 3), weights=None,
                                              num_classes=10)
    # larq-zoo's published 11,699,368 (1000 classes, 224 px) minus 990 * 513 for the
    # 10-class head, 7,680 for the 3x3 (not 7x7) stem and 512 for the two batch norms (of
    # 64 channels, 4 weights each) that only the 224-px stem has
    assert ours.count_params() == zoo.count_params() == 11_699_368 - 990 * 513 - 7_680 - 512
    assert _conv_kernels(ours) == _conv_kernels(zoo)


def test_binary_resnet_e18_width_multiplier_scales_every_convolution_of_larq_zoos(built):
    import larq_zoo

    zoo = larq_zoo.literature.BinaryResNetE18(input_shape=(32, 32, 3), weights=None,
                                              num_classes=10)
    narrow = built("BinaryResNetE18", (32, 32, 3), width_multiplier=0.25)
    # larq-zoo's kernels with both channel counts divided by 4, except the RGB input's 3
    expected = [((h, w, c_in if c_in == 3 else c_in // 4, c_out // 4), binary)
                for (h, w, c_in, c_out), binary in _conv_kernels(zoo)]
    assert _conv_kernels(narrow) == expected
    assert sum(binary for _, binary in expected) == 16  # 16 binary 3x3 convolutions


def test_small_input_stems_downsample_8x_and_large_input_stems_32x(built):
    assert built("BinaryResNet34").get_layer("head_pool").input_shape[1:3] == (4, 4)
    assert built("BinaryMobileNetV2").get_layer("head_pool").input_shape[1:3] == (4, 4)
    large = built("BinaryMobileNetV2", (96, 96, 3))
    assert large.get_layer("head_pool").input_shape[1:3] == (3, 3)


@pytest.mark.parametrize("name", CUSTOM)
def test_same_seed_gives_identical_weights(built, name):
    first = built(name)
    second = build_model(name, (32, 32, 3), 10, seed=0)
    assert len(first.weights) == len(second.weights)
    for a, b in zip(first.weights, second.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_same_global_seed_without_seed_argument_gives_identical_weights():
    weights = []
    for _ in range(2):
        tf.keras.utils.set_random_seed(5)
        weights.append([w.numpy() for w in build_model("BinaryCNN", (28, 28, 1), 10).weights])
    for a, b in zip(*weights):
        np.testing.assert_array_equal(a, b)


def test_different_seeds_give_different_weights(built):
    other = build_model("BinaryCNN", (32, 32, 3), 10, seed=1)
    kernel = built("BinaryCNN").get_layer("block0_conv").kernel.numpy()
    assert not np.array_equal(kernel, other.get_layer("block0_conv").kernel.numpy())


def test_unknown_name_lists_the_valid_names():
    with pytest.raises(ValueError, match=r"name='ResNet50'.*BinaryCNN, BinaryResNet34, "
                                         r"BinaryMobileNetV2, BiRealNet"):
        build_model("ResNet50", (32, 32, 3), 10)


def test_lookup_ignores_letter_case():
    assert build_model("binarycnn", (28, 28, 1), 3, seed=0).name == "BinaryCNN"


@pytest.mark.parametrize("kwargs, message", [
    ({"input_shape": (32, 32), "num_classes": 10}, r"input_shape must be \(height, width, "
                                                   r"channels\).*received input_shape=\(32, 32\)"),
    ({"input_shape": (32, 32, 3), "num_classes": 0}, "num_classes must be an int >= 1, "
                                                     "received num_classes=0"),
])
def test_invalid_shapes_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_model("BinaryCNN", **kwargs)


def test_registry_has_the_zoo_models_and_no_xnornet():
    for name in ("BinaryResNetE18", "BiRealNet", "QuickNet", "QuickNetSmall", "QuickNetLarge"):
        assert name in MODELS
    assert "XNORNet" not in MODELS
    assert set(ZOO_MIN_INPUT) <= set(MODELS)


def _learnable_batch(shape, n=64, seed=0):
    """Class 1 iff the left half of the image is brighter than the right half."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n, *shape)).astype(np.float32)
    y = rng.integers(0, 2, n)
    half = shape[1] // 2
    x[y == 1, :, :half] = np.abs(x[y == 1, :, :half])
    x[y == 0, :, half:] = np.abs(x[y == 0, :, half:])
    return x, y


@pytest.mark.slow
@pytest.mark.parametrize("name, shape, eager", [
    ("BinaryCNN", (28, 28, 1), False),
    # 8x8 keeps the 21M-parameter ResNet cheap; eager skips tracing ~200 layers for 4 steps
    ("BinaryResNet34", (8, 8, 3), True),
])
def test_a_few_adam_steps_lower_the_loss(name, shape, eager):
    model = build_model(name, shape, 2, seed=0)
    model.compile(tf.keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy",
                  run_eagerly=eager)
    x, y = _learnable_batch(shape, n=16)
    losses = [float(model.train_on_batch(x, y)) for _ in range(4)]
    assert losses[-1] < 0.5 * losses[0], losses
