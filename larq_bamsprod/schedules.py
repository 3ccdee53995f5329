"""The package's learning-rate schedules, all in one place.

* :class:`StepFunction`: a plain callable of the step, as both Keras optimizer bases take it.
* :class:`ScaledSchedule`: ``scale * shape(step)``; one schedule shape shared by optimizers
  with different base rates (the comparison harness), or a schedule rescaled to peak 1.
* :class:`InverseSqrtDecay`: ``initial_learning_rate / sqrt(step + 1)``, the
  ``alpha / sqrt(t)`` step of Reddi et al. and of BAMSProd's Algorithm 1, for other
  optimizers.

All are registered with Keras under the ``larq_bamsprod`` package prefix.
"""

from __future__ import annotations

from typing import Any, Callable

import tensorflow as tf

from larq_bamsprod.compat import LearningRateSchedule, register_serializable

__all__ = ["InverseSqrtDecay", "ScaledSchedule", "StepFunction", "deserialize"]


def deserialize(config: dict, custom_objects=None) -> LearningRateSchedule:
    """Rebuild a schedule from its config, unregistered classes included.

    ``tf.keras.optimizers.schedules.deserialize`` returns the class name, a str, for classes
    that are not registered (larq-zoo's schedules); this imports the recorded module.
    """
    schedule = tf.keras.utils.deserialize_keras_object(config, custom_objects=custom_objects)
    if not isinstance(schedule, LearningRateSchedule):
        raise TypeError(f"cannot rebuild the learning-rate schedule {config!r}")
    return schedule


@register_serializable(package="larq_bamsprod")
class StepFunction(LearningRateSchedule):
    """Wraps a plain callable of the step so both Keras optimizer bases accept it.

    A plain Python function cannot be serialized: ``get_config`` raises with advice.
    """

    def __init__(self, fn: Callable[[tf.Tensor], Any]):
        self.fn = fn

    def __call__(self, step):
        return self.fn(step)

    def get_config(self):
        raise NotImplementedError(
            f"cannot serialize the plain callable {self.fn!r}: pass a "
            "tf.keras.optimizers.schedules.LearningRateSchedule with get_config() "
            "instead (e.g. ExponentialDecay, InverseTimeDecay, PiecewiseConstantDecay)."
        )


@register_serializable(package="larq_bamsprod")
class ScaledSchedule(LearningRateSchedule):
    """``base * shape(step)``: one schedule shape, scaled by each optimizer's base rate.

    Args:
      base: the factor, a float.
      shape: a ``LearningRateSchedule`` (e.g. cosine decay from 1).
    """

    def __init__(self, base: float, shape: LearningRateSchedule):
        self.base = float(base)
        self.shape = shape

    def __call__(self, step):
        return self.base * tf.cast(self.shape(step), tf.float32)

    def get_config(self):
        return {"base": self.base, "shape": tf.keras.optimizers.schedules.serialize(self.shape)}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        return cls(config["base"], deserialize(config["shape"], custom_objects))


@register_serializable(package="larq_bamsprod", name="RelativeSchedule")
class _RelativeScheduleConfig(ScaledSchedule):
    """Reads the configs of version 0.1's ``RelativeSchedule`` (``schedule / reference``),
    which :class:`ScaledSchedule` replaced; models saved by 0.1 recipes still load."""

    @classmethod
    def from_config(cls, config, custom_objects=None):
        shape = deserialize(config["schedule"], custom_objects)
        return ScaledSchedule(1.0 / float(config["reference"]), shape)


@register_serializable(package="larq_bamsprod")
class InverseSqrtDecay(LearningRateSchedule):
    """``initial_learning_rate / sqrt(step + 1)``: Reddi's ``alpha / sqrt(t)`` with
    ``t = step + 1``."""

    def __init__(self, initial_learning_rate: float):
        self.initial_learning_rate = float(initial_learning_rate)

    def __call__(self, step):
        return self.initial_learning_rate / tf.sqrt(tf.cast(step, tf.float32) + 1.0)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate}
