"""Every invalid hyperparameter is refused in ``__init__`` with an error naming the
argument and the value received; the edges of every valid range are accepted."""

from __future__ import annotations

import math
import re

import pytest
import tensorflow as tf
from invalid_arguments import INVALID
from optimizers_under_test import OPTIMIZER_CLASSES

from larq_bamsprod import BAMSProd, legacy

CLASSES = pytest.mark.parametrize(
    "factory", OPTIMIZER_CLASSES.values(), ids=OPTIMIZER_CLASSES.keys()
)

# tf.keras only: Keras' zero-argument callable is a learning rate's form alone there (Keras 3
# takes it for every rate).
INVALID = [*INVALID, ("beta_1", lambda: 0.9, TypeError, "<function")]


@CLASSES
@pytest.mark.parametrize(
    "argument,value,error,shown", INVALID, ids=[f"{a}={v!r}" for a, v, _, _ in INVALID]
)
def test_invalid_hyperparameter_raises_naming_argument_and_value(
    factory, argument, value, error, shown
):
    with pytest.raises(error, match=re.escape(f"{argument}={shown}")):
        factory(**{argument: value})


@CLASSES
@pytest.mark.parametrize("argument", ["learning_rate", "beta_1"])
def test_tensor_instead_of_float_raises_type_error(factory, argument):
    with pytest.raises(TypeError, match=f"{argument} must be a float"):
        factory(**{argument: tf.constant(0.5)})


@CLASSES
def test_unknown_keyword_argument_raises_type_error(factory):
    with pytest.raises(TypeError, match="amsgrad"):
        factory(amsgrad=True)


VALID_EDGES = [
    {"beta_1": 0.0},
    {"beta_2": 0.0},
    {"epsilon": 0.0},
    {"learning_rate": 1},  # an int is a number
    {"gamma": 1e-12},
    {"bound_target": 1e-12},
    {"bound_target": 3},
    {"bound_target": None},
    {"bound_target": "mean"},
    {"lr_decay": None},
    {"lr_decay": "sqrt"},
    {"bias_correction": False},
    {"learning_rate": tf.keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5)},
    {"beta_1": lambda step: 0.5},
    {"clipnorm": 1.0},
    {"global_clipnorm": 1.0},
    {"clipvalue": 0.5},
]


@CLASSES
@pytest.mark.parametrize("kwargs", VALID_EDGES, ids=[repr(k) for k in VALID_EDGES])
def test_valid_edge_values_are_accepted_and_train(factory, kwargs):
    optimizer = factory(**kwargs)
    var = tf.Variable([1.0, -2.0])
    optimizer.apply_gradients([(tf.constant([0.5, -0.5]), var)])
    assert all(math.isfinite(x) for x in var.numpy())
    assert var.numpy().tolist() != [1.0, -2.0]


@pytest.mark.parametrize("argument,value", [("weight_decay", 0.01), ("use_ema", True)])
def test_legacy_class_refuses_what_its_own_docstring_says_it_refuses(argument, value):
    # #28 item 16: the two classes shared one docstring, which did not say this.
    assert f"``{argument}``" in legacy.BAMSProd.__doc__
    assert legacy.BAMSProd.__doc__ != BAMSProd.__doc__
    with pytest.raises(TypeError, match=argument):
        legacy.BAMSProd(**{argument: value})
    BAMSProd(**{argument: value})  # the new-API class takes both


@CLASSES
def test_docstring_warns_bop_users_that_gamma_is_not_bops(factory):
    assert "Not Bop's ``gamma``" in factory.__doc__
