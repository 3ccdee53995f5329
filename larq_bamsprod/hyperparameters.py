"""Validation and conversion of hyperparameters, shared by every optimizer class.

Public so that optimizers built on this package (the harness' AdaBound, users' own) check
and cast their arguments exactly as BAMSProd does.
"""

from __future__ import annotations

import inspect
import math
import numbers
import warnings

import numpy as np
import tensorflow as tf

from larq_bamsprod.bounds import BOUND_TARGETS
from larq_bamsprod.compat import LearningRateSchedule
from larq_bamsprod.schedules import StepFunction

LR_DECAYS = ("sqrt", None)


def is_real(value) -> bool:
    """True for an int or float (NumPy's included), False for a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _finite(name: str, value) -> float:
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, received {name}={value}.")
    return value


def takes_no_arguments(fn) -> bool:
    """True if ``fn`` can only be called without positional arguments (``lambda: 0.01``)."""
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # builtins without a signature: assume a step function
        return False
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                  inspect.Parameter.VAR_POSITIONAL)
    return not any(p.kind in positional for p in parameters)


def check_schedule_or_float(name: str, value, low_open: float | None = None,
                            in_unit_interval: bool = False, zero_argument_ok: bool = False):
    """Return a float or a schedule; raise a ValueError/TypeError naming ``name``.

    With ``zero_argument_ok``, a callable that takes no argument is returned as it is, for
    Keras to call as its optimizers call one (``learning_rate=lambda: 0.01``).
    """
    if isinstance(value, LearningRateSchedule):
        return value
    if callable(value) and not tf.is_tensor(value):
        if not takes_no_arguments(value):
            return StepFunction(value)
        if zero_argument_ok:
            return value
        raise TypeError(
            f"{name} must be a float, a LearningRateSchedule or a callable of the step, "
            f"received {name}={value!r}, a callable that takes no argument; give it the "
            "step as argument (lambda step: ...)."
        )
    if tf.is_tensor(value) or isinstance(value, tf.Variable):
        raise TypeError(
            f"{name} must be a float, a LearningRateSchedule or a callable of the step, "
            f"received a tensor {value!r}; pass float(value) instead."
        )
    if not is_real(value):
        raise TypeError(
            f"{name} must be a float, a LearningRateSchedule or a callable of the step, "
            f"received {name}={value!r} of type {type(value).__name__}."
        )
    value = _finite(name, value)
    if in_unit_interval and not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), received {name}={value}.")
    if low_open is not None and not value > low_open:
        raise ValueError(f"{name} must be > {low_open}, received {name}={value}.")
    return value


def check_float(name: str, value, *, low: float | None = None, low_open: float | None = None,
                in_unit_interval: bool = False) -> float:
    if not is_real(value):
        raise TypeError(
            f"{name} must be a float, received {name}={value!r} of type "
            f"{type(value).__name__}."
        )
    value = _finite(name, value)
    if in_unit_interval and not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), received {name}={value}.")
    if low is not None and not value >= low:
        raise ValueError(f"{name} must be >= {low}, received {name}={value}.")
    if low_open is not None and not value > low_open:
        raise ValueError(f"{name} must be > {low_open}, received {name}={value}.")
    return value


def pop_lr(learning_rate, kwargs: dict):
    """The learning rate, honouring Keras' deprecated ``lr`` alias (popped from ``kwargs``).

    As ``tf.keras.optimizers.legacy.Adam(lr=0.1)`` does: ``lr`` is used, and wins over
    ``learning_rate``, with a warning. (The new Keras optimizers drop ``lr`` with only a
    log message; both BAMSProd classes honour it.)
    """
    if "lr" not in kwargs:
        return learning_rate
    lr = kwargs.pop("lr")
    warnings.warn(
        f"The `lr` argument is deprecated, use `learning_rate` instead; training with "
        f"learning_rate={lr!r} (from lr=).",
        UserWarning,
        stacklevel=3,
    )
    return lr


def check_bamsprod_args(*, learning_rate, beta_1, beta_2, epsilon, gamma, bound_target,
                        lr_decay, bias_correction) -> dict:
    """Validate BAMSProd's constructor arguments; return them normalised."""
    out = {
        "learning_rate": check_schedule_or_float("learning_rate", learning_rate, low_open=0.0,
                                                 zero_argument_ok=True),
        "beta_1": check_schedule_or_float("beta_1", beta_1, in_unit_interval=True),
        "beta_2": check_float("beta_2", beta_2, in_unit_interval=True),
        "epsilon": check_float("epsilon", epsilon, low=0.0),
        "gamma": check_float("gamma", gamma, low_open=0.0),
    }
    if bound_target is None or isinstance(bound_target, str):
        if bound_target is not None and bound_target not in BOUND_TARGETS:
            raise ValueError(
                f"bound_target must be a float > 0, one of {list(BOUND_TARGETS)} or None, "
                f"received bound_target={bound_target!r}."
            )
    else:
        bound_target = check_float("bound_target", bound_target, low_open=0.0)
    out["bound_target"] = bound_target
    if lr_decay not in LR_DECAYS:
        raise ValueError(
            f"lr_decay must be one of {list(LR_DECAYS)}, received lr_decay={lr_decay!r}."
        )
    out["lr_decay"] = lr_decay
    if not isinstance(bias_correction, bool):
        raise TypeError(
            f"bias_correction must be a bool, received bias_correction={bias_correction!r}."
        )
    out["bias_correction"] = bias_correction
    return out


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


def check_config(cls, config) -> None:
    """A TypeError naming the class when ``from_config`` gets something not a dict."""
    if not isinstance(config, dict):
        raise TypeError(
            f"{cls.__name__}.from_config expects the dict returned by get_config(), "
            f"received {type(config).__name__}: {config!r}"
        )
