"""Bad arguments are refused as the tf.keras classes refuse them: the same table of
invalid values (tests/support/invalid_arguments.py) and, where tf-keras is installed, the
very same messages."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from invalid_arguments import INVALID

from larq_bamsprod.keras3 import BAMSProd, BinaryRouter, Bop

IDS = [f"{a}={v!r}" for a, v, _, _ in INVALID]


@pytest.mark.parametrize("argument,value,error,shown", INVALID, ids=IDS)
def test_invalid_hyperparameter_raises_naming_argument_and_value(argument, value, error,
                                                                  shown):
    with pytest.raises(error, match=re.escape(f"{argument}={shown}")):
        BAMSProd(**{argument: value})


# The tf.keras class' messages, from a process that imports larq_bamsprod before Keras 3
# (here Keras 3 may already be tf.keras, on the TensorFlow backend).
_TF_KERAS_MESSAGES = """
import json, sys
sys.path.insert(0, sys.argv[1])
import larq_bamsprod
from invalid_arguments import INVALID
messages = []
for argument, value, error, _ in INVALID:
    try:
        larq_bamsprod.BAMSProd(**{argument: value})
    except error as err:
        messages.append(f"{type(err).__name__}: {err}")
print(json.dumps(messages))
"""


@pytest.fixture(scope="module")
def tf_keras_messages():
    if importlib.util.find_spec("tf_keras") is None:
        pytest.skip("no tf-keras here: no tf.keras class to compare with")
    support = str(Path(__file__).resolve().parent.parent / "support")
    result = subprocess.run([sys.executable, "-c", _TF_KERAS_MESSAGES, support],
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_messages_are_the_tf_keras_classes_messages(tf_keras_messages):
    messages = []
    for argument, value, error, _ in INVALID:
        with pytest.raises(error) as caught:
            BAMSProd(**{argument: value})
        messages.append(f"{type(caught.value).__name__}: {caught.value}")
    assert messages == tf_keras_messages


@pytest.mark.parametrize("argument", ["learning_rate", "beta_1"])
def test_tensor_instead_of_float_raises_type_error(argument):
    with pytest.raises(TypeError, match=f"{argument} must be a float"):
        BAMSProd(**{argument: keras.ops.convert_to_tensor(0.5)})


def test_unknown_keyword_argument_is_refused_by_keras_3s_base_class():
    # Keras 3's Optimizer raises ValueError("Argument(s) not recognized") where tf.keras'
    # raised a TypeError; its own message is kept.
    with pytest.raises(ValueError, match="amsgrad"):
        BAMSProd(amsgrad=True)


@pytest.mark.parametrize("kwargs,error,shown", [
    ({"gamma": 0.0}, ValueError, "gamma=0.0"),
    ({"gamma": 1.5}, ValueError, "gamma=1.5"),
    ({"gamma": "0.1"}, TypeError, "gamma='0.1'"),
    ({"threshold": -1e-8}, ValueError, "threshold=-1e-08"),
    ({"threshold": None}, TypeError, "threshold=None"),
    ({"learning_rate": 0.01}, TypeError, "learning_rate=0.01"),
])
def test_bop_refuses_bad_arguments_naming_them(kwargs, error, shown):
    with pytest.raises(error, match=re.escape(shown)):
        Bop(**kwargs)


def test_binary_router_refuses_what_is_not_a_keras_3_optimizer():
    with pytest.raises(TypeError, match="default_optimizer must be a Keras 3 optimizer"):
        BinaryRouter(Bop(), "adam")


def test_valid_edges_are_accepted_and_train():
    for kwargs in [{"beta_1": 0.0}, {"epsilon": 0.0}, {"learning_rate": 1},
                   {"bound_target": 3}, {"bound_target": None}, {"beta_1": lambda: 0.5},
                   {"learning_rate": lambda: 0.01}, {"clipnorm": 1.0}]:
        var = keras.Variable(np.array([1.0, -2.0], np.float32))
        BAMSProd(**kwargs).apply([keras.ops.convert_to_tensor([0.5, -0.5])], [var])
        value = keras.ops.convert_to_numpy(var)
        assert np.all(np.isfinite(value)) and value.tolist() != [1.0, -2.0], kwargs
