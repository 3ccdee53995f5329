"""Bad input gives an error that names what was wrong: ``from_config`` dicts with wrong
keys or values, and checkpoints written by another optimizer or for another model.

Missing keys are not an error: ``from_config`` fills them with the constructor's defaults,
as Keras' own optimizers do. A checkpoint of the legacy ``Adam`` restores silently into
legacy BAMSProd's ``m`` and ``v`` (same slot names); only the status'
``assert_existing_objects_matched()`` (or ``assert_consumed()``) reports the missing
``vhat``, so call it after restoring. The Keras 2.11+ API fails at once (shape mismatch).
"""

from __future__ import annotations

import pytest
import tensorflow as tf
from optimizers_under_test import OPTIMIZER_CLASSES
from tiny_models import regression_data, tiny_model

from larq_bamsprod import legacy

CLASSES = pytest.mark.parametrize(
    "factory", OPTIMIZER_CLASSES.values(), ids=OPTIMIZER_CLASSES.keys()
)


@CLASSES
def test_from_config_fills_missing_keys_with_defaults(factory):
    assert factory.from_config({}).get_config() == factory().get_config()


@CLASSES
def test_from_config_with_an_unknown_key_raises_naming_it(factory):
    with pytest.raises(TypeError, match="bogus"):
        factory.from_config({"learning_rate": 0.1, "bogus": 1})


@CLASSES
@pytest.mark.parametrize("key,value", [
    ("learning_rate", "fast"),
    ("beta_2", 1.5),
    ("bound_target", "median"),
])
def test_from_config_with_a_wrong_value_raises_naming_the_key(factory, key, value):
    with pytest.raises((TypeError, ValueError), match=key):
        factory.from_config({key: value})


@CLASSES
def test_from_config_with_an_unknown_schedule_raises_naming_the_key(factory):
    with pytest.raises(TypeError, match="beta_1"):
        factory.from_config({"beta_1": {"class_name": "NoSuchSchedule", "config": {}}})


def _trained(optimizer, model):
    x, y = regression_data()
    model.compile(optimizer, loss="mse")
    model.train_on_batch(x[:32], y[:32])
    return model


def _adam_checkpoint(adam, tmp_path):
    model = _trained(adam, tiny_model())
    return tf.train.Checkpoint(model=model, optimizer=model.optimizer).write(
        str(tmp_path / "adam"))


@pytest.mark.parametrize("check", ["assert_consumed", "assert_existing_objects_matched"])
def test_legacy_restoring_an_adam_checkpoint_is_reported_naming_the_missing_vhat(
    check, keras_session, tmp_path
):
    path = _adam_checkpoint(tf.keras.optimizers.legacy.Adam(), tmp_path)
    model = _trained(legacy.BAMSProd(), tiny_model())
    status = tf.train.Checkpoint(model=model, optimizer=model.optimizer).read(path)
    with pytest.raises(AssertionError, match=r"not bound to checkpointed values(.|\n)*vhat"):
        getattr(status, check)()


def test_new_api_restoring_an_adam_checkpoint_raises_naming_a_slot(keras_session, tmp_path):
    # The Keras 2.11+ API tracks optimizer variables by position: Adam's and BAMSProd's
    # do not line up, so reading fails at once with the variable's name.
    path = _adam_checkpoint(tf.keras.optimizers.Adam(), tmp_path)
    model = _trained(OPTIMIZER_CLASSES["new"](), tiny_model())
    with pytest.raises(ValueError, match=r"incompatible tensor(.|\n)*name BAMSProd/"):
        tf.train.Checkpoint(model=model, optimizer=model.optimizer).read(path)


@CLASSES
def test_restoring_a_checkpoint_of_another_model_names_the_shape_mismatch(
    factory, keras_session, tmp_path
):
    other = tf.keras.Sequential([tf.keras.Input((4,)), tf.keras.layers.Dense(8),
                                 tf.keras.layers.Dense(1)])
    other = _trained(factory(), other)
    path = tf.train.Checkpoint(model=other, optimizer=other.optimizer).write(
        str(tmp_path / "other"))
    model = _trained(factory(), tiny_model())  # Dense(16): built, so restoring is eager
    with pytest.raises(ValueError, match=r"incompatible tensor with shape \(4, 8\)|"
                                         r"incompatible tensor with shape \(8,\)"):
        tf.train.Checkpoint(model=model, optimizer=model.optimizer).read(path)


@pytest.mark.parametrize("config", [None, ["learning_rate", 0.1], "BAMSProd"])
def test_from_config_with_a_non_dict_names_the_class(config):
    for cls in OPTIMIZER_CLASSES.values():
        with pytest.raises(TypeError, match="BAMSProd.from_config expects the dict"):
            cls.from_config(config)
