"""BAMSProd's configuration and state survive get_config/from_config, Keras' registry,
model.save/load_model and tf.train.Checkpoint; training then continues exactly as an
uninterrupted run would."""

from __future__ import annotations

import inspect
import json

import numpy as np
import pytest
import tensorflow as tf
from optimizers_under_test import (
    OPTIMIZER_CLASSES,
    OPTIMIZERS_UNDER_TEST,
    SERIALIZABLE_OPTIMIZERS,
    make_optimizer,
)
from tiny_models import regression_data, tiny_model

from larq_bamsprod import BAMSProd, legacy

CLASSES = pytest.mark.parametrize(
    "factory", OPTIMIZER_CLASSES.values(), ids=OPTIMIZER_CLASSES.keys()
)
SCHEDULE = tf.keras.optimizers.schedules.LearningRateSchedule


def _one_step(optimizer, var=None):
    var = var if var is not None else tf.Variable([[1.0, -2.0], [0.5, 0.25]])
    optimizer.apply_gradients([(tf.constant([[0.5, -0.5], [2.0, 0.1]]), var)])
    return var


def _constructor_arguments(factory):
    return [name for name, p in inspect.signature(factory.__init__).parameters.items()
            if name != "self" and p.kind is not p.VAR_KEYWORD]


@pytest.mark.parametrize("factory,kwargs,serializable", SERIALIZABLE_OPTIMIZERS)
def test_get_config_holds_every_argument_and_is_json_clean(factory, kwargs, serializable):
    optimizer = make_optimizer(factory, kwargs)
    _one_step(optimizer)  # Keras turns float hyperparameters into variables by now
    config = optimizer.get_config()
    assert set(_constructor_arguments(factory)) <= set(config)
    assert json.loads(json.dumps(config)) == config


@pytest.mark.parametrize("factory,kwargs,serializable", SERIALIZABLE_OPTIMIZERS)
def test_from_config_rebuilds_an_optimizer_that_takes_the_same_steps(
    factory, kwargs, serializable
):
    original = make_optimizer(factory, kwargs)
    clone = factory.from_config(json.loads(json.dumps(original.get_config())))
    for name in ("learning_rate", "beta_1"):
        hyper, cloned = (_hyperparameter(o, name) for o in (original, clone))
        assert type(cloned) is type(hyper)
        if isinstance(hyper, SCHEDULE):
            assert cloned.get_config() == hyper.get_config()
    var, var_clone = _one_step(original), _one_step(clone)
    for _ in range(4):
        _one_step(original, var), _one_step(clone, var_clone)
    np.testing.assert_allclose(var_clone.numpy(), var.numpy(), rtol=1e-6)
    assert clone.get_config() == original.get_config()


def _hyperparameter(optimizer, name):
    if isinstance(optimizer, legacy.BAMSProd):
        value = optimizer._get_hyper(name)
        return value if isinstance(value, SCHEDULE) else float(value)
    if name == "learning_rate":
        value = optimizer._learning_rate
        return value if isinstance(value, SCHEDULE) else float(value.numpy())
    return getattr(optimizer, name)


@CLASSES
def test_plain_callable_is_refused_by_get_config_with_advice(factory):
    optimizer = factory(beta_1=lambda step: 0.9)
    with pytest.raises(NotImplementedError, match="LearningRateSchedule"):
        optimizer.get_config()


@pytest.mark.parametrize(
    "factory,registered_name",
    [(BAMSProd, "larq_bamsprod>BAMSProd"), (legacy.BAMSProd, "larq_bamsprod.legacy>BAMSProd")],
    ids=OPTIMIZER_CLASSES.keys(),
)
def test_registered_under_the_package_prefix(factory, registered_name):
    assert tf.keras.utils.get_registered_object(registered_name) is factory
    assert tf.keras.utils.get_registered_name(factory) == registered_name


@CLASSES
def test_keras_serialize_and_deserialize_round_trip(factory):
    schedule = tf.keras.optimizers.schedules.InverseTimeDecay(0.9, 1, 1.0)
    optimizer = factory(learning_rate=0.03, beta_1=schedule, bound_target=0.5, gamma=0.2)
    config = tf.keras.optimizers.serialize(optimizer)
    restored = tf.keras.optimizers.deserialize(json.loads(json.dumps(config)))
    assert type(restored) is factory
    assert restored.get_config() == optimizer.get_config()
    assert isinstance(_hyperparameter(restored, "beta_1"), type(schedule))


@CLASSES
def test_deserialize_by_registered_name_alone(factory):
    # The form older Keras files and hand-written configs use: no "module" key.
    optimizer = factory(learning_rate=0.03, lr_decay="sqrt")  # a non-default value
    name = tf.keras.utils.get_registered_name(factory)
    restored = tf.keras.optimizers.deserialize(
        {"class_name": name, "config": optimizer.get_config()},
        use_legacy_optimizer=factory is legacy.BAMSProd,
    )
    assert type(restored) is factory
    assert restored.get_config() == optimizer.get_config()


# --- model.save / load_model ---------------------------------------------------------

# Formats that keep optimizer state, per class (tf-keras 2.19): the `.keras` format saves
# only the new optimizer API's variables, and a SavedModel keeps none (its loader warns
# "Slots cannot be restored from saved_model"; tf.keras.optimizers.Adam is the same).
STATEFUL_FORMATS = {BAMSProd: (".h5", ".keras"), legacy.BAMSProd: (".h5",)}
STATELESS_FORMATS = {BAMSProd: ("savedmodel",), legacy.BAMSProd: (".keras", "savedmodel")}


def _save_path(tmp_path, fmt):
    return str(tmp_path / "model") if fmt == "savedmodel" else str(tmp_path / f"model{fmt}")


def _save(model, path, fmt):
    model.save(path, save_format="tf" if fmt == "savedmodel" else None)


def _fit(model, x, y, epochs):
    model.fit(x, y, batch_size=32, epochs=epochs, shuffle=False, verbose=0)


def _trained_model(factory, kwargs, x, y):
    tf.keras.backend.clear_session()
    tf.keras.utils.set_random_seed(0)
    model = tiny_model()
    model.compile(make_optimizer(factory, kwargs), loss="mse")
    _fit(model, x, y, epochs=2)
    return model


@pytest.mark.parametrize(
    "factory,kwargs,fmt",
    [pytest.param(*p.values[:2], fmt, id=f"{p.id}-{fmt}")
     for p in SERIALIZABLE_OPTIMIZERS for fmt in STATEFUL_FORMATS[p.values[0]]],
)
def test_save_and_load_model_continue_training_exactly(factory, kwargs, fmt, tmp_path):
    x, y = regression_data()
    model = _trained_model(factory, kwargs, x, y)
    path = _save_path(tmp_path, fmt)
    _save(model, path, fmt)
    loaded = tf.keras.models.load_model(path)

    assert type(loaded.optimizer) is factory
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert int(loaded.optimizer.iterations.numpy()) == 8
    _fit(model, x, y, epochs=2)  # the uninterrupted run
    _fit(loaded, x, y, epochs=2)
    for resumed, uninterrupted in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_allclose(resumed, uninterrupted, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    "factory,fmt",
    [pytest.param(cls, fmt, id=f"{kind}-{fmt}") for kind, cls in OPTIMIZER_CLASSES.items()
     for fmt in STATELESS_FORMATS[cls]],
)
def test_formats_without_optimizer_state_restore_its_configuration(factory, fmt, tmp_path):
    kwargs = {"learning_rate": tf.keras.optimizers.schedules.ExponentialDecay(0.05, 1, 0.9),
              "beta_1": tf.keras.optimizers.schedules.InverseTimeDecay(0.9, 1, 1.0),
              "bound_target": 0.04, "gamma": 0.1, "lr_decay": "sqrt"}  # non-defaults
    x, y = regression_data()
    model = _trained_model(factory, kwargs, x, y)
    path = _save_path(tmp_path, fmt)
    _save(model, path, fmt)
    loaded = tf.keras.models.load_model(path)
    assert type(loaded.optimizer) is factory
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    before = loaded.evaluate(x, y, verbose=0)
    _fit(loaded, x, y, epochs=2)
    assert loaded.evaluate(x, y, verbose=0) < before


# --- tf.train.Checkpoint -------------------------------------------------------------


def _train_steps(model, optimizer, x, y, steps):
    loss_fn = tf.keras.losses.MeanSquaredError()

    for i in range(steps):
        batch = slice(32 * (i % 4), 32 * (i % 4 + 1))
        with tf.GradientTape() as tape:
            loss = loss_fn(y[batch], model(x[batch]))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))


@pytest.mark.parametrize("factory,kwargs,serializable", OPTIMIZERS_UNDER_TEST)
def test_checkpoint_restores_state_and_training_continues_exactly(
    factory, kwargs, serializable, tmp_path
):
    x, y = regression_data()
    tf.keras.utils.set_random_seed(0)
    model, optimizer = tiny_model(), make_optimizer(factory, kwargs)
    _train_steps(model, optimizer, x, y, steps=6)
    path = tf.train.Checkpoint(model=model, optimizer=optimizer).save(str(tmp_path / "ckpt"))
    _train_steps(model, optimizer, x, y, steps=6)  # the uninterrupted run

    tf.keras.utils.set_random_seed(1)  # other initial weights: all must come from the file
    resumed_model, resumed_optimizer = tiny_model(), make_optimizer(factory, kwargs)
    status = tf.train.Checkpoint(model=resumed_model, optimizer=resumed_optimizer).restore(path)
    _train_steps(resumed_model, resumed_optimizer, x, y, steps=6)

    status.assert_consumed()
    assert int(resumed_optimizer.iterations.numpy()) == 12
    for resumed, uninterrupted in zip(resumed_model.get_weights(), model.get_weights()):
        np.testing.assert_allclose(resumed, uninterrupted, rtol=1e-6, atol=1e-7)


# --- legacy decay (the base class' lr / (1 + decay * iterations)) ---------------------


def _decayed_lr_after(optimizer, steps):
    var = tf.Variable([[1.0, -2.0], [0.5, 0.25]])
    for _ in range(steps):
        _one_step(optimizer, var)
    return float(optimizer._decayed_lr(tf.float32).numpy())


@pytest.mark.parametrize("fmt", ["config", ".h5", ".keras"])
def test_legacy_decay_survives_a_round_trip_as_in_keras_legacy_adam(fmt, tmp_path):
    # #28 item 11: get_config dropped `decay`, so every reload trained at the undecayed rate.
    def reload(optimizer):
        if fmt == "config":
            return type(optimizer).from_config(json.loads(json.dumps(optimizer.get_config())))
        x, y = regression_data()
        model = tiny_model()
        model.compile(optimizer, loss="mse")
        _fit(model, x, y, epochs=1)
        path = _save_path(tmp_path, f"{type(optimizer).__name__}{fmt}")
        _save(model, path, fmt)
        return tf.keras.models.load_model(path).optimizer

    adam = reload(tf.keras.optimizers.legacy.Adam(learning_rate=0.01, decay=0.5))
    bamsprod = reload(legacy.BAMSProd(learning_rate=0.01, decay=0.5))
    assert bamsprod.get_config()["decay"] == adam.get_config()["decay"] == 0.5
    start = int(bamsprod.iterations.numpy())
    assert start == int(adam.iterations.numpy())
    expected = 0.01 / (1.0 + 0.5 * (start + 10))  # 0.0017 from a fresh optimizer
    assert _decayed_lr_after(bamsprod, 10) == pytest.approx(expected, rel=1e-6)
    assert _decayed_lr_after(adam, 10) == pytest.approx(expected, rel=1e-6)
