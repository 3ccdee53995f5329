"""One registry of binary networks: larq-zoo graphs and the paper's models, any input size.

``build_model(name, input_shape, num_classes)`` returns an uncompiled ``tf.keras.Model`` that
ends in a softmax (as larq-zoo's ``include_top=True`` does), so train it with
``sparse_categorical_crossentropy`` on probabilities (``from_logits=False``).

Binary kernels are quantized with ``ste_sign`` (``precision == 1``), so
``larq.optimizers.Bop.is_binary_variable`` (and ``CaseOptimizer``) pick them out; their latent
weights carry ``kernel_constraint="weight_clip"`` (clip to [-1, 1]) as in Larq's examples.
Real-valued kernels are the first convolution, the shortcuts, the point-wise convolutions
and the classifier.

Models:

* ``BinaryCNN``: a small binary CNN for quick CPU runs (686k parameters at 28x28x1, 916k
  at 32x32x3; the flattened features grow with the input area).
* ``BinaryResNet34``: the binary ResNet-34 of the paper's section 5.2 (``width_multiplier``).
* ``BinaryMobileNetV2``: the binary MobileNetV2 of section 5.2 (``width_multiplier``).
* ``BinaryResNetE18``: larq-zoo's, with a ``width_multiplier`` it lacks
  (:func:`binary_resnet_e18`: larq-zoo's own factory, every convolution narrower).
* ``BinaryLSTM``: the binary 3-layer LSTM language model of section 5.3
  (:func:`larq_bamsprod.harness.catalogue.rnn.binary_lstm`; ``hidden``, ``embedding``, ``layers``,
  ``seq_len``, ...). It takes windows of token ids, ``input_shape=(seq_len,)``, and
  ``num_classes`` is the vocabulary size; it trains on text corpora (``ptb``), the others
  on images (:func:`larq_bamsprod.harness.catalogue.workloads.check_model_fits_dataset`).
* larq-zoo, by class name, built with ``weights=None``: ``BiRealNet``, ``BinaryAlexNet``,
  ``BinaryDenseNet28``, ``BinaryDenseNet37``, ``BinaryDenseNet37Dilated``,
  ``BinaryDenseNet45``, ``BinaryResNetE18``, ``DoReFaNet``, ``MeliusNet22``,
  ``RealToBinaryNet``, ``QuickNet``, ``QuickNetSmall``, ``QuickNetLarge``.

Note:
    Small inputs and larq-zoo. The zoo graphs are ImageNet designs; some downsample a 28x28
    or 32x32 image to nothing or to mismatched odd sizes. For those ``ZOO_MIN_INPUT`` gives
    the smallest side they are built at, found by building them here: a smaller input is
    first enlarged by a bilinear ``Resizing`` layer inside the returned model, so callers
    still feed their native size. QuickNet, QuickNetSmall, QuickNetLarge: 32 (max-pooling
    fails at 28); BinaryResNetE18: 32 (its pooled shortcuts and strided convolutions
    disagree at odd sizes such as 28 -> 7 -> 4 vs 3); DoReFaNet: 48 (its 12x12 stride-4
    valid stem and valid pooling need >= 44); BinaryAlexNet: 64 (three 3x3 stride-2 valid
    poolings after a stride-4 stem need >= 57). The others build at 28x28 directly.
    ``XNORNet`` is not registered: its 6x6 valid convolution after 32x downsampling needs
    inputs of at least 217 pixels (ImageNet's 224), i.e. an 8x enlargement of CIFAR images
    and a 62M-parameter model, which says nothing useful about small-image training.

Note:
    Initialization. Kernels use ``glorot_normal`` (a truncated Gaussian), following the
    paper's "truncated Gaussian initialization" (section 5). Builders draw from Keras'
    global random state: ``build_model(..., seed=s)`` calls
    ``tf.keras.utils.set_random_seed(s)`` first (which also seeds Python, NumPy and
    TensorFlow's global seed), so building twice with the same ``seed`` gives identical
    weights. With ``seed=None`` the current global state is used as it is.

Example:
    >>> from larq_bamsprod.harness.catalogue.models import build_model
    >>> model = build_model("BinaryResNet34", (32, 32, 3), 10, seed=0)
    >>> model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])

References:
    Binary ResNet-34 and binary MobileNetV2 with real-valued shortcut / point-wise
    connections: "BAMSProd: A Step towards Generalizing the Adaptive Optimization Methods to
    Deep Binary Model", CVPR Workshops 2020, section 5.2. ResNet: He et al., CVPR 2016.
    MobileNetV2: Sandler et al., CVPR 2018.
"""

from __future__ import annotations

import functools
import inspect
import numbers
from typing import Callable

import larq as lq
import larq_zoo
import tensorflow as tf
from larq_zoo.literature.resnet_e import BinaryResNetE18Factory

from larq_bamsprod.harness.catalogue.rnn import binary_lstm
from larq_bamsprod.hyperparameters import is_real

CLASSIFICATION = "classification"
LANGUAGE_MODELLING = "language_modelling"

__all__ = ["MIN_INPUT", "MODELS", "ZOO_MIN_INPUT", "build_model", "enlarged_input", "input_note",
           "model_arg"]

_BN = {"momentum": 0.9, "epsilon": 1e-5}
_INIT = "glorot_normal"  # truncated normal: the paper's initialization
_BINARY = {
    "input_quantizer": "ste_sign",
    "kernel_quantizer": "ste_sign",
    "kernel_constraint": "weight_clip",
    "kernel_initializer": _INIT,
    "use_bias": False,
}


def _bn(name: str | None = None) -> tf.keras.layers.Layer:
    return tf.keras.layers.BatchNormalization(**_BN, name=name)


def _real_conv(filters: int, kernel_size: int, strides: int = 1, name: str | None = None):
    return tf.keras.layers.Conv2D(filters, kernel_size, strides=strides, padding="same",
                                  use_bias=False, kernel_initializer=_INIT, name=name)


def _binary_conv(filters: int, kernel_size: int, strides: int = 1, name: str | None = None):
    return lq.layers.QuantConv2D(filters, kernel_size, strides=strides, padding="same",
                                 name=name, **_BINARY)


def _classifier(x: tf.Tensor, num_classes: int) -> tf.Tensor:
    x = tf.keras.layers.Dense(num_classes, kernel_initializer=_INIT, name="logits")(x)
    # float32 so that mixed precision keeps a stable softmax, as larq-zoo does
    return tf.keras.layers.Activation("softmax", dtype="float32", name="softmax")(x)


def binary_cnn(input_shape: tuple[int, int, int], num_classes: int) -> tf.keras.Model:
    """Small binary CNN: real 3x3 conv, three binary 3x3 convs, binary dense.

    Layers: ``Conv2D(32) - MaxPool(2) - BN - [QuantConv2D(f) - MaxPool(2) - BN] for f in
    (64, 128) - QuantConv2D(256) - BN - Flatten - QuantDense(128) - BN - Dense(num_classes)
    - softmax``. Batch normalization before every binary layer centres its input, so the sign
    carries information. Pooling right after the stem keeps the binary convolutions at
    1/4 of the input resolution: ~10M multiply-adds per 28x28 image (four times fewer than
    pooling after each binary conv), so a step of batch 128 takes a fraction of a second
    on 2 CPU cores.

    Args:
        input_shape: ``(H, W, C)``; H and W at least 8.
        num_classes: Number of outputs.

    Returns:
        The model.
    """
    inputs = tf.keras.Input(input_shape)
    x = _real_conv(32, 3, name="stem_conv")(inputs)
    x = tf.keras.layers.MaxPool2D(2, name="stem_pool")(x)
    x = _bn("stem_bn")(x)
    for i, filters in enumerate((64, 128, 256)):
        x = _binary_conv(filters, 3, name=f"block{i}_conv")(x)
        if i < 2:
            x = tf.keras.layers.MaxPool2D(2, name=f"block{i}_pool")(x)
        x = _bn(f"block{i}_bn")(x)
    x = tf.keras.layers.Flatten()(x)
    x = lq.layers.QuantDense(128, name="dense", **_BINARY)(x)
    x = _bn("dense_bn")(x)
    return tf.keras.Model(inputs, _classifier(x, num_classes), name="BinaryCNN")


def binary_resnet34(input_shape: tuple[int, int, int], num_classes: int,
                    stem: str = "auto", width_multiplier: float = 1.0) -> tf.keras.Model:
    """Binary ResNet-34 with real-valued shortcuts (the paper, section 5.2).

    Basic blocks ``[3, 4, 6, 3]`` with 64, 128, 256, 512 filters. Each block is
    ``x + BN(bconv(BN(bconv(x))))``, where ``bconv`` is a 3x3 ``QuantConv2D`` with
    ``ste_sign`` input and kernel quantizers; the sign is the activation, so there is no ReLU
    inside the blocks. Shortcuts are real-valued: the identity, or where the shape changes
    ``AvgPool(2) - Conv2D 1x1 - BN`` (the average pooling keeps all input positions, as in
    Bi-Real Net, rather than ResNet's strided 1x1 convolution). Head:
    ``BN - ReLU - global average pooling - Dense - softmax``.

    Args:
        input_shape: ``(H, W, C)``.
        num_classes: Number of outputs.
        stem: ``"cifar"`` (3x3 stride-1 real conv - BN, no pooling), ``"imagenet"``
            (7x7 stride-2 conv - BN - 3x3 stride-2 max-pool), or ``"auto"``: CIFAR for inputs
            up to 64 pixels a side. Defaults to `"auto"`.
        width_multiplier: Filters of every convolution (stem, blocks, shortcuts) times this,
            rounded to multiples of 8 as MobileNetV2's ``alpha``; depth and layout are
            unchanged. ``0.25`` gives 16/32/64/128 filters and about 1/16 of the
            multiply-adds, for CPU-sized comparisons. Defaults to `1.0` (ResNet-34).

    Returns:
        The model.
    """
    _check_width_multiplier(width_multiplier)
    stem = _resolve_stem(stem, input_shape)
    widths = [_make_divisible(f * width_multiplier) for f in (64, 128, 256, 512)]
    inputs = tf.keras.Input(input_shape)
    if stem == "cifar":
        x = _bn("stem_bn")(_real_conv(widths[0], 3, name="stem_conv")(inputs))
    else:
        x = _bn("stem_bn")(_real_conv(widths[0], 7, strides=2, name="stem_conv")(inputs))
        x = tf.keras.layers.MaxPool2D(3, strides=2, padding="same", name="stem_pool")(x)
    in_filters = widths[0]
    for stage, (filters, blocks) in enumerate(zip(widths, (3, 4, 6, 3))):
        for block in range(blocks):
            strides = 2 if stage > 0 and block == 0 else 1
            name = f"stage{stage}_block{block}"
            shortcut = x
            if strides != 1 or in_filters != filters:
                shortcut = tf.keras.layers.AveragePooling2D(
                    strides, padding="same", name=f"{name}_shortcut_pool")(shortcut)
                shortcut = _real_conv(filters, 1, name=f"{name}_shortcut_conv")(shortcut)
                shortcut = _bn(f"{name}_shortcut_bn")(shortcut)
            y = _binary_conv(filters, 3, strides, name=f"{name}_conv1")(x)
            y = _bn(f"{name}_bn1")(y)
            y = _binary_conv(filters, 3, name=f"{name}_conv2")(y)
            y = _bn(f"{name}_bn2")(y)
            x = tf.keras.layers.Add(name=f"{name}_add")([shortcut, y])
            in_filters = filters
    x = tf.keras.layers.Activation("relu", name="head_relu")(_bn("head_bn")(x))
    x = tf.keras.layers.GlobalAveragePooling2D(name="head_pool")(x)
    return tf.keras.Model(inputs, _classifier(x, num_classes), name="BinaryResNet34")


def _resolve_stem(stem: str, input_shape) -> str:
    if stem not in ("auto", "cifar", "imagenet"):
        raise ValueError(f"stem must be one of ['auto', 'cifar', 'imagenet'], received "
                         f"stem={stem!r}.")
    if stem == "auto":
        return "cifar" if min(input_shape[:2]) <= 64 else "imagenet"
    return stem


def _check_width_multiplier(width_multiplier) -> None:
    if not (is_real(width_multiplier) and width_multiplier > 0):
        raise ValueError(f"width_multiplier must be a number > 0, received "
                         f"width_multiplier={width_multiplier!r}; use e.g. 0.25 for a quarter "
                         f"of the channels.")


def _make_divisible(value: float, divisor: int = 8) -> int:
    """MobileNetV2's channel rounding (nearest multiple of 8, never 10% below ``value``)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


# (expansion t, output channels c, repeats n, stride s) of MobileNetV2, Table 2
_MOBILENET_V2 = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                 (6, 160, 3, 2), (6, 320, 1, 1))


def binary_mobilenet_v2(input_shape: tuple[int, int, int], num_classes: int,
                        width_multiplier: float = 1.0, stem: str = "auto") -> tf.keras.Model:
    """Binary MobileNetV2: binary depth-wise, real point-wise convolutions (paper, 5.2).

    Inverted residual blocks as in MobileNetV2: ``1x1 expand (real) - BN - 3x3 depth-wise
    (binary) - BN - ReLU6 - 1x1 project (real) - BN`` plus the identity when the stride is 1
    and the channels agree. The depth-wise convolution is ``QuantDepthwiseConv2D`` with
    ``ste_sign`` input and depth-wise quantizers. MobileNetV2's ReLU6 after the expansion
    and after the stem is left out: the sign of the depth-wise input is the non-linearity
    there, and a ReLU6 in front of it would make every sign +1 (the first block has no
    expansion, so its depth-wise convolution reads the stem's output directly).

    Args:
        input_shape: ``(H, W, C)``.
        num_classes: Number of outputs.
        width_multiplier: MobileNetV2's alpha: channels of every layer times this (rounded to
            multiples of 8; the last 1280 only grows). Defaults to `1.0`.
        stem: ``"cifar"`` keeps the resolution in the 3x3 stem and in the second stage
            (stride 1 instead of 2; total downsampling 8x), ``"imagenet"`` is MobileNetV2's
            32x, ``"auto"``: CIFAR for inputs up to 64 pixels a side. Defaults to `"auto"`.

    Returns:
        The model.
    """
    _check_width_multiplier(width_multiplier)
    stem = _resolve_stem(stem, input_shape)
    inputs = tf.keras.Input(input_shape)
    stem_stride = 1 if stem == "cifar" else 2
    x = _real_conv(_make_divisible(32 * width_multiplier), 3, stem_stride, name="stem_conv")(
        inputs)
    x = _bn("stem_bn")(x)  # no ReLU6: the first block's depth-wise input is binarised
    in_channels = x.shape[-1]
    for stage, (t, c, n, s) in enumerate(_MOBILENET_V2):
        if stem == "cifar" and stage == 1:
            s = 1
        out_channels = _make_divisible(c * width_multiplier)
        for block in range(n):
            name = f"stage{stage}_block{block}"
            strides = s if block == 0 else 1
            y = x
            if t != 1:
                y = _real_conv(in_channels * t, 1, name=f"{name}_expand")(y)
                y = _bn(f"{name}_expand_bn")(y)
            y = lq.layers.QuantDepthwiseConv2D(
                3, strides=strides, padding="same", input_quantizer="ste_sign",
                depthwise_quantizer="ste_sign", depthwise_constraint="weight_clip",
                depthwise_initializer=_INIT, use_bias=False, name=f"{name}_depthwise")(y)
            y = tf.keras.layers.ReLU(6.0, name=f"{name}_relu")(_bn(f"{name}_depthwise_bn")(y))
            y = _real_conv(out_channels, 1, name=f"{name}_project")(y)
            y = _bn(f"{name}_project_bn")(y)
            if strides == 1 and in_channels == out_channels:
                y = tf.keras.layers.Add(name=f"{name}_add")([x, y])
            x, in_channels = y, out_channels
    last = _make_divisible(1280 * width_multiplier) if width_multiplier > 1.0 else 1280
    x = _bn("head_bn")(_real_conv(last, 1, name="head_conv")(x))
    x = tf.keras.layers.ReLU(6.0, name="head_relu")(x)
    x = tf.keras.layers.GlobalAveragePooling2D(name="head_pool")(x)
    return tf.keras.Model(inputs, _classifier(x, num_classes), name="BinaryMobileNetV2")


ZOO_MIN_INPUT = {
    "BinaryAlexNet": 64,
    "BinaryResNetE18": 32,
    "DoReFaNet": 48,
    "QuickNet": 32,
    "QuickNetLarge": 32,
    "QuickNetSmall": 32,
}
"""Smallest side a larq-zoo graph is built at; smaller inputs are resized up to it."""

MIN_INPUT = {
    "BinaryCNN": 8,
    "BinaryDenseNet28": 8,
    "BinaryDenseNet37": 8,
    "BinaryDenseNet37Dilated": 2,
    "BinaryDenseNet45": 8,
}
"""Smallest side the image models that do not enlarge their inputs (not in
``ZOO_MIN_INPUT``) can be built at; smaller ones fail in a pooling layer. Found by building
them (``build_model(name, (s, s, 1), 10)``: a bisection over sides 1 to 64, then the three
sides below and five above the minimum, 3 channels at the minimum too); a model not listed
here builds at 1x1 (BinaryResNet34, BinaryMobileNetV2, BiRealNet, MeliusNet22,
RealToBinaryNet)."""


def smallest_input(name: str) -> int:
    """The smallest side model ``name`` takes: 1 for a model that enlarges smaller inputs
    inside itself (``ZOO_MIN_INPUT``) or builds at 1x1, else its ``MIN_INPUT``."""
    return MIN_INPUT.get(registered_name(name), 1)

_ZOO_NAMES = ("BiRealNet", "BinaryAlexNet", "BinaryDenseNet28", "BinaryDenseNet37",
              "BinaryDenseNet37Dilated", "BinaryDenseNet45", "BinaryResNetE18", "DoReFaNet",
              "MeliusNet22", "RealToBinaryNet", "QuickNet", "QuickNetSmall", "QuickNetLarge")


def _zoo_model(zoo_name: str, input_shape: tuple[int, int, int], num_classes: int,
               fn: Callable[..., tf.keras.Model] | None = None, **kwargs) -> tf.keras.Model:
    """Build a larq-zoo graph (``weights=None``), resizing inputs below ``ZOO_MIN_INPUT``.

    ``fn`` replaces larq-zoo's builder of ``zoo_name`` (same keyword arguments)."""
    if fn is None:
        fn = getattr(larq_zoo.literature, zoo_name, None) or getattr(larq_zoo.sota, zoo_name)
    height, width, channels = input_shape
    side = ZOO_MIN_INPUT.get(zoo_name, 0)
    target = (max(height, side), max(width, side))
    build = functools.partial(fn, weights=None, include_top=True, num_classes=num_classes,
                              **kwargs)
    if target == (height, width):
        return build(input_shape=tuple(input_shape))
    inner = build(input_shape=(*target, channels))
    inputs = tf.keras.Input(input_shape)
    x = tf.keras.layers.Resizing(*target, interpolation="bilinear", name="resize")(inputs)
    return tf.keras.Model(inputs, inner(x), name=inner.name)


def enlarged_input(name: str, input_shape: tuple[int, int, int]) -> tuple[int, int] | None:
    """The ``(height, width)`` model ``name`` enlarges ``input_shape`` to inside itself
    (``ZOO_MIN_INPUT``), or None when it takes the input as it is."""
    side = ZOO_MIN_INPUT.get(registered_name(name), 0)
    if not side:
        return None
    height, width = input_shape[:2]
    target = (max(height, side), max(width, side))
    return None if target == (height, width) else target


def input_note(name: str, input_shape: tuple[int, int, int]) -> str | None:
    """One sentence saying that model ``name`` resizes ``input_shape``, or None."""
    target = enlarged_input(name, input_shape)
    if target is None:
        return None
    key = registered_name(name)
    return (f"{key} needs inputs of at least {ZOO_MIN_INPUT[key]}x{ZOO_MIN_INPUT[key]}: "
            f"the {input_shape[0]}x{input_shape[1]} images are enlarged to "
            f"{target[0]}x{target[1]} (bilinear) inside the model")


def binary_resnet_e18(input_shape: tuple[int, int, int], num_classes: int,
                      width_multiplier: float = 1.0) -> tf.keras.Model:
    """larq-zoo's ``BinaryResNetE18``, optionally with fewer channels.

    At ``width_multiplier=1.0`` this is ``larq_zoo.literature.BinaryResNetE18`` itself.
    Otherwise the graph is built by larq-zoo's own ``BinaryResNetE18Factory`` with its
    four stage widths (64, 128, 256, 512) and its stem (``initial_filters``, 64) times
    ``width_multiplier``, rounded as ``BinaryResNet34`` rounds them: the same layers,
    quantizers, constraint, initializers and shortcuts, only narrower. larq-zoo itself has
    no width argument (its ``initial_filters`` field changes the stem only).

    Args:
        input_shape: ``(height, width, channels)``; below 32x32 the images are enlarged
            inside the model (``ZOO_MIN_INPUT``).
        num_classes: Classes of the softmax output.
        width_multiplier: Channels of every convolution times this (> 0), e.g. 0.25 for
            a quarter: about 1/16 of the multiply-adds and the weights.
    """
    _check_width_multiplier(width_multiplier)
    if width_multiplier == 1.0:
        return _zoo_model("BinaryResNetE18", input_shape, num_classes)
    widths = [_make_divisible(f * width_multiplier) for f in (64, 128, 256, 512)]

    class _NarrowResNetE18Factory(BinaryResNetE18Factory):
        @property
        def spec(self):
            return [2, 2, 2, 2], widths

    def build(**kwargs) -> tf.keras.Model:
        return _NarrowResNetE18Factory(initial_filters=widths[0], **kwargs).build()

    return _zoo_model("BinaryResNetE18", input_shape, num_classes, fn=build)


MODELS: dict[str, Callable[..., tf.keras.Model]] = {
    "BinaryCNN": binary_cnn,
    "BinaryResNet34": binary_resnet34,
    "BinaryMobileNetV2": binary_mobilenet_v2,
    **{name: functools.partial(_zoo_model, name) for name in _ZOO_NAMES},
    "BinaryResNetE18": binary_resnet_e18,  # larq-zoo's, with a width_multiplier
    "BinaryLSTM": binary_lstm,  # the language model (MODEL_TASKS), after the images
}

MODEL_TASKS = {"BinaryLSTM": LANGUAGE_MODELLING}
"""Models that are not image classifiers, by their name in :data:`MODELS`."""


def model_task(model: str) -> str:
    """The task of model ``model`` (a key of :data:`MODELS`)."""
    return MODEL_TASKS.get(model, CLASSIFICATION)


def registered_name(name: str) -> str:
    """The key of ``MODELS`` for ``name`` in any letter case; ValueError lists the valid."""
    by_lower = {key.lower(): key for key in MODELS}
    if not isinstance(name, str) or name.lower() not in by_lower:
        raise ValueError(f"unknown model name={name!r}; valid names: {', '.join(MODELS)}.")
    return by_lower[name.lower()]


def check_model_args(name: str, model_args: dict) -> None:
    """Raise ValueError unless every key of ``model_args`` is an argument of model ``name``'s
    builder (listing the valid ones)."""
    key = registered_name(name)
    params = inspect.signature(MODELS[key]).parameters
    valid = [p for p in params if p not in ("input_shape", "num_classes")
             and params[p].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
    for arg in model_args:
        if arg not in valid:
            raise ValueError(
                f"model {key} takes no argument {arg!r}; valid: "
                f"{', '.join(valid) if valid else 'none'}")


def model_arg(name: str, model_args: dict, arg: str):
    """The value of argument ``arg`` that model ``name`` is built with: ``model_args``'
    or the builder's default."""
    key = registered_name(name)
    if arg in model_args:
        return model_args[arg]
    return inspect.signature(MODELS[key]).parameters[arg].default


def build_model(name: str, input_shape: tuple[int, int, int], num_classes: int, *,
                seed: int | None = None, **kwargs) -> tf.keras.Model:
    """Build the registered model ``name`` (case-insensitive) for the given input and classes.

    Args:
        name: A key of ``MODELS``, in any letter case.
        input_shape: ``(H, W, C)`` of one image (``(seq_len,)`` for ``BinaryLSTM``).
        num_classes: Number of classes (outputs of the final softmax; the vocabulary size
            for ``BinaryLSTM``).
        seed: If given, ``tf.keras.utils.set_random_seed(seed)`` is called first, so the
            initial weights depend only on it. Defaults to `None` (the current global state).
        **kwargs: Passed to the builder (``stem`` and ``width_multiplier`` for
            BinaryResNet34 and BinaryMobileNetV2).

    Returns:
        An uncompiled ``tf.keras.Model`` mapping ``(batch, H, W, C)`` images to
        ``(batch, num_classes)`` probabilities.
    """
    key = registered_name(name)
    shape = tuple(int(d) if isinstance(d, numbers.Integral) else d for d in input_shape)
    # A language model's (seq_len,) is checked by its builder, against its seq_len argument.
    images = model_task(key) == CLASSIFICATION
    if images and (len(shape) != 3
                   or not all(isinstance(d, numbers.Integral) and d > 0 for d in shape)):
        raise ValueError(f"input_shape must be (height, width, channels) of positive ints, "
                         f"received input_shape={input_shape!r}.")
    if not isinstance(num_classes, numbers.Integral) or num_classes < 1:
        raise ValueError(f"num_classes must be an int >= 1, received num_classes="
                         f"{num_classes!r}.")
    if seed is not None:
        tf.keras.utils.set_random_seed(seed)
    return MODELS[key](shape, num_classes, **kwargs)
