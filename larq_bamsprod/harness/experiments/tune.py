"""Equal-budget tuning: the same number of trials per optimizer, then the comparison.

``larq-bamsprod tune`` gives every optimizer exactly ``--trials`` trials over the search
space of each optimizer's registry entry (the same for every graph; ``--space``
replaces an entry).
A trial trains the graph of the comparison for the comparison's step budget from the
initial weights of the first of ``--seeds`` and scores the final *validation* accuracy
(the held-out part of the training split; test is never read while tuning). Then the
best configuration of each optimizer is run over all ``--seeds`` by the comparison
(:mod:`larq_bamsprod.harness.experiments.compare`), whose table reports test accuracy.

On a text corpus (``--dataset ptb``) the score is the final validation *perplexity* (the
corpus' own validation split) and every study has ``direction="minimize"``: the raw
perplexity is minimized, the chosen trial is the one with the lowest, and a trial whose
score is NaN (diverged) counts as ``inf`` rather than as 0.

Built on Optuna: one study per optimizer (named after it) in one storage. The sampler is
TPE, seeded per trial from ``(--sampler-seed, trial number)`` so that a resumed tune draws
what an uninterrupted one would have (and trial k of every optimizer starts from the same
random numbers: while TPE is still sampling at random, their first learning rates are the
same point of their ranges); no pruning, so every trial gets the whole budget.

Exactly ``--trials`` per optimizer, with any number of processes on one storage and across
kills: the process that creates a study enqueues all N trials at once (Optuna ``WAITING``
trials, parameters not yet drawn); every worker then claims WAITING trials one at a time
(``WAITING -> RUNNING`` is atomic in Optuna's storages), so no worker ever creates a trial
of its own. A running trial writes a heartbeat (a user attribute) every
``HEARTBEAT_SECONDS``; a RUNNING trial whose heartbeat is older than ``--stale-after``
seconds, or whose process is gone from this machine, is marked FAIL by the next worker
that looks, and a copy of it (same slot, same parameters if it had drawn them) is enqueued
again. Completed trials are never rerun. The final count is N COMPLETE trials per study;
FAIL rows left by killed workers stay in the storage and in the report.

Storage: ``--storage`` takes any Optuna storage: an SQLAlchemy URL (``sqlite:///PATH``,
``postgresql://...``, ``mysql://...``) or ``journal:PATH`` (Optuna's
``JournalFileBackend``, a file several processes, or machines on a shared file system, can
use). Default: ``journal:OUTPUT/optuna.journal``. Open it with Optuna's own API::

    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend("OUTPUT/optuna.journal"))
    study = optuna.load_study(study_name="bamsprod", storage=storage)
    print(study.best_params)
    for trial in study.trials:
        print(trial.number, trial.state.name, trial.value, trial.params)
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable

from larq_bamsprod.harness import metrics
from larq_bamsprod.harness.catalogue.search_space import (
    at_edge,
    check_entry,
    space_of,
)
from larq_bamsprod.harness.experiments.config import CompareConfig, identity
from larq_bamsprod.harness.experiments.studies import (
    DEFAULT_STALE_AFTER,
    SLOT_ATTR,
    best_params,
    check_storage_url,
    run_studies,
)


@dataclasses.dataclass
class TuneConfig:
    """What ``larq-bamsprod tune`` runs: a comparison plus the tuning budget."""

    compare: CompareConfig
    trials: int = 20
    storage: str | None = None  # None: journal:OUTPUT/optuna.journal
    space: dict[str, dict[str, tuple]] = dataclasses.field(default_factory=dict)
    sampler_seed: int = 0
    stale_after: float = DEFAULT_STALE_AFTER
    rerun: bool = True

    def __post_init__(self):
        if not isinstance(self.trials, int) or self.trials < 1:
            raise ValueError(f"trials must be a positive integer, received trials={self.trials!r}")
        if not self.stale_after > 0:
            raise ValueError(f"stale_after must be > 0 seconds, received {self.stale_after!r}")
        for opt, entries in self.space.items():
            for name, spec in entries.items():
                check_entry(opt, name, spec)
        self.storage = self.storage or "journal:" + str(Path(self.compare.output)
                                                        / "optuna.journal")
        check_storage_url(self.storage)

    @property
    def metric(self) -> metrics.Metric:
        """The score trials are ranked by (accuracy, or perplexity for a text corpus)."""
        return self.compare.workload.metric

    def space_of(self, optimizer: str) -> dict[str, tuple]:
        return space_of(optimizer, self.space)


def study_settings(cfg: TuneConfig, optimizer: str) -> dict:
    """What every worker of one study must agree on."""
    c = cfg.compare
    return {
        "trials": cfg.trials,
        "space": cfg.space_of(optimizer),
        "seed": c.seeds[0],
        "hparams": c.hparams.get(optimizer, {}),
        **identity(c),
    }


def tune_all(cfg: TuneConfig, objective_for: Callable[[str], Callable[[dict, int], float]],
             log: Callable[[str], None] = print, poll: float = 2.0) -> dict:
    """Run this worker's share of every optimizer's trials, then wait for the others';
    ``{optimizer: study}`` once every study has ``cfg.trials`` COMPLETE trials."""
    return run_studies(cfg, objective_for, lambda opt: study_settings(cfg, opt), log, poll)


def tune_report(cfg: TuneConfig, studies: dict) -> tuple[str, dict]:
    """Markdown and JSON: the search space, every trial, the chosen configuration."""
    metric = cfg.metric
    if metric.percent:
        scored = ("final validation accuracy (held out from the training split; test is "
                  "not read)")
        column = "validation accuracy"
    else:
        scored, column = (f"final validation {metric.name} (the corpus' own validation "
                          "split; test is not read; lower is better, studies minimize it)",
                          f"validation {metric.name}")

    def score(value: float) -> str:
        return f"{100 * value:.2f}%" if metric.percent else f"{value:.2f}"

    lines = [
        f"# Tuning: {cfg.trials} trials per optimizer",
        "",
        f"Storage `{cfg.storage}`; study name = optimizer name. Each trial trains "
        f"`{cfg.compare.workload.describe()}` for the comparison's step budget "
        f"from seed {cfg.compare.seeds[0]}'s initial weights and is scored by its {scored}. "
        f"TPE sampler seeded per trial from ({cfg.sampler_seed}, trial number); no pruning.",
        "",
        "## Search space",
        "",
        "| optimizer | hyperparameter | distribution |",
        "|---|---|---|",
    ]
    data: dict[str, Any] = {"trials_per_optimizer": cfg.trials, "storage": cfg.storage,
                            "optimizers": {}}
    for opt in studies:
        for name, spec in cfg.space_of(opt).items():
            dist = (f"log-uniform [{spec[1]:g}, {spec[2]:g}]" if spec[0] == "log"
                    else "one of " + ", ".join(repr(v) for v in spec[1]))
            lines.append(f"| {opt} | {name} | {dist} |")
    lines += ["", "## Chosen configuration", "", f"| optimizer | trial | {column} "
              "| parameters |", "|---|---|---|---|"]
    edges = []
    for opt, study in studies.items():
        params, value, number = best_params(study)
        lines.append(f"| {opt} | {number} | {score(value)} | {_params_text(params)} |")
        edge = [e.replace("OPT.", f"{opt}.") for e in at_edge(cfg.space_of(opt), params)]
        edges += [f"{opt}: {e}" for e in edge]
        data["optimizers"][opt] = {
            "best": {"number": number, "value": value, "params": params},
            "at_edge": edge,
            "space": {k: list(v) for k, v in cfg.space_of(opt).items()},
            "trials": [
                {"number": t.number, "state": t.state.name, "value": t.value,
                 "params": t.params, "slot": t.user_attrs.get(SLOT_ATTR),
                 "retry_of": t.user_attrs.get("retry_of"),
                 "seconds": (t.duration.total_seconds() if t.duration else None)}
                for t in study.get_trials(deepcopy=False)],
        }
    if edges:
        lines += ["", "**At the edge of the search space** (the best value may lie outside "
                  "it):", ""] + [f"* {e}" for e in edges]
    lines += ["", "## Every trial", "", f"| optimizer | trial | slot | state | {column} "
              "| seconds | parameters |", "|---|---|---|---|---|---|---|"]
    for opt, info in data["optimizers"].items():
        for t in info["trials"]:
            value = "-" if t["value"] is None else score(t["value"])
            seconds = "-" if t["seconds"] is None else f"{t['seconds']:.1f}"
            state = t["state"] + (f" (retry of {t['retry_of']})" if t["retry_of"] is not None
                                  else "")
            lines.append(f"| {opt} | {t['number']} | {t['slot']} | {state} | {value} | "
                         f"{seconds} | {_params_text(t['params'])} |")
    return "\n".join(lines) + "\n", data


def _params_text(params: dict) -> str:
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v!r}"
                     for k, v in params.items()) or "-"


def training_objective(cfg: TuneConfig, optimizer: str, data_, strategy, log):
    """Score of one trial: final validation accuracy (perplexity, for a text corpus) after
    the comparison's step budget."""
    from larq_bamsprod.harness.runner.progress import Progress
    from larq_bamsprod.harness.runner.training import run_one

    steps = cfg.compare.epochs * data_.steps_per_epoch

    def objective(params: dict, number: int) -> float:
        import tensorflow as tf

        trial_cfg = dataclasses.replace(
            cfg.compare,
            optimizers=[optimizer],
            seeds=[cfg.compare.seeds[0]],
            hparams={optimizer: {**cfg.compare.hparams.get(optimizer, {}), **params}},
            output=str(Path(cfg.compare.output) / "trials" / f"{optimizer}-trial{number}"),
        )
        progress = Progress(1, steps, log, cfg.compare.verbose,
                            tag=f"tune {optimizer} trial {number}")
        try:
            result = run_one(trial_cfg.workload, trial_cfg, optimizer, trial_cfg.seeds[0],
                             data_, strategy, Path(trial_cfg.output), log=log,
                             progress=progress, evaluate_test=False)
        finally:
            tf.keras.backend.clear_session()
        return result["final"][cfg.metric.val_key]

    return objective


def run_tune(cfg: TuneConfig, log: Callable[[str], None] = print) -> dict:
    """Tune every optimizer with the same budget, report, then compare the best over seeds."""
    import tensorflow as tf

    from larq_bamsprod.harness.experiments import compare
    from larq_bamsprod.harness.files import write_json_atomic, write_text_atomic
    from larq_bamsprod.harness.runner.distribute import make_strategy, shard

    c = cfg.compare
    if c.deterministic:
        tf.config.experimental.enable_op_determinism()
    strategy = make_strategy(c.distribute)
    data_ = shard(c.workload.load(c.steps_per_epoch))
    studies = tune_all(cfg, lambda opt: training_objective(cfg, opt, data_, strategy, log), log)
    text, data = tune_report(cfg, studies)
    out = Path(c.output)
    write_text_atomic(out / "tune.md", text)
    write_json_atomic(out / "tune.json", data)
    log(f"\n{text}\nwritten to {out}/tune.md")
    if not cfg.rerun:
        return {"tune": data}
    best = {opt: {**c.hparams.get(opt, {}), **info["best"]["params"]}
            for opt, info in data["optimizers"].items()}
    final = dataclasses.replace(c, hparams=best)
    summary = compare.run_comparison(final, log)
    return {"tune": data, "compare": summary}
