"""Keras 3 serialization: get_config/from_config keep every hyperparameter (schedules
included), and a ``.keras`` file restores the optimizer's state, so that training
continues exactly as without the round trip."""

from __future__ import annotations

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from keras3_support import as_numpy

from larq_bamsprod.keras3 import BAMSProd, Bop

CONFIGURED = {
    "learning_rate": 0.003,
    "beta_1": 0.8,
    "beta_2": 0.99,
    "epsilon": 1e-6,
    "gamma": 0.02,
    "bound_target": 0.5,
    "lr_decay": "sqrt",
    "bias_correction": False,
}


def test_bamsprod_config_round_trip_keeps_every_argument():
    config = BAMSProd(**CONFIGURED).get_config()
    assert {key: config[key] for key in CONFIGURED} == CONFIGURED
    assert BAMSProd.from_config(config).get_config() == config


def test_bamsprod_schedules_survive_the_config_round_trip():
    lr = keras.optimizers.schedules.ExponentialDecay(0.05, 10, 0.5)
    beta_1 = keras.optimizers.schedules.InverseTimeDecay(0.9, 1, 1.0)
    rebuilt = BAMSProd.from_config(BAMSProd(learning_rate=lr, beta_1=beta_1).get_config())
    assert isinstance(rebuilt.beta_1, keras.optimizers.schedules.InverseTimeDecay)
    assert rebuilt.beta_1.get_config() == beta_1.get_config()
    assert rebuilt._learning_rate.get_config() == lr.get_config()


def test_bop_config_round_trip_keeps_gamma_and_threshold():
    config = Bop(gamma=1e-3, threshold=1e-6).get_config()
    assert (config["gamma"], config["threshold"]) == (1e-3, 1e-6)
    assert "learning_rate" not in config
    assert Bop.from_config(config).get_config() == config


def test_from_config_refuses_what_is_not_a_dict():
    with pytest.raises(TypeError, match="BAMSProd.from_config expects the dict"):
        BAMSProd.from_config([("learning_rate", 0.1)])


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 6)).astype(np.float32)
    return x, (x @ rng.normal(size=(6, 2))).astype(np.float32)


def _model(optimizer):
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="tanh"),
                              keras.layers.Dense(2)])
    model.compile(optimizer, "mse")
    return model


def test_keras_file_restores_bamsprod_state_and_training_continues_identically(tmp_path):
    x, y = _data()
    model = _model(BAMSProd(learning_rate=0.02))
    model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded.optimizer, BAMSProd)
    for a, b in zip(as_numpy(model.optimizer.variables), as_numpy(loaded.optimizer.variables)):
        np.testing.assert_array_equal(a, b)
    for m in (model, loaded):
        m.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(as_numpy(model.weights), as_numpy(loaded.weights)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_import_of_the_keras_3_package_imports_no_tensorflow():
    backend = keras.backend.backend()
    if backend == "tensorflow":
        pytest.skip("TensorFlow is the backend here")
    code = ("import sys, larq_bamsprod.keras3, keras\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('tensorflow', 'tf_keras')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**os.environ, "KERAS_BACKEND": backend}, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"
