"""The optimizers a comparison runs, with the settings their papers recommend.

Every entry builds a fresh ``tf.keras.optimizers.legacy`` optimizer (the kind Larq's
``CaseOptimizer`` accepts, and the fused-kernel Keras optimizers on CPU), so every
optimizer of a comparison goes through the same Keras code path. ``learning_rate`` may be
a float or a ``LearningRateSchedule``; :func:`make_optimizer` scales the schedule shape
given to it by each optimizer's own base rate, so all optimizers share one schedule shape.

========  ===========================================================  ===================
name      optimizer (defaults)                                          source
========  ===========================================================  ===================
bamsprod  ``legacy.BAMSProd()`` (see ``larq_bamsprod.DEFAULTS``)        Liu et al. 2020
bop       ``CaseOptimizer((Bop.is_binary_variable, Bop(threshold=1e-8,  Helwegen et al.
          gamma=1e-4)), default_optimizer=Adam(0.01))``                 2019; Larq docs
adam      ``Adam(1e-3)``                                                Kingma & Ba 2015
amsgrad   ``Adam(1e-3, amsgrad=True)``                                  Reddi et al. 2018
adabound  ``AdaBound(1e-3, final_lr=0.1, gamma=1e-3)``                  Luo et al. 2019
amsbound  ``AMSBound(1e-3, final_lr=0.1, gamma=1e-3)``                  Luo et al. 2019
sgdm      ``SGD(0.1, momentum=0.9)``                                    He et al. 2016
sgd       ``SGD(0.1)`` (the convex problems' baseline)                  Reddi et al. 2018
========  ===========================================================  ===================

Bop only acts on variables marked binary (``precision == 1``, i.e. kernels of Larq
quantized layers with ``ste_sign``-type quantizers); everything else (batch norm, the
real-valued first and last layers, shortcuts) is trained by the default optimizer, as the
Bop paper and Larq's documentation do.

``bamsprod`` trains every variable by default (the paper's setting). Its one extra
setting, ``fp_learning_rate`` (default ``None``), gives it Bop's layout instead:
``CaseOptimizer((Bop.is_binary_variable, BAMSProd(...)), default_optimizer=Adam(
fp_learning_rate))``. With ``fp_learning_rate=0.01`` the two differ only in the optimizer
of the binary kernels, e.g. ``--optimizers bop,bamsprod@case --hparam
bamsprod@case.fp_learning_rate=0.01``.
"""

from __future__ import annotations

import re
from typing import Any

import tensorflow as tf

from larq_bamsprod.compat import LearningRateSchedule
from larq_bamsprod.hyperparameters import is_real
from larq_bamsprod.schedules import ScaledSchedule

OPTIMIZER_NAMES = ("bamsprod", "bop", "adam", "amsgrad", "adabound", "amsbound", "sgdm", "sgd")
COMPARED_BY_DEFAULT = ("bamsprod", "bop", "adam", "amsgrad", "adabound", "amsbound", "sgdm")
"""What ``larq-bamsprod compare`` runs without ``--optimizers`` (plain ``sgd`` is for the
convex problems of :mod:`larq_bamsprod.harness.convex`)."""
_VARIANT_LABEL = re.compile(r"[a-z0-9_.\-]+")

DEFAULT_HPARAMS: dict[str, dict[str, Any]] = {
    "bamsprod": {},  # larq_bamsprod.DEFAULTS
    "bop": {"threshold": 1e-8, "gamma": 1e-4, "fp_learning_rate": 1e-2},
    "adam": {"learning_rate": 1e-3, "beta_1": 0.9, "beta_2": 0.999},
    "amsgrad": {"learning_rate": 1e-3, "beta_1": 0.9, "beta_2": 0.999},
    "adabound": {"learning_rate": 1e-3, "final_lr": 0.1, "gamma": 1e-3, "beta_1": 0.9,
                 "beta_2": 0.999},
    "amsbound": {"learning_rate": 1e-3, "final_lr": 0.1, "gamma": 1e-3, "beta_1": 0.9,
                 "beta_2": 0.999},
    "sgdm": {"learning_rate": 0.1, "momentum": 0.9, "nesterov": False},
    "sgd": {"learning_rate": 0.1},
}
"""Per-optimizer hyperparameters; override any of them with ``overrides``."""


def canonical_name(name: str) -> str:
    """Case-insensitive optimizer name, or a ValueError listing the valid ones.

    ``base@label`` names a variant of ``base`` (e.g. ``bamsprod@lr0.1``) that gets its own
    ``--hparam bamsprod@lr0.1.learning_rate=0.1`` overrides and its own row in the table.
    """
    key = str(name).strip().lower()
    base, at, label = key.partition("@")
    if base not in OPTIMIZER_NAMES:
        raise ValueError(
            f"unknown optimizer {name!r}; valid optimizers: {', '.join(OPTIMIZER_NAMES)} "
            "(a variant is written base@label, e.g. bamsprod@lr0.1)"
        )
    if at and not _VARIANT_LABEL.fullmatch(label):
        raise ValueError(
            f"variant label in {name!r} must be letters, digits, '_', '-' or '.', "
            "e.g. bamsprod@lr0.1"
        )
    return key


def base_name(name: str) -> str:
    """``"bamsprod@lr0.1"`` -> ``"bamsprod"``."""
    return canonical_name(name).partition("@")[0]


def parse_optimizer_list(text: str) -> list[str]:
    """Parse ``"bamsprod,Bop,adam"`` into canonical names (no duplicates)."""
    names = [canonical_name(part) for part in text.split(",") if part.strip()]
    if not names:
        raise ValueError(
            f"--optimizers is empty; choose from: {', '.join(OPTIMIZER_NAMES)}"
        )
    return list(dict.fromkeys(names))


def hyperparameters(name: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The settings :func:`make_optimizer` uses for ``name``, overrides applied."""
    name = canonical_name(name)
    base = base_name(name)
    if base == "bamsprod":
        from larq_bamsprod.optimizers import DEFAULTS

        params = {**DEFAULTS, "fp_learning_rate": None}
    else:
        params = dict(DEFAULT_HPARAMS[base])
    for key, value in (overrides or {}).items():
        if key not in params:
            raise ValueError(
                f"unknown hyperparameter {key!r} for optimizer {name!r}; valid: "
                f"{', '.join(sorted(params))}"
            )
        params[key] = value
    fp_learning_rate = params.get("fp_learning_rate") if base == "bamsprod" else None
    if fp_learning_rate is not None and not (is_real(fp_learning_rate) and fp_learning_rate > 0):
        raise ValueError(
            f"fp_learning_rate must be a number > 0 (Adam's rate for the real-valued "
            f"variables, as in Bop's recipe) or None (BAMSProd trains every variable), "
            f"received fp_learning_rate={fp_learning_rate!r} for optimizer {name!r}"
        )
    check_base_values(name, params)
    return params


# What each numeric hyperparameter must be, for every optimizer. The base rates are checked
# here because make_optimizer hands the optimizers a schedule (base rate x shape), which
# their own constructors cannot check; the rest are checked again by the constructors.
_POSITIVE = ("learning_rate", "fp_learning_rate", "final_lr", "gamma")
_UNIT_INTERVAL = ("beta_1", "beta_2", "momentum")
_NON_NEGATIVE = ("epsilon", "threshold")


def check_base_values(name: str, params: dict[str, Any]) -> None:
    """Raise a ValueError (wrong range) or TypeError (not a number) naming the hyperparameter,
    its value and optimizer ``name``. ``beta_1`` of ``bamsprod`` may also be one of
    :data:`BETA_1_SCHEDULES`."""
    for key, value in params.items():
        if value is None and key == "fp_learning_rate":
            continue
        if key == "beta_1" and isinstance(value, str) and base_name(name) == "bamsprod":
            if value not in BETA_1_SCHEDULES:
                raise ValueError(
                    f"beta_1 must be a number in [0, 1) or one of {', '.join(BETA_1_SCHEDULES)}"
                    f", received beta_1={value!r} for optimizer {name!r}"
                )
            continue
        if key not in _POSITIVE + _UNIT_INTERVAL + _NON_NEGATIVE:
            continue
        if not is_real(value):
            raise TypeError(
                f"{key} must be a number, received {key}={value!r} for optimizer {name!r}"
            )
        if key in _POSITIVE and not value > 0:
            raise ValueError(f"{key} must be > 0, received {key}={value!r} for optimizer "
                             f"{name!r}")
        if key in _UNIT_INTERVAL and not 0 <= value < 1:
            raise ValueError(f"{key} must be in [0, 1), received {key}={value!r} for "
                             f"optimizer {name!r}")
        if key in _NON_NEGATIVE and not value >= 0:
            raise ValueError(f"{key} must be >= 0, received {key}={value!r} for optimizer "
                             f"{name!r}")


BETA_1_SCHEDULES = ("inverse_time", "corollary4")


def beta_1_schedule(beta_1, beta_2: float = 0.999, base: float = 0.9):
    """Map the names of the paper's decaying ``beta_1t`` to Keras schedules.

    ``"inverse_time"``: ``beta_1t = beta_1 / t`` (section 4), i.e.
    ``InverseTimeDecay(beta_1, decay_steps=1, decay_rate=1)`` evaluated at ``t - 1``.
    ``"corollary4"``: ``beta_1t = beta_1 (beta_1 / sqrt(beta_2))^(t-1)`` (Corollary 4), i.e.
    ``ExponentialDecay(beta_1, 1, beta_1 / sqrt(beta_2))``. ``base`` is ``beta_1``'s
    starting value. Anything else is returned unchanged.
    """
    if not isinstance(beta_1, str):
        return beta_1
    schedules = tf.keras.optimizers.schedules
    if beta_1 == "inverse_time":
        return schedules.InverseTimeDecay(base, decay_steps=1, decay_rate=1.0)
    if beta_1 == "corollary4":
        return schedules.ExponentialDecay(base, 1, base / beta_2**0.5)
    raise ValueError(
        f"beta_1 must be a float or one of {', '.join(BETA_1_SCHEDULES)}, "
        f"received beta_1={beta_1!r}"
    )


def _scaled(base: float, shape: LearningRateSchedule | None):
    return base if shape is None else ScaledSchedule(base, shape)


def make_optimizer(
    name: str,
    overrides: dict[str, Any] | None = None,
    schedule_shape: LearningRateSchedule | None = None,
) -> tf.keras.optimizers.legacy.Optimizer:
    """Build optimizer ``name`` with its recommended settings.

    Args:
      name: one of :data:`OPTIMIZER_NAMES` (case-insensitive).
      overrides: hyperparameters replacing those of :data:`DEFAULT_HPARAMS`.
        Defaults to `None`.
      schedule_shape: a schedule with value 1 at step 0 (e.g. cosine decay); each
        optimizer's base learning rate (Bop: ``gamma`` and its Adam's rate) is multiplied
        by it. Defaults to `None` (constant rates).
    """
    params = hyperparameters(name, overrides)
    name = base_name(name)
    legacy_opts = tf.keras.optimizers.legacy
    if name == "bop":
        import larq as lq

        bop = lq.optimizers.Bop(
            threshold=params["threshold"], gamma=_scaled(params["gamma"], schedule_shape)
        )
        fp_optimizer = legacy_opts.Adam(_scaled(params["fp_learning_rate"], schedule_shape))
        return lq.optimizers.CaseOptimizer(
            (lq.optimizers.Bop.is_binary_variable, bop), default_optimizer=fp_optimizer
        )
    params["learning_rate"] = _scaled(params["learning_rate"], schedule_shape)
    if name == "bamsprod":
        from larq_bamsprod.legacy import BAMSProd

        fp_learning_rate = params.pop("fp_learning_rate")
        params["beta_1"] = beta_1_schedule(params["beta_1"], params["beta_2"])
        bamsprod = BAMSProd(**params)
        if fp_learning_rate is None:
            return bamsprod
        import larq as lq

        fp_optimizer = legacy_opts.Adam(_scaled(fp_learning_rate, schedule_shape))
        return lq.optimizers.CaseOptimizer(
            (lq.optimizers.Bop.is_binary_variable, bamsprod), default_optimizer=fp_optimizer
        )
    if name in ("adam", "amsgrad"):
        return legacy_opts.Adam(amsgrad=(name == "amsgrad"), **params)
    if name in ("adabound", "amsbound"):
        from larq_bamsprod.harness.adabound import AdaBound, AMSBound

        return (AdaBound if name == "adabound" else AMSBound)(**params)
    return legacy_opts.SGD(**params)


def parse_overrides(items: list[str]) -> dict[str, dict[str, Any]]:
    """Parse ``["bamsprod.learning_rate=0.1", "bop.gamma=1e-3"]`` into nested dicts."""
    out: dict[str, dict[str, Any]] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        opt, dot, hparam = key.rpartition(".")
        if not sep or not dot or not hparam:
            raise ValueError(
                f"--hparam {item!r} must look like OPTIMIZER.NAME=VALUE, "
                "e.g. bamsprod.learning_rate=0.1"
            )
        opt = canonical_name(opt)
        out.setdefault(opt, {})[hparam] = _parse_value(raw)
        try:
            hyperparameters(opt, {hparam: out[opt][hparam]})  # now, not mid-run
        except (ValueError, TypeError) as err:
            raise type(err)(f"--hparam {item}: {err}") from None
    for opt, values in out.items():
        hyperparameters(opt, values)  # the combination too
    return out


def _parse_value(raw: str):
    text = raw.strip()
    lowered = text.lower()
    if lowered in ("none", "null"):
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text
