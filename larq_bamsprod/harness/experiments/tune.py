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

Built on Optuna: ``--studies K`` independent studies per optimizer (AlgoPerf's external
tuning: a few studies of a few quasi-random trials), named ``OPTIMIZER/studyK``, in one
storage. Study k's ``--trials N`` points are the first N of a scrambled Sobol' sequence
(``scipy.stats.qmc.Sobol``, the generator of Optuna's ``QMCSampler``) seeded by a stable
hash of (``--sampler-seed``, the workload's identity, the optimizer, k): different studies,
optimizers and graphs draw different points, and the same command draws the same points
again. The study's creator draws all N at once and enqueues them with their parameters
fixed, so which worker runs a trial, or how often it is killed, does not change what it
runs (Optuna's own ``QMCSampler`` numbers its points from a counter that workers and kills
advance). No pruning: every trial gets the whole budget.

The final configuration of an optimizer is its best trial over all K studies (highest
validation score; lowest perplexity): see :data:`SELECTION`. The spread of the K studies'
best scores (the tuning variance) is reported beside it.

Exactly ``--trials`` per study, with any number of processes on one storage and across
kills: the process that creates a study enqueues all N trials at once (Optuna ``WAITING``
trials, their parameters fixed); every worker then claims WAITING trials one at a time
(``WAITING -> RUNNING`` is atomic in Optuna's storages), so no worker ever creates a trial
of its own. A running trial writes a heartbeat (a user attribute) every
``HEARTBEAT_SECONDS``; a RUNNING trial whose heartbeat is older than ``--stale-after``
seconds, or whose process is gone from this machine, is marked FAIL by the next worker
that looks, and a copy of it (same slot, same parameters) is enqueued again. Completed
trials are never rerun. The final count is N COMPLETE trials per study; FAIL rows left by
killed workers stay in the storage and in the report.

Storage: ``--storage`` takes any Optuna storage: an SQLAlchemy URL (``sqlite:///PATH``,
``postgresql://...``, ``mysql://...``) or ``journal:PATH`` (Optuna's
``JournalFileBackend``, a file several processes, or machines on a shared file system, can
use). Default: ``journal:OUTPUT/optuna.journal``. Open it with Optuna's own API::

    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend("OUTPUT/optuna.journal"))
    study = optuna.load_study(study_name="bamsprod/study1", storage=storage)
    print(study.best_params)
    for trial in study.trials:
        print(trial.number, trial.state.name, trial.value, trial.params)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shlex
from pathlib import Path
from typing import Any, Callable

from larq_bamsprod.harness import metrics
from larq_bamsprod.harness.catalogue.search_space import (
    at_edge,
    check_entry,
    decades,
    describe,
    quasi_random_points,
    space_of,
)
from larq_bamsprod.harness.experiments.config import CompareConfig, identity
from larq_bamsprod.harness.experiments.studies import (
    DEFAULT_STALE_AFTER,
    SLOT_ATTR,
    best_params,
    check_existing,
    check_storage_url,
    run_studies,
)
from larq_bamsprod.harness.files import as_json

SELECTION = ("the trial with the best validation score over all studies' trials (ties: the "
             "earlier study, then the lower trial number), run over --seeds")
"""How the final configuration of an optimizer is chosen (stated in tune.md and tune.json)."""


@dataclasses.dataclass
class TuneConfig:
    """What ``larq-bamsprod tune`` runs: a comparison plus the tuning budget."""

    compare: CompareConfig
    trials: int = 20
    studies: int = 1
    storage: str | None = None  # None: journal:OUTPUT/optuna.journal
    space: dict[str, dict[str, tuple]] = dataclasses.field(default_factory=dict)
    ablations: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    keep_edge: dict[str, str] = dataclasses.field(default_factory=dict)
    sampler_seed: int = 0
    stale_after: float = DEFAULT_STALE_AFTER
    rerun: bool = True
    compare_argv: list[str] | None = None  # the command line's compare arguments (tune.md)

    def __post_init__(self):
        if not isinstance(self.trials, int) or self.trials < 1:
            raise ValueError(f"trials must be a positive integer, received trials={self.trials!r}")
        if not isinstance(self.studies, int) or self.studies < 1:
            raise ValueError(f"studies must be a positive integer, received "
                             f"studies={self.studies!r}")
        if not self.stale_after > 0:
            raise ValueError(f"stale_after must be > 0 seconds, received {self.stale_after!r}")
        for opt, entries in self.space.items():
            for name, spec in entries.items():
                check_entry(opt, name, spec)
        for flag, named in (("--space", self.space), ("--ablation", self.ablations),
                            ("--keep-edge", self.keep_edge)):
            unknown = sorted(set(named) - set(self.compare.optimizers))
            if unknown:
                raise ValueError(f"{flag} names {', '.join(unknown)}, which --optimizers does "
                                 f"not tune ({', '.join(self.compare.optimizers)})")
        refuse_searched_hparams(self.compare.hparams, self.space_of)
        self.storage = self.storage or "journal:" + str(Path(self.compare.output)
                                                        / "optuna.journal")
        check_storage_url(self.storage)

    def check_storage(self) -> None:
        """Refuse, before any study is created, a storage whose studies of this tune were
        tuned with other settings (e.g. another --trials)."""
        settings = {study_name(opt, k): study_settings(self, opt)
                    for opt in self.compare.optimizers for k in range(1, self.studies + 1)}
        check_existing(self.storage, settings, self.compare.optimizers)

    @property
    def metric(self) -> metrics.Metric:
        """The score trials are ranked by (accuracy, or perplexity for a text corpus)."""
        return self.compare.workload.metric

    def space_of(self, optimizer: str) -> dict[str, tuple]:
        return space_of(optimizer, self.space, self.ablations)


def refuse_searched_hparams(hparams: dict[str, dict],
                            space_of: Callable[[str], dict[str, tuple]]) -> None:
    """A fixed hyperparameter (``--hparam``) that the search also sets would be overridden
    silently: refuse it, naming the fix."""
    for opt, values in hparams.items():
        searched = sorted(set(values) & set(space_of(opt)))
        if searched:
            name = searched[0]
            raise ValueError(
                f"--hparam {opt}.{name}={values[name]!r} sets a hyperparameter that tune "
                f"searches ({opt}'s space: {', '.join(space_of(opt))}); drop it, or narrow "
                f"the search with --space {opt}.{name}=log:LOW:HIGH")


def study_name(optimizer: str, k: int) -> str:
    """``"adam/study1"``: study ``k`` (from 1) of ``optimizer``."""
    return f"{optimizer}/study{k}"


def study_settings(cfg: TuneConfig, optimizer: str) -> dict:
    """What every worker of one study must agree on."""
    c = cfg.compare
    return {
        "trials": cfg.trials,
        "space": cfg.space_of(optimizer),
        "sampler": "sobol",
        "sampler_seed": cfg.sampler_seed,
        "seed": c.seeds[0],
        "hparams": c.hparams.get(optimizer, {}),
        **identity(c),
    }


def points_seed(cfg: TuneConfig, optimizer: str, k: int) -> int:
    """The seed of study ``k``'s points: a stable hash of (sampler seed, workload identity,
    optimizer, k), the same in every process and Python version."""
    key = json.dumps(as_json([cfg.sampler_seed, cfg.compare.workload.identity(), optimizer,
                              k]), sort_keys=True)
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")


def study_points(cfg: TuneConfig, optimizer: str, k: int) -> list[dict]:
    """The ``cfg.trials`` parameter points of study ``k`` of ``optimizer``."""
    return quasi_random_points(cfg.space_of(optimizer), cfg.trials,
                               points_seed(cfg, optimizer, k))


def tune_all(cfg: TuneConfig, objective_for: Callable[[str], Callable[[dict, int], float]],
             log: Callable[[str], None] = print, poll: float = 2.0) -> dict:
    """Run this worker's share of every study's trials, then wait for the others';
    ``{optimizer: [study 1, ..., study K]}`` once every study has ``cfg.trials`` COMPLETE
    trials. ``objective_for(study name)`` is the objective of that study's trials."""
    cfg.check_storage()
    plans = {}
    for n, opt in enumerate(cfg.compare.optimizers, 1):
        for k in range(1, cfg.studies + 1):
            name = study_name(opt, k)
            plans[name] = {
                "optimizer": opt, "settings": study_settings(cfg, opt),
                "points": study_points(cfg, opt, k), "space": cfg.space_of(opt),
                "objective": objective_for(name),
                "label": (f"optimizer {opt} ({n}/{len(cfg.compare.optimizers)}) "
                          f"study {k}/{cfg.studies}")}
    done = run_studies(cfg, plans, log, poll)
    out: dict[str, list] = {}
    for name, study in done.items():
        out.setdefault(plans[name]["optimizer"], []).append(study)
    return out


def best_of(studies: list) -> tuple[dict, float, int, int]:
    """Parameters, value, trial number and study (from 1) of the best trial of ``studies``
    (:data:`SELECTION`)."""
    found = [(*best_params(study), k) for k, study in enumerate(studies, 1)]
    sign = -1 if studies[0].direction.name == "MINIMIZE" else 1
    return max(found, key=lambda f: (sign * f[1], -f[3], -f[2]))


def tune_report(cfg: TuneConfig, studies: dict) -> tuple[str, dict]:
    """Markdown and JSON: the search space, every study and trial, the chosen configuration
    and the spread of the studies' best scores."""
    metric = cfg.metric
    score = _score_text(metric)
    data: dict[str, Any] = {
        "trials_per_optimizer": cfg.trials * cfg.studies, "trials_per_study": cfg.trials,
        "studies_per_optimizer": cfg.studies, "sampler": "scrambled Sobol' (scipy.stats.qmc)",
        "sampler_seed": cfg.sampler_seed, "selection": SELECTION, "storage": cfg.storage,
        "optimizers": {opt: _optimizer_report(cfg, opt, runs) for opt, runs in studies.items()},
    }
    lines = _header(cfg) + _space_table(cfg, studies)
    column = "validation accuracy" if metric.percent else f"validation {metric.name}"
    lines += ["", "## Chosen configuration", "", f"Selection: {SELECTION}.", "",
              f"| optimizer | study | trial | {column} | parameters |", "|---|---|---|---|---|"]
    for opt, info in data["optimizers"].items():
        best = info["best"]
        lines.append(f"| {opt} | {best['study']} | {best['number']} | {score(best['value'])} "
                     f"| {_params_text(best['params'])} |")
    lines += ["", "## Spread across studies (tuning variance)", "",
              f"| optimizer | best {column} of each study | spread (max - min) |",
              "|---|---|---|"]
    for opt, info in data["optimizers"].items():
        values = ", ".join(score(v) for v in info["spread"]["best_per_study"])
        lines.append(f"| {opt} | {values} | {score(info['spread']['range'])} |")
    lines += _edge_lines(data)
    if cfg.compare_argv is not None:
        data["compare_command"] = compare_command(cfg, data)
        lines += ["", "## The final comparison as a command", "",
                  "The finals are this `compare` (the chosen values in full digits). Into "
                  "the same `--output` it finds them done; with more `--seeds` it trains only "
                  "the new seeds; into a new `--output` it trains them again.", "",
                  "```bash", data["compare_command"], "```"]
    lines += _trials_table(data, column, score)
    return "\n".join(lines) + "\n", data


def _edge_lines(data: dict) -> list[str]:
    """The edge flags: each chosen value in the outer 10% (log) of its range, and the
    reason given to keep it (``--keep-edge``), if any."""
    lines = []
    for opt, info in data["optimizers"].items():
        kept = info["edge_kept_because"]
        note = f" Kept (--keep-edge): {kept}" if kept else " Unresolved (no --keep-edge)."
        lines += [f"* {opt}: {e}.{note}" for e in info["edge"]]
    if not lines:
        return []
    return ["", "**At the edge of the search space** (the best value may lie outside it):",
            ""] + lines


def _optimizer_report(cfg: TuneConfig, opt: str, runs: list) -> dict:
    params, value, number, k = best_of(runs)
    best_values = [best_params(study)[1] for study in runs]
    return {
        "best": {"study": k, "number": number, "value": value, "params": params},
        "selection": SELECTION,
        "spread": {"best_per_study": best_values,
                   "range": max(best_values) - min(best_values)},
        "edge": at_edge(cfg.space_of(opt), params, opt),
        "edge_kept_because": cfg.keep_edge.get(opt),
        "space": {name: list(spec) for name, spec in cfg.space_of(opt).items()},
        "studies": [{"name": study.study_name, "points_seed": points_seed(cfg, opt, k),
                     "best": dict(zip(("params", "value", "number"), best_params(study))),
                     "trials": _trials(study, k)}
                    for k, study in enumerate(runs, 1)],
        "trials": [t for k, study in enumerate(runs, 1) for t in _trials(study, k)],
    }


def _trials(study, k: int) -> list[dict]:
    return [{"study": k, "number": t.number, "state": t.state.name, "value": t.value,
             "params": t.params, "slot": t.user_attrs.get(SLOT_ATTR),
             "retry_of": t.user_attrs.get("retry_of"),
             "seconds": (t.duration.total_seconds() if t.duration else None)}
            for t in study.get_trials(deepcopy=False)]


def _score_text(metric: metrics.Metric) -> Callable[[float], str]:
    if metric.percent:
        return lambda value: f"{100 * value:.2f}%"
    return lambda value: f"{value:.2f}"


def _header(cfg: TuneConfig) -> list[str]:
    metric = cfg.metric
    if metric.percent:
        scored = ("final validation accuracy (held out from the training split; test is "
                  "not read)")
    else:
        scored = (f"final validation {metric.name} (the corpus' own validation split; test "
                  "is not read; lower is better, studies minimize it)")
    return [
        f"# Tuning: {cfg.studies} {_plural(cfg.studies, 'study', 'studies')} of "
        f"{cfg.trials} {_plural(cfg.trials, 'trial', 'trials')} per optimizer",
        "",
        f"Storage `{cfg.storage}`; study names `OPTIMIZER/studyK`. Each trial trains "
        f"`{cfg.compare.workload.describe()}` for the comparison's step budget "
        f"from seed {cfg.compare.seeds[0]}'s initial weights and is scored by its {scored}. "
        f"A study's {cfg.trials} points are the first {cfg.trials} of a scrambled Sobol' "
        f"sequence seeded by a hash of (sampler seed {cfg.sampler_seed}, the workload, the "
        "optimizer, the study); no pruning.",
    ]


def _plural(n: int, one: str, many: str) -> str:
    return one if n == 1 else many


def _space_table(cfg: TuneConfig, studies: dict) -> list[str]:
    lines = ["", "## Search space", "", "| optimizer | hyperparameter | distribution | "
             "width (decades) |", "|---|---|---|---|"]
    for opt in studies:
        for name, spec in cfg.space_of(opt).items():
            width = decades(spec)
            lines.append(f"| {opt} | {name} | {describe(spec)} | "
                         f"{'-' if width is None else f'{width:g}'} |")
    return lines


def _trials_table(data: dict, column: str, score: Callable[[float], str]) -> list[str]:
    lines = ["", "## Every trial", "", f"| optimizer | study | trial | slot | state | {column} "
             "| seconds | parameters |", "|---|---|---|---|---|---|---|---|"]
    for opt, info in data["optimizers"].items():
        for t in info["trials"]:
            value = "-" if t["value"] is None else score(t["value"])
            seconds = "-" if t["seconds"] is None else f"{t['seconds']:.1f}"
            state = t["state"] + (f" (retry of {t['retry_of']})" if t["retry_of"] is not None
                                  else "")
            lines.append(f"| {opt} | {t['study']} | {t['number']} | {t['slot']} | {state} | "
                         f"{value} | {seconds} | {_params_text(t['params'])} |")
    return lines


def _params_text(params: dict) -> str:
    """Every value in full (``repr``) digits, so that it can be copied into ``--hparam``."""
    return ", ".join(f"{k}={v!r}" for k, v in params.items()) or "-"


def compare_command(cfg: TuneConfig, data: dict) -> str:
    """The ``larq-bamsprod compare`` command that trains the finals: the tune command's
    compare arguments and one ``--hparam`` per chosen value."""
    chosen = [f"{opt}.{name}={value!r}" for opt, info in data["optimizers"].items()
              for name, value in info["best"]["params"].items()]
    argv = ["larq-bamsprod", "compare", "--optimizers", ",".join(cfg.compare.optimizers)]
    argv += cfg.compare_argv
    argv += [part for item in chosen for part in ("--hparam", item)]
    return shlex.join(argv)


def training_objective(cfg: TuneConfig, name: str, data_, strategy, log):
    """Score of one trial of study ``name`` (``OPTIMIZER/studyK``): final validation
    accuracy (perplexity, for a text corpus) after the comparison's step budget."""
    from larq_bamsprod.harness.runner.progress import Progress
    from larq_bamsprod.harness.runner.training import run_one

    optimizer = name.rsplit("/", 1)[0]
    folder = name.replace("/", "-")
    steps = cfg.compare.epochs * data_.steps_per_epoch

    def objective(params: dict, number: int) -> float:
        import tensorflow as tf

        trial_cfg = dataclasses.replace(
            cfg.compare,
            optimizers=[optimizer],
            seeds=[cfg.compare.seeds[0]],
            hparams={optimizer: {**cfg.compare.hparams.get(optimizer, {}), **params}},
            output=str(Path(cfg.compare.output) / "trials" / f"{folder}-trial{number}"),
        )
        progress = Progress(1, steps, log, cfg.compare.verbose,
                            tag=f"tune {name} trial {number}")
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
    studies = tune_all(cfg, lambda name: training_objective(cfg, name, data_, strategy, log),
                       log)
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
