"""Binary vs real trainable weights, counted by hand on tiny Larq models, and who trains
which (issue #25 item 5)."""

import larq as lq
import pytest
import tensorflow as tf

from larq_bamsprod.harness.reports import layout, tables


def _tiny_model():
    inputs = tf.keras.Input((3,))
    # Binary kernel 3 x 4 = 12; its bias, 4, is real.
    x = lq.layers.QuantDense(4, kernel_quantizer="ste_sign", kernel_constraint="weight_clip",
                             input_quantizer="ste_sign")(inputs)
    # gamma and beta, 2 x 4 = 8 trainable; the moving mean and variance are not trainable.
    x = tf.keras.layers.BatchNormalization()(x)
    # A quantized layer without a kernel quantizer keeps a real kernel: 4 x 2 = 8.
    x = lq.layers.QuantDense(2, use_bias=False)(x)
    # A binary 1x1 convolution on a (1, 1, 2) map: kernel 1 x 1 x 2 x 3 = 6, no bias.
    x = tf.keras.layers.Reshape((1, 1, 2))(x)
    x = lq.layers.QuantConv2D(3, 1, kernel_quantizer="ste_sign", use_bias=False)(x)
    x = tf.keras.layers.Flatten()(x)
    return tf.keras.Model(inputs, tf.keras.layers.Dense(2)(x))  # real 3 x 2 + 2 = 8


def test_binary_and_real_trainable_weights_counted_by_hand():
    counts = layout.weight_layout(_tiny_model())
    # binary 12 + 6; real 4 + 8 + 8 + 8.
    assert counts == {"binary": 18, "real": 28, "total": 46,
                      "binary_share": pytest.approx(18 / 46)}


def test_frozen_layers_do_not_count():
    model = _tiny_model()
    model.layers[1].trainable = False  # the binary QuantDense: its 12 + 4 leave
    assert layout.weight_layout(model) == {"binary": 6, "real": 24, "total": 30,
                                           "binary_share": pytest.approx(6 / 30)}


def test_a_model_without_trainable_weights_has_share_zero():
    model = tf.keras.Sequential([tf.keras.Input((2,)), tf.keras.layers.Flatten()])
    assert layout.weight_layout(model)["binary_share"] == 0.0


def test_who_trains_which_weights():
    assert layout.trained_by("bop", {"fp_learning_rate": 0.0503, "gamma": 1e-4}) == (
        "bop the binary weights, Adam(0.0503) the real ones")
    assert layout.trained_by("bamsprod", {"fp_learning_rate": None}) == "bamsprod every weight"
    assert layout.trained_by("adam", {"learning_rate": 1e-3}) == "adam every weight"


def test_the_report_states_the_layout():
    summary = {"reference": "bop", "rows": [],
               "layout": {"binary": 16488, "real": 234290, "total": 250778,
                          "binary_share": 16488 / 250778,
                          "trained_by": {"bop": "bop the binary weights, Adam(0.01) the real "
                                                "ones", "adam": "adam every weight"}}}
    text = tables.results_markdown(summary)
    assert ("Trainable weights: 16,488 binary and 234,290 real-valued (6.6% binary). Who "
            "trains them: bop the binary weights, Adam(0.01) the real ones; adam every "
            "weight.") in text
