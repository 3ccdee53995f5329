"""The optimizers' argument checks, shared by the tf.keras and the Keras 3 classes.

Pure Python: nothing here imports TensorFlow or Keras. What a rate may be besides a float
(a schedule, a callable, not a tensor) differs between the two Kerases, so each passes a
:class:`RateKinds`; everything else, and every error message, is the same for both.
"""

from __future__ import annotations

import inspect
import math
import numbers
import warnings
from typing import Any, Callable, NamedTuple

from larq_bamsprod.bounds import BOUND_TARGETS

DEFAULTS = {
    "learning_rate": 1e-2,
    "beta_1": 0.9,
    "beta_2": 0.999,
    "epsilon": 1e-7,
    "gamma": 1e-3,
    "bound_target": "mean",
    "lr_decay": None,  # Algorithm 1's eta/sqrt(t) is lr_decay="sqrt"; README, "Defaults"
    "bias_correction": True,
}
"""Default hyperparameters of every BAMSProd class (see the class docstring for why)."""

BOP_DEFAULTS = {"threshold": 1e-8, "gamma": 1e-4}
"""Bop's defaults, Larq's (``larq.optimizers.Bop``)."""

LR_DECAYS = ("sqrt", None)


class RateKinds(NamedTuple):
    """What one Keras accepts as a rate besides a float."""

    schedule_type: type  # its LearningRateSchedule base class
    is_tensor: Callable[[Any], bool]  # True for its tensors and variables (refused)
    wrap_callable: Callable[[str, Callable], Any]  # what a plain callable named so becomes


def is_real(value) -> bool:
    """True for an int or float (NumPy's included), False for a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def takes_no_arguments(fn) -> bool:
    """True if ``fn`` can only be called without positional arguments (``lambda: 0.01``)."""
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # builtins without a signature: assume a step function
        return False
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                  inspect.Parameter.VAR_POSITIONAL)
    return not any(p.kind in positional for p in parameters)


def check_float(name: str, value, *, low: float | None = None, low_open: float | None = None,
                in_unit_interval: bool = False) -> float:
    """``value`` as a float; a TypeError or ValueError naming ``name`` otherwise."""
    if not is_real(value):
        raise TypeError(
            f"{name} must be a float, received {name}={value!r} of type "
            f"{type(value).__name__}."
        )
    return _check_range(name, float(value), low=low, low_open=low_open,
                        in_unit_interval=in_unit_interval)


def _check_range(name: str, value: float, *, low: float | None, low_open: float | None,
                 in_unit_interval: bool) -> float:
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, received {name}={value}.")
    if in_unit_interval and not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), received {name}={value}.")
    if low is not None and not value >= low:
        raise ValueError(f"{name} must be >= {low}, received {name}={value}.")
    if low_open is not None and not value > low_open:
        raise ValueError(f"{name} must be > {low_open}, received {name}={value}.")
    return value


def check_rate(name: str, value, kinds: RateKinds, *, low: float | None = None,
               low_open: float | None = None, in_unit_interval: bool = False):
    """Return a float or a schedule (a callable wrapped by ``kinds``); raise a
    ValueError/TypeError naming ``name``."""
    if isinstance(value, kinds.schedule_type):
        return value
    if kinds.is_tensor(value):
        raise TypeError(
            f"{name} must be a float, a LearningRateSchedule or a callable of the step, "
            f"received a tensor {value!r}; pass float(value) instead."
        )
    if callable(value):
        return kinds.wrap_callable(name, value)
    if not is_real(value):
        raise TypeError(
            f"{name} must be a float, a LearningRateSchedule or a callable of the step, "
            f"received {name}={value!r} of type {type(value).__name__}."
        )
    return _check_range(name, float(value), low=low, low_open=low_open,
                        in_unit_interval=in_unit_interval)


def pop_lr(learning_rate, kwargs: dict):
    """The learning rate, honouring Keras' deprecated ``lr`` alias (popped from ``kwargs``).

    As ``tf.keras.optimizers.legacy.Adam(lr=0.1)`` does: ``lr`` is used, and wins over
    ``learning_rate``, with a warning. (The new Keras optimizers drop ``lr`` with only a
    log message; every BAMSProd class honours it.)
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


def check_bound_target(bound_target):
    """``"mean"``, a float > 0 or None; a ValueError/TypeError otherwise."""
    if bound_target is None or isinstance(bound_target, str):
        if bound_target is not None and bound_target not in BOUND_TARGETS:
            raise ValueError(
                f"bound_target must be a float > 0, one of {list(BOUND_TARGETS)} or None, "
                f"received bound_target={bound_target!r}."
            )
        return bound_target
    return check_float("bound_target", bound_target, low_open=0.0)


def check_bamsprod_args(kinds: RateKinds, *, learning_rate, beta_1, beta_2, epsilon, gamma,
                        bound_target, lr_decay, bias_correction,
                        learning_rate_kinds: RateKinds | None = None) -> dict:
    """Validate BAMSProd's constructor arguments; return them normalised.

    ``learning_rate_kinds``: what the learning rate may be, where it differs from the other
    rates (tf.keras takes a callable of no argument there alone). Defaults to ``kinds``.
    """
    out = {
        "learning_rate": check_rate("learning_rate", learning_rate,
                                    learning_rate_kinds or kinds, low_open=0.0),
        "beta_1": check_rate("beta_1", beta_1, kinds, in_unit_interval=True),
        "beta_2": check_float("beta_2", beta_2, in_unit_interval=True),
        "epsilon": check_float("epsilon", epsilon, low=0.0),
        "gamma": check_float("gamma", gamma, low_open=0.0),
        "bound_target": check_bound_target(bound_target),
    }
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


def check_bop_args(kinds: RateKinds, *, threshold, gamma) -> dict:
    """Validate Bop's arguments (Larq's Bop takes any value; these are the meaningful ones:
    a flip needs ``|m| > threshold >= 0``, and ``m`` averages only for ``0 < gamma <= 1``)."""
    gamma = check_rate("gamma", gamma, kinds, low_open=0.0)
    if is_real(gamma) and gamma > 1.0:
        raise ValueError(f"gamma must be in (0, 1], received gamma={gamma}.")
    return {"threshold": check_rate("threshold", threshold, kinds, low=0.0), "gamma": gamma}


def check_config(cls, config) -> None:
    """A TypeError naming the class when ``from_config`` gets something not a dict."""
    if not isinstance(config, dict):
        raise TypeError(
            f"{cls.__name__}.from_config expects the dict returned by get_config(), "
            f"received {type(config).__name__}: {config!r}"
        )
