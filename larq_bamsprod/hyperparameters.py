"""Validation and conversion of hyperparameters for the tf.keras optimizer classes.

Public so that optimizers built on this package (the harness' AdaBound, users' own) check
and cast their arguments exactly as BAMSProd does. The checks themselves live in
:mod:`larq_bamsprod.arguments` (no TensorFlow), shared with :mod:`larq_bamsprod.keras3`.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from larq_bamsprod import arguments
from larq_bamsprod.arguments import (  # noqa: F401  (public here since 0.1)
    LR_DECAYS,
    RateKinds,
    check_config,
    check_float,
    check_rate,
    is_real,
    pop_lr,
    takes_no_arguments,
)
from larq_bamsprod.compat import LearningRateSchedule
from larq_bamsprod.schedules import StepFunction


def _step_function(name: str, fn):
    if takes_no_arguments(fn):
        raise TypeError(
            f"{name} must be a float, a LearningRateSchedule or a callable of the step, "
            f"received {name}={fn!r}, a callable that takes no argument; give it the "
            "step as argument (lambda step: ...)."
        )
    return StepFunction(fn)


def _learning_rate_function(name: str, fn):
    # Keras' documented zero-argument learning rate (``lambda: 0.01``) is Keras' to call.
    return fn if takes_no_arguments(fn) else StepFunction(fn)


TF_KERAS_RATES = RateKinds(
    schedule_type=LearningRateSchedule,
    is_tensor=lambda value: tf.is_tensor(value) or isinstance(value, tf.Variable),
    wrap_callable=_step_function,
)
"""What tf.keras takes as a rate: its schedules, and callables of the step."""

TF_KERAS_LEARNING_RATES = TF_KERAS_RATES._replace(wrap_callable=_learning_rate_function)
"""What tf.keras takes as a learning rate: also a callable of no argument, as Keras does."""


def check_schedule_or_float(name: str, value, low_open: float | None = None,
                            in_unit_interval: bool = False, zero_argument_ok: bool = False):
    """Return a float or a schedule; raise a ValueError/TypeError naming ``name``.

    With ``zero_argument_ok``, a callable that takes no argument is returned as it is, for
    Keras to call as its optimizers call one (``learning_rate=lambda: 0.01``).
    """
    kinds = TF_KERAS_LEARNING_RATES if zero_argument_ok else TF_KERAS_RATES
    return check_rate(name, value, kinds, low_open=low_open,
                      in_unit_interval=in_unit_interval)


def check_bamsprod_args(**kwargs) -> dict:
    """Validate BAMSProd's constructor arguments; return them normalised."""
    return arguments.check_bamsprod_args(
        TF_KERAS_RATES, learning_rate_kinds=TF_KERAS_LEARNING_RATES, **kwargs)


def cast_exact(value, dtype: tf.DType) -> tf.Tensor:
    """``value`` as a tensor of ``dtype``, a Python number rounded once, straight to ``dtype``.

    ``tf.cast(0.01, tf.float64)`` first makes a float32 constant, so a float64 variable
    would see a float32-rounded hyperparameter; ``tf.constant(0.01, tf.float64)`` does not.

    A variable is read here, once: ``tf.cast`` of a variable to its own dtype returns the
    variable itself, and every op that took it would read it again (one ``ReadVariableOp``
    per model variable and step instead of one per step).
    """
    if isinstance(value, tf.Variable):
        value = value.read_value()
    if tf.is_tensor(value):
        return tf.cast(value, dtype)
    return tf.constant(value, dtype)


def value_at(hyper, step, dtype: tf.DType) -> tf.Tensor:
    """Evaluate a float or schedule hyperparameter at ``step`` (iterations so far)."""
    if isinstance(hyper, LearningRateSchedule):
        return tf.cast(hyper(step), dtype)
    return cast_exact(hyper, dtype)


def plain(value):
    """``value`` as JSON should hold it; the one JSON-cleaning helper of the package.

    Keras reads float hyperparameters back from its variables as NumPy scalars, which
    ``json.dumps`` refuses. They become the shortest Python number that reads back to the
    same value in their dtype (``np.float32(0.999)`` -> ``0.999``, not
    ``0.9990000128746033``); arrays become lists of such numbers. Anything else is returned
    unchanged.
    """
    if isinstance(value, np.floating):
        return float(str(value))
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.ndarray):
        return [plain(item) for item in value]
    return value


def serialize(hyper):
    """JSON-clean form of a float or schedule hyperparameter."""
    if isinstance(hyper, LearningRateSchedule):
        return tf.keras.optimizers.schedules.serialize(hyper)
    return hyper


def deserialize_schedules(config: dict, names, custom_objects=None) -> dict:
    """Rebuild every schedule in ``config`` whose key is in ``names``."""
    config = dict(config)
    for name in names:
        if isinstance(config.get(name), dict):
            config[name] = tf.keras.optimizers.schedules.deserialize(
                config[name], custom_objects=custom_objects
            )
    return config
