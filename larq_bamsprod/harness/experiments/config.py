"""What one comparison runs (:class:`CompareConfig`), and which of it a rerun must match.

A comparison's output folder records, in ``config.json``, every setting that changes what a
run computes (:func:`identity`): the workload's identity (a built-in's model, dataset and
sizes; a user's workload name, model and a fingerprint of its data), the run settings of
:data:`FAIRNESS_FIELDS` and, per optimizer, its resolved hyperparameters
(``registry.describe(name, overrides)``, defaults included).
Rerunning into the same ``--output`` must match them; :func:`check_resumable` refuses any
difference and lists it. What may change on a rerun, because every finished run stays valid:

* ``seeds``: new seeds are added.
* ``optimizers``: new optimizers (and variants) are added; one already recorded must keep
  its hyperparameters.
* ``epochs``: may grow only with ``schedule="constant"``, where step ``t`` does not depend
  on the total number of steps, so a finished run continued from its last checkpoint equals
  a run started with the larger budget. With ``cosine`` or ``step`` the schedule is
  stretched over the total, so earlier steps would have been different: refused.
  Without ``eval_every`` the grown runs keep the spacing between evaluations the folder's
  first comparison chose (``config.json``'s ``eval_spacing``), not the default of the new
  total, so their first part's points stay points of the whole run.
* ``data_dir``, ``deterministic``, ``verbose``: where the data is read from, TensorFlow's op
  determinism and the progress display do not change what is computed.
"""

from __future__ import annotations

import dataclasses
import numbers
from pathlib import Path
from typing import Any

from larq_bamsprod.harness.catalogue import names, registry
from larq_bamsprod.harness.catalogue.workloads import BuiltinWorkload
from larq_bamsprod.harness.files import as_json, read_json
from larq_bamsprod.harness.runner.training import ResumeError
from larq_bamsprod.harness.workload import Workload, check_positive_int

__all__ = ["CompareConfig", "ResumeError", "check_resumable", "identity"]

SCHEDULES = names.SCHEDULES
DISTRIBUTE = (None, "mirrored", "multiworker")

# Run settings that must match for a resumed comparison to stay fair, beside the workload's
# identity; optimizers and seeds may be added to an existing output folder (see the module
# docstring; epochs are checked by _epoch_difference).
FAIRNESS_FIELDS = (
    "steps_per_epoch",
    "schedule",
    "mixed_precision",
    "distribute",  # BatchNorm statistics are per replica
    "eval_every",
)

# What a config.json written before a field existed meant by its absence.
_ABSENT_MEANT = {"model": "BinaryCNN", "model_args": {}, "dataset": "fashion_mnist",
                 "batch_size": 128, "augment": False, "schedule": "cosine",
                 "mixed_precision": False, "epochs": 5}


@dataclasses.dataclass
class CompareConfig:
    """What one comparison runs: a workload, the optimizers, the seeds and the budget."""

    workload: Workload = dataclasses.field(default_factory=BuiltinWorkload)
    optimizers: list[str] = dataclasses.field(
        default_factory=lambda: list(registry.COMPARED_BY_DEFAULT)
    )
    epochs: int = 5
    seeds: list[int] = dataclasses.field(default_factory=lambda: [0])
    output: str = "runs/compare"
    steps_per_epoch: int | None = None
    schedule: str = "cosine"
    hparams: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    mixed_precision: bool = False
    distribute: str | None = None
    deterministic: bool = True
    verbose: int | None = None  # progress: 0 quiet, 1 bar, 2 lines; None = 1 on a terminal
    # Steps between evaluations on the validation set; None: about 20 per run, fewer for a
    # large validation set (training.evaluation_steps).
    eval_every: int | None = None
    # Optimizer the others are measured against; None: bop if compared, else the first.
    reference: str | None = None
    # Validation score of time-to-target (accuracy, or perplexity for a language model);
    # None: the workload's own target, else summary.default_target's symmetric rule.
    target: float | None = None

    def __post_init__(self):
        if not isinstance(self.workload, Workload):
            raise TypeError(f"workload must be a larq_bamsprod.harness.Workload, received "
                            f"{type(self.workload).__name__}")
        self.optimizers = [registry.canonical_name(o) for o in self.optimizers]
        if not self.optimizers:
            raise ValueError(
                f"optimizers is empty; choose from: {', '.join(registry.OPTIMIZER_NAMES)}"
            )
        if len(set(self.optimizers)) != len(self.optimizers):
            raise ValueError(f"optimizers names one optimizer twice ({self.optimizers}); name "
                             "each once (a variant is written base@label)")
        check_positive_int("epochs", self.epochs)
        for name in ("steps_per_epoch", "eval_every"):
            check_positive_int(name, getattr(self, name), optional=True)
        if not self.seeds:
            raise ValueError("seeds is empty; give at least one seed, e.g. --seeds 0")
        for seed in self.seeds:
            if not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or seed < 0:
                raise ValueError(f"seeds must be integers >= 0, received seed={seed!r}")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds names a seed twice ({self.seeds}); give each seed once")
        if self.schedule not in SCHEDULES:
            raise ValueError(
                f"schedule must be one of {', '.join(SCHEDULES)}, received "
                f"schedule={self.schedule!r}"
            )
        if self.distribute not in DISTRIBUTE:
            raise ValueError(
                "distribute must be one of mirrored, multiworker (or unset), received "
                f"distribute={self.distribute!r}"
            )
        _check_hparams_name_compared_optimizers(self.hparams, self.optimizers)
        for opt, values in self.hparams.items():
            registry.hyperparameters(opt, values)
        if self.reference is not None:
            self.reference = registry.canonical_name(self.reference)
            if self.reference not in self.optimizers:
                raise ValueError(
                    f"reference {self.reference!r} is not among the compared optimizers "
                    f"({', '.join(self.optimizers)}); add it to --optimizers or pick one of them"
                )
        if self.target is not None:
            _check_target(self.target, self.workload)

    @property
    def metric(self):
        """The workload's score (:class:`larq_bamsprod.harness.metrics.Metric`)."""
        return self.workload.metric

    def to_json(self) -> dict:
        """``config.json``: the identity, then the rest of the settings."""
        settings = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                    if f.name != "workload"}
        return {**identity(self), **settings}

    @property
    def reference_name(self) -> str:
        """The optimizer the others are measured against."""
        return reference_of(self.optimizers, self.reference)


def reference_of(optimizers: list[str], reference: str | None = None) -> str:
    """``reference`` if given, else Bop if ``optimizers`` has it, else their first."""
    if reference is not None:
        return reference
    return "bop" if "bop" in optimizers else optimizers[0]


def _check_target(target, workload: Workload) -> None:
    higher = workload.metric.higher_is_better
    if not isinstance(target, numbers.Real) or isinstance(target, bool):
        raise ValueError(f"target must be a number, received target={target!r}")
    if workload.metric.percent and higher and not 0 < target <= 1:
        raise ValueError(f"target must be a validation accuracy in (0, 1], received "
                         f"target={target!r}")
    if not higher and not 1 <= target < float("inf"):
        raise ValueError(f"target must be a validation perplexity >= 1 for "
                         f"{workload.describe()}, received target={target!r}")


def identity(cfg: CompareConfig) -> dict:
    """What a rerun into ``cfg.output`` (and every worker of a tuning study) must match:
    the workload's identity and the run settings of :data:`FAIRNESS_FIELDS`."""
    return {**cfg.workload.identity(), **{k: getattr(cfg, k) for k in FAIRNESS_FIELDS}}


def _check_hparams_name_compared_optimizers(hparams: dict, optimizers: list[str]) -> None:
    """An override of an optimizer that is not compared would be ignored: refuse it."""
    for opt, values in hparams.items():
        if registry.canonical_name(opt) not in optimizers:
            example = next(iter(values), "NAME")
            raise ValueError(
                f"--hparam {opt}.{example}=... is for optimizer {opt!r}, which is not in "
                f"--optimizers {','.join(optimizers)}; add {opt} to --optimizers or drop "
                "the --hparam"
            )


def resolved_hyperparameters(cfg: CompareConfig) -> dict[str, dict]:
    """Per optimizer of ``cfg``, every hyperparameter it trains with (defaults included),
    as recorded in ``config.json``."""
    return {name: registry.describe(name, cfg.hparams.get(name)) for name in cfg.optimizers}


def _same(a, b) -> bool:
    return as_json(a) == as_json(b)


def _setting_differences(previous: dict, cfg: CompareConfig) -> list[str]:
    # A field missing from an older config.json had its default value then. Nested
    # records (a user's data fingerprint) are told key by key: "data.train.sha256: ...".
    now = identity(cfg)
    return identity_differences({k: previous.get(k, _ABSENT_MEANT.get(k)) for k in now}, now)


def _epoch_difference(previous: dict, cfg: CompareConfig) -> list[str]:
    before = previous.get("epochs", _ABSENT_MEANT["epochs"])
    if before == cfg.epochs or (before < cfg.epochs and cfg.schedule == "constant"):
        return []
    why = ("fewer epochs than the finished runs" if cfg.epochs < before else
           f"schedule {cfg.schedule!r} spreads over all epochs; only --schedule constant "
           "runs can be extended")
    return [f"epochs: {before!r} -> {cfg.epochs!r} ({why})"]


def recorded_hyperparameters(out: Path, previous: dict) -> dict[str, dict]:
    """Per optimizer, the hyperparameters its runs in ``out`` trained with.

    ``config.json`` holds them under ``hyperparameters``; folders written before it did
    have them in each finished run's ``done.json``.
    """
    recorded = dict(previous.get("hyperparameters") or {})
    for done in sorted(out.glob("runs/*-seed*/done.json")):
        name = done.parent.name.rpartition("-seed")[0]
        if name not in recorded and "hyperparameters" in (read_json(done) or {}):
            recorded[name] = read_json(done)["hyperparameters"]
    return recorded


def identity_differences(before: dict, now: dict, prefix: str = "") -> list[str]:
    """``["key: old -> new", ...]`` for every key of ``now`` recorded differently in
    ``before``; nested dicts are compared key by key (``"bamsprod.learning_rate: ..."``)."""
    differences = []
    for key in now:
        if key not in before:
            continue
        old, new = before[key], now[key]
        if isinstance(old, dict) and isinstance(new, dict):
            for sub in sorted(set(old) | set(new)):
                a, b = old.get(sub, "<unset>"), new.get(sub, "<unset>")
                if isinstance(a, dict) and isinstance(b, dict):
                    differences += identity_differences({sub: a}, {sub: b}, f"{prefix}{key}.")
                elif not _same(a, b):
                    differences.append(f"{prefix}{key}.{sub}: {a!r} -> {b!r}")
        elif not _same(old, new):
            differences.append(f"{prefix}{key}: {old!r} -> {new!r}")
    return differences


def _hyperparameter_differences(out: Path, previous: dict, cfg: CompareConfig) -> list[str]:
    # An optimizer not recorded yet is new: it is added to the comparison.
    return identity_differences(recorded_hyperparameters(out, previous),
                                resolved_hyperparameters(cfg))


def check_resumable(cfg: CompareConfig, hyperparameters: bool = True) -> None:
    """Raise a ValueError if ``cfg.output`` holds a comparison with other settings.

    Lists every difference: the settings of :data:`FAIRNESS_FIELDS`, ``epochs`` (which
    may only grow, and only with the constant schedule) and, unless ``hyperparameters`` is
    False, the resolved hyperparameters of every optimizer ``cfg`` shares with the recorded
    comparison.
    """
    out = Path(cfg.output)
    previous = read_json(out / "config.json")
    if previous is None:
        return
    differences = _setting_differences(previous, cfg) + _epoch_difference(previous, cfg)
    if hyperparameters:
        differences += _hyperparameter_differences(out, previous, cfg)
    if differences:
        raise ValueError(
            f"{out} holds a comparison with different settings ({'; '.join(differences)}); "
            "its runs would not be comparable with these. Use another --output, or delete "
            "the folder to start again. Seeds and optimizers may be added; epochs only with "
            "--schedule constant."
        )
