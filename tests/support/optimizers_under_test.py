"""The one table of BAMSProd variants that drives the generic tests.

Each row is ``(optimizer_factory, kwargs)``, as optax's ``_OPTIMIZERS_UNDER_TEST``. A row
whose kwargs hold schedules builds them in a function (``kwargs`` is then a callable), so
no two tests share an object. Adding a variant means adding a config below: it then runs
through the NumPy reference (float16/32/64), the loss-falls and dtype tests, and (when it
can be serialized) get_config/from_config, save/load and tf.train.Checkpoint.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import tensorflow as tf
from bamsprod_reference import reference_step

from larq_bamsprod import BAMSProd, legacy

OPTIMIZER_CLASSES = {"new": BAMSProd, "legacy": legacy.BAMSProd}
"""Both classes: the Keras 2.11+ API and the legacy one that Larq's CaseOptimizer takes."""


def _keras_schedules():
    return {
        # Fast-changing schedules, so evaluating them at t instead of t - 1 shows.
        "learning_rate": tf.keras.optimizers.schedules.ExponentialDecay(
            0.05, decay_steps=1, decay_rate=0.9
        ),
        # The paper's beta_1t = beta_1 / t.
        "beta_1": tf.keras.optimizers.schedules.InverseTimeDecay(
            0.9, decay_steps=1, decay_rate=1.0
        ),
        "gamma": 0.05,
    }


def _plain_callables():
    return {
        "learning_rate": lambda step: 0.05 / (1.0 + 0.5 * tf.cast(step, tf.float32)),
        "beta_1": lambda step: 0.9 * tf.pow(0.8, tf.cast(step, tf.float32)),
        "gamma": 0.05,
    }


# (id, kwargs or a function returning kwargs, serializable)
CONFIGS = (
    ("defaults", {}, True),
    ("float_target", {"learning_rate": 0.05, "bound_target": 0.04, "gamma": 0.1}, True),
    ("mean_target_sqrt_decay", {"learning_rate": 0.02, "gamma": 0.5, "lr_decay": "sqrt"},
     True),
    # Algorithm 1's step size exactly: eta / sqrt(t), no bias correction
    ("no_bias_correction_sqrt_decay", {"learning_rate": 0.05, "gamma": 0.05,
                                       "lr_decay": "sqrt", "bias_correction": False}, True),
    ("no_bound", {"learning_rate": 0.05, "bound_target": None}, True),
    ("keras_schedules", _keras_schedules, True),
    ("plain_callables", _plain_callables, False),
)

OPTIMIZERS_UNDER_TEST = [
    pytest.param(cls, kwargs, serializable, id=f"{kind}-{name}")
    for name, kwargs, serializable in CONFIGS
    for kind, cls in OPTIMIZER_CLASSES.items()
]
"""``pytest.param(optimizer_factory, kwargs, serializable)`` for every class and config."""

SERIALIZABLE_OPTIMIZERS = [p for p in OPTIMIZERS_UNDER_TEST if p.values[2]]


def make_optimizer(factory, kwargs, **overrides):
    """Build the optimizer of a table row (``kwargs`` may be a function returning them)."""
    kwargs = dict(kwargs() if callable(kwargs) else kwargs)
    kwargs.update(overrides)
    return factory(**kwargs)


def reference_kwargs(kwargs, factory=None, dtype: str = "float64") -> dict:
    """The same row's hyperparameters for the NumPy reference of a ``dtype`` variable.

    Schedules and callables become functions of the Python int ``iterations``; the
    reference then calls them at ``t - 1`` itself, so an optimizer that evaluates them at
    another step disagrees with it.

    The optimizer computes its step scalars in the variable's dtype but at least float32,
    so its hyperparameters are numbers of that dtype: they are rounded to it here (for
    float16 to float32; only ``epsilon`` and a float ``bound_target`` reach the update as
    float16 numbers). Keras also keeps some in float32 variables whatever the variable's
    dtype: the learning rate in both optimizer APIs, and every ``_set_hyper`` one
    (``learning_rate``, ``beta_1``, ``beta_2``, ``epsilon``, ``gamma``) in the legacy API,
    as ``tf.keras.optimizers.legacy.Adam`` does; given ``factory``, those are rounded to
    float32 first. Schedules return float32 in Keras.
    """
    kwargs = dict(kwargs() if callable(kwargs) else kwargs)
    defaults = inspect.signature(reference_step).parameters
    compute = "float32" if dtype == "float16" else dtype
    float32_names = {"learning_rate"}
    if factory is not None and issubclass(factory, tf.keras.optimizers.legacy.Optimizer):
        float32_names |= {"beta_1", "beta_2", "epsilon", "gamma"}
    for key in ("learning_rate", "beta_1", "beta_2", "epsilon", "gamma", "bound_target"):
        value = kwargs.get(key, defaults[key].default)
        if callable(value):
            kwargs[key] = (lambda it, fn=value:
                           _round(_round(float(fn(tf.constant(it, tf.int64))), "float32"),
                                  compute))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            if factory is not None and key in float32_names:
                value = _round(value, "float32")
            value = _round(value, compute)
            if key in ("epsilon", "bound_target"):
                value = _round(value, dtype)
            kwargs[key] = value
    return kwargs


def _round(value: float, dtype: str) -> float:
    return float(np.asarray(value, dtype=dtype))
