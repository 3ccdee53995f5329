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

import dataclasses
import re
from typing import Any, Callable

import tensorflow as tf

from larq_bamsprod.compat import LearningRateSchedule
from larq_bamsprod.hyperparameters import is_real
from larq_bamsprod.schedules import ScaledSchedule


@dataclasses.dataclass(frozen=True)
class OptimizerEntry:
    """Everything the harness knows about one optimizer: adding an optimizer is one entry.

    Attributes:
        name: Lower-case name used on the command line and in tables.
        build: ``build(params, schedule_shape)`` -> a ``tf.keras`` optimizer; ``params`` are
            :attr:`defaults` with the overrides applied, ``schedule_shape`` a schedule with
            value 1 at step 0 to multiply the base rates by (None: constant).
        defaults: The recommended hyperparameters (every one that ``--hparam`` may set).
        space: The tuning search space: ``name -> ("log", low, high)`` or
            ``("choice", values)``; the same for every graph.
        ablations: Named extra search-space entries that ``tune --ablation OPT.NAME`` adds
            to :attr:`space` (e.g. a setting the default space keeps fixed).
        layout: Which variables the optimizer trains, and with what.
        source: Where the recommended settings come from.
        compared_by_default: Whether ``compare`` runs it without ``--optimizers``.
    """

    name: str
    build: Callable[[dict, Any], Any]
    defaults: dict[str, Any]
    space: dict[str, tuple] = dataclasses.field(default_factory=dict)
    layout: str = "every variable"
    source: str = ""
    compared_by_default: bool = True
    ablations: dict[str, dict[str, tuple]] = dataclasses.field(default_factory=dict)


def _scaled(base: float, shape: LearningRateSchedule | None):
    return base if shape is None else ScaledSchedule(base, shape)


def _case(binary_optimizer, fp_learning_rate: float, shape):
    """Larq's layout: ``binary_optimizer`` on the binary kernels, ``Adam`` on the rest."""
    import larq as lq

    return lq.optimizers.CaseOptimizer(
        (lq.optimizers.Bop.is_binary_variable, binary_optimizer),
        default_optimizer=tf.keras.optimizers.legacy.Adam(_scaled(fp_learning_rate, shape)))


def _build_bamsprod(params: dict, shape):
    from larq_bamsprod.legacy import BAMSProd

    params = dict(params)
    fp_learning_rate = params.pop("fp_learning_rate")
    params["learning_rate"] = _scaled(params["learning_rate"], shape)
    params["beta_1"] = beta_1_schedule(params["beta_1"], params["beta_2"])
    bamsprod = BAMSProd(**params)
    return bamsprod if fp_learning_rate is None else _case(bamsprod, fp_learning_rate, shape)


def _build_bop(params: dict, shape):
    import larq as lq

    bop = lq.optimizers.Bop(threshold=params["threshold"],
                            gamma=_scaled(params["gamma"], shape))
    return _case(bop, params["fp_learning_rate"], shape)


def _build_adam(amsgrad: bool):
    def build(params: dict, shape):
        return tf.keras.optimizers.legacy.Adam(
            amsgrad=amsgrad, **{**params, "learning_rate": _scaled(params["learning_rate"],
                                                                   shape)})
    return build


def _build_adabound(amsbound: bool):
    def build(params: dict, shape):
        from larq_bamsprod.harness.catalogue.adabound import AdaBound, AMSBound

        cls = AMSBound if amsbound else AdaBound
        return cls(**{**params, "learning_rate": _scaled(params["learning_rate"], shape)})
    return build


def _build_sgd(params: dict, shape):
    return tf.keras.optimizers.legacy.SGD(
        **{**params, "learning_rate": _scaled(params["learning_rate"], shape)})


def _bamsprod_defaults() -> dict:
    from larq_bamsprod.optimizers import DEFAULTS

    return {**DEFAULTS, "fp_learning_rate": None}


_BOUND_DEFAULTS = {"learning_rate": 1e-3, "final_lr": 0.1, "gamma": 1e-3, "beta_1": 0.9,
                   "beta_2": 0.999}
_ADAM_DEFAULTS = {"learning_rate": 1e-3, "beta_1": 0.9, "beta_2": 0.999}
_FP_LAYOUT = "binary kernels: {}; every other variable: Adam(fp_learning_rate)"

# Search spaces: every learning rate log-uniform over at least three decades around the
# optimizer's recommended value; the same table for every graph.
# bamsprod: its learning rate alone (its default lr_decay=None fixed, as every other
# optimizer's schedule is), over four decades centred on its default 1e-2 (as adam's are on
# 1e-3). The first BinaryCNN study searched [1e-4, 1e-1] and put its best trial at 0.081,
# at the edge. `--ablation bamsprod.lr_decay` adds lr_decay "sqrt" vs None (with "sqrt"
# the rate at step t is learning_rate / sqrt(t), so a budget of ~1,700 steps wants a
# learning_rate ~40x above an undecayed one's).
# adam, amsgrad: five decades, up to 1. On BinaryCNN both first chose a rate in the top
# 10% of [1e-5, 1e-1] (0.0738, 0.0937): latent binary weights are clipped to [-1, 1],
# so large Adam rates are not absurd here. By the edge rule the range was widened and both
# studies re-run (docs/results/tuned/binary_cnn, superseded-*).
REGISTRY: dict[str, OptimizerEntry] = {entry.name: entry for entry in (
    OptimizerEntry(
        "bamsprod", _build_bamsprod, {},  # defaults: larq_bamsprod.DEFAULTS (hyperparameters)
        {"learning_rate": ("log", 1e-4, 1.0)},
        "every variable (fp_learning_rate: " + _FP_LAYOUT.format("BAMSProd") + ")",
        "Liu et al. 2020",
        ablations={"lr_decay": {"lr_decay": ("choice", ("sqrt", None))}}),
    OptimizerEntry(
        "bop", _build_bop, {"threshold": 1e-8, "gamma": 1e-4, "fp_learning_rate": 1e-2},
        {"fp_learning_rate": ("log", 1e-4, 1e-1), "gamma": ("log", 1e-6, 1e-2),
         "threshold": ("log", 1e-9, 1e-5)},
        _FP_LAYOUT.format("Bop"), "Helwegen et al. 2019; Larq docs"),
    OptimizerEntry("adam", _build_adam(False), _ADAM_DEFAULTS,
                   {"learning_rate": ("log", 1e-5, 1.0)}, source="Kingma & Ba 2015"),
    OptimizerEntry("amsgrad", _build_adam(True), _ADAM_DEFAULTS,
                   {"learning_rate": ("log", 1e-5, 1.0)}, source="Reddi et al. 2018"),
    OptimizerEntry("adabound", _build_adabound(False), _BOUND_DEFAULTS,
                   {"learning_rate": ("log", 1e-5, 1e-1)}, source="Luo et al. 2019"),
    OptimizerEntry("amsbound", _build_adabound(True), _BOUND_DEFAULTS,
                   {"learning_rate": ("log", 1e-5, 1e-1)}, source="Luo et al. 2019"),
    OptimizerEntry("sgdm", _build_sgd, {"learning_rate": 0.1, "momentum": 0.9,
                                        "nesterov": False},
                   {"learning_rate": ("log", 1e-4, 1.0)}, source="He et al. 2016"),
    OptimizerEntry("sgd", _build_sgd, {"learning_rate": 0.1},
                   {"learning_rate": ("log", 1e-4, 1.0)},
                   source="Reddi et al. 2018 (the convex problems' baseline)",
                   compared_by_default=False),
)}
"""Every optimizer the harness compares, one entry each."""

OPTIMIZER_NAMES = tuple(REGISTRY)
COMPARED_BY_DEFAULT = tuple(n for n, e in REGISTRY.items() if e.compared_by_default)
"""What ``larq-bamsprod compare`` runs without ``--optimizers`` (plain ``sgd`` is for the
convex problems of :mod:`larq_bamsprod.harness.experiments.convex`)."""
_VARIANT_LABEL = re.compile(r"[a-z0-9_.\-]+")


def entry(name: str) -> OptimizerEntry:
    """The registry entry of ``name`` or of the base of variant ``name`` (``bamsprod@x``)."""
    return REGISTRY[base_name(name)]


def register(new: OptimizerEntry) -> None:
    """Add a user's optimizer (e.g. from :func:`larq_bamsprod.harness.compare`); refuses a
    built-in name."""
    if new.name in _BUILT_IN:
        raise ValueError(f"optimizer name {new.name!r} is a built-in optimizer's; give yours "
                         "another name")
    if not _VARIANT_LABEL.fullmatch(new.name) or "@" in new.name:
        raise ValueError(f"optimizer name {new.name!r} must be lower-case letters, digits, "
                         "'_', '-' or '.', e.g. my_sgd")
    REGISTRY[new.name] = new
    global OPTIMIZER_NAMES
    OPTIMIZER_NAMES = tuple(REGISTRY)


_BUILT_IN = frozenset(REGISTRY)


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
    params = _bamsprod_defaults() if base == "bamsprod" else dict(REGISTRY[base].defaults)
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


def describe(name: str, overrides: dict[str, Any] | None = None) -> dict:
    """:func:`hyperparameters` as ``config.json`` and ``done.json`` record them (JSON values;
    a schedule or other object as its ``repr``)."""
    return {k: (v if isinstance(v, (int, float, str, bool, type(None))) else repr(v))
            for k, v in hyperparameters(name, overrides).items()}


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


def make_optimizer(
    name: str,
    overrides: dict[str, Any] | None = None,
    schedule_shape: LearningRateSchedule | None = None,
) -> tf.keras.optimizers.legacy.Optimizer:
    """Build optimizer ``name`` with its recommended settings.

    Args:
      name: one of :data:`OPTIMIZER_NAMES` (case-insensitive), or a variant ``base@label``.
      overrides: hyperparameters replacing the entry's defaults. Defaults to `None`.
      schedule_shape: a schedule with value 1 at step 0 (e.g. cosine decay); each
        optimizer's base learning rate (Bop: ``gamma`` and its Adam's rate) is multiplied
        by it. Defaults to `None` (constant rates).
    """
    return entry(name).build(hyperparameters(name, overrides), schedule_shape)


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
        out.setdefault(opt, {})[hparam] = parse_value(raw)
        try:
            hyperparameters(opt, {hparam: out[opt][hparam]})  # now, not mid-run
        except (ValueError, TypeError) as err:
            raise type(err)(f"--hparam {item}: {err}") from None
    for opt, values in out.items():
        hyperparameters(opt, values)  # the combination too
    return out


def parse_value(raw: str):
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
