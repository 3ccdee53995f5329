"""Equal-budget tuning: the same number of trials per optimizer, then the comparison.

``larq-bamsprod tune`` gives every optimizer exactly ``--trials`` trials over the search
space of :data:`SEARCH_SPACES` (one table for every graph; ``--space`` replaces an entry).
A trial trains the graph of the comparison for the comparison's step budget from the
initial weights of the first of ``--seeds`` and scores the final *validation* accuracy
(the held-out part of the training split; test is never read while tuning). Then the
best configuration of each optimizer is run over all ``--seeds`` by the comparison
(:mod:`larq_bamsprod.harness.compare`), whose table reports test accuracy.

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
import math
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any, Callable

from larq_bamsprod.harness import registry, tasks
from larq_bamsprod.harness.config import CompareConfig

HEARTBEAT_SECONDS = 10.0
DEFAULT_STALE_AFTER = 120.0

SEARCH_SPACES: dict[str, dict[str, tuple]] = {
    # Every learning rate is log-uniform over at least three decades around the optimizer's
    # recommended value (registry.DEFAULT_HPARAMS); the same table for every graph.
    # bamsprod: four decades centred on its default 1e-2 (as adam's are on 1e-3). The first
    # BinaryCNN study searched [1e-4, 1e-1] and put its best trial at 0.081, at the edge;
    # with lr_decay="sqrt" the rate at step t is learning_rate / sqrt(t), so a budget of
    # ~1,700 steps wants a learning_rate ~40x above an undecayed one's.
    "bamsprod": {"learning_rate": ("log", 1e-4, 1.0), "lr_decay": ("choice", ("sqrt", None))},
    "bop": {"fp_learning_rate": ("log", 1e-4, 1e-1), "gamma": ("log", 1e-6, 1e-2),
            "threshold": ("log", 1e-9, 1e-5)},
    # adam, amsgrad: five decades, up to 1. On BinaryCNN both first chose a rate in the top
    # 10% of [1e-5, 1e-1] (0.0738, 0.0937): latent binary weights are clipped to [-1, 1],
    # so large Adam rates are not absurd here. By the rule applied to bamsprod the range was
    # widened and both studies re-run (docs/results/tuned/binary_cnn, superseded-*).
    "adam": {"learning_rate": ("log", 1e-5, 1.0)},
    "amsgrad": {"learning_rate": ("log", 1e-5, 1.0)},
    "adabound": {"learning_rate": ("log", 1e-5, 1e-1)},
    "amsbound": {"learning_rate": ("log", 1e-5, 1e-1)},
    "sgdm": {"learning_rate": ("log", 1e-4, 1.0)},
    "sgd": {"learning_rate": ("log", 1e-4, 1.0)},
}
"""Search space per optimizer: ``name -> ("log", low, high)`` (log-uniform) or
``name -> ("choice", values)``. Bop's ``fp_learning_rate`` is the rate of its Adam for the
real-valued variables. A variant ``opt@label`` uses ``opt``'s space."""

STORAGE_SCHEMES = ("sqlite", "postgresql", "mysql", "oracle", "mssql")


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
    def metric(self) -> tasks.Metric:
        """The score trials are ranked by (accuracy, or perplexity for a text corpus)."""
        return tasks.metric_of(self.compare.dataset)

    def space_of(self, optimizer: str) -> dict[str, tuple]:
        space = dict(SEARCH_SPACES[registry.base_name(optimizer)])
        space.update(self.space.get(optimizer, {}))
        return space


EDGE_FRACTION = 0.1
"""A chosen log-uniform value within this fraction of its range's width (in log scale) of
either end is "at the edge": the optimum may lie outside the range."""


def at_edge(space: dict[str, tuple], params: dict) -> list[str]:
    """Where ``params`` sit at the edge of ``space``: one sentence per such hyperparameter,
    naming the value, the range and the ``--space`` that widens it by a decade on that side.
    """
    found = []
    for name, spec in space.items():
        if spec[0] != "log" or not isinstance(params.get(name), (int, float)):
            continue
        low, high, value = spec[1], spec[2], params[name]
        position = (math.log(value) - math.log(low)) / (math.log(high) - math.log(low))
        if EDGE_FRACTION <= position <= 1 - EDGE_FRACTION:
            continue
        top = position > 0.5
        wider = (low, high * 10) if top else (low / 10, high)
        found.append(f"{name}={value:.3g} is in the {'top' if top else 'bottom'} "
                     f"{EDGE_FRACTION:.0%} of [{low:g}, {high:g}] (log scale); widen it "
                     f"(e.g. --space OPT.{name}=log:{wider[0]:g}:{wider[1]:g}) and tune again "
                     "into a new --output")
    return found


def check_entry(optimizer: str, name: str, spec: tuple) -> None:
    """Raise a ValueError naming what is wrong with one search-space entry."""
    valid = registry.hyperparameters(optimizer)  # also checks the optimizer's name
    where = f"search space entry {optimizer}.{name}"
    if name not in valid:
        raise ValueError(f"{where}: {optimizer!r} has no hyperparameter {name!r}; valid: "
                         f"{', '.join(sorted(valid))}")
    kind = spec[0] if spec else None
    if kind == "log":
        low, high = spec[1], spec[2]
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in (low, high)):
            raise ValueError(f"{where}: bounds must be numbers, received {low!r}, {high!r}")
        if not 0 < low < high:
            raise ValueError(f"{where}: log-uniform bounds need 0 < low < high, received "
                             f"low={low!r}, high={high!r}")
    elif kind == "choice":
        if len(spec) != 2 or len(spec[1]) < 1:
            raise ValueError(f"{where}: a choice needs at least one value")
    else:
        raise ValueError(f"{where}: kind must be 'log' or 'choice', received {kind!r}")


def parse_space(items: list[str]) -> dict[str, dict[str, tuple]]:
    """``["bop.gamma=log:1e-6:1e-3", "bamsprod.lr_decay=choice:sqrt,none"]`` -> entries."""
    out: dict[str, dict[str, tuple]] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        opt, dot, name = key.rpartition(".")
        kind, colon, rest = raw.partition(":")
        if not sep or not dot or not name or not colon:
            raise ValueError(f"--space {item!r} must look like OPTIMIZER.NAME=log:LOW:HIGH or "
                             "OPTIMIZER.NAME=choice:A,B (e.g. bop.gamma=log:1e-6:1e-3)")
        opt = registry.canonical_name(opt)
        if kind == "log":
            bounds = rest.split(":")
            try:
                low, high = (float(b) for b in bounds)
            except ValueError:
                raise ValueError(f"--space {item!r}: log needs two numbers, LOW:HIGH") from None
            spec: tuple = ("log", low, high)
        elif kind == "choice":
            spec = ("choice", tuple(registry._parse_value(v) for v in rest.split(",")))
        else:
            raise ValueError(f"--space {item!r}: kind must be log or choice, received {kind!r}")
        check_entry(opt, name, spec)
        out.setdefault(opt, {})[name] = spec
    return out


def check_storage_url(url: str) -> None:
    """Refuse anything that is not an SQLAlchemy URL of a known database or journal:PATH."""
    if url.startswith("journal:"):
        if not url[len("journal:"):]:
            raise ValueError("--storage journal:PATH needs a file path, e.g. "
                             "journal:runs/tune/optuna.journal")
        return
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.split("+")[0] not in STORAGE_SCHEMES or not rest:
        raise ValueError(
            f"--storage must be an SQLAlchemy URL (sqlite:///PATH, postgresql://USER@HOST/DB, "
            f"mysql://USER@HOST/DB) or journal:PATH, received {url!r}")


def open_storage(url: str):
    """The Optuna storage of ``url`` (created if it is a new file); ValueError if it fails."""
    import optuna

    try:
        if url.startswith("journal:"):
            from optuna.storages.journal import JournalFileBackend

            path = Path(url[len("journal:"):])
            path.parent.mkdir(parents=True, exist_ok=True)
            return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
        if url.startswith("sqlite:///"):
            Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        for attempt in range(10):
            try:
                return optuna.storages.RDBStorage(url)
            except Exception as error:
                # Two processes creating the same new database race on its schema table;
                # the loser finds it made a moment later.
                racing = any(word in str(error) for word in ("UNIQUE constraint", "locked",
                                                             "already exists"))
                if not racing or attempt == 9:
                    raise
                time.sleep(0.2 + 0.3 * attempt)
    except Exception as error:  # driver missing, server down, bad path: one line each
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise ValueError(f"--storage {url!r} cannot be opened: {type(error).__name__}: "
                         f"{first}") from error


# --- Studies, claims and stale trials ------------------------------------------------------

SETTINGS_ATTR = "larq_bamsprod_settings"
SLOT_ATTR = "larq_bamsprod_slot"


def _settings(cfg: TuneConfig, optimizer: str) -> dict:
    """What every worker of one study must agree on."""
    from larq_bamsprod.harness.config import FAIRNESS_FIELDS

    c = cfg.compare
    return {
        "trials": cfg.trials,
        "space": cfg.space_of(optimizer),
        "seed": c.seeds[0],
        "hparams": c.hparams.get(optimizer, {}),
        **{k: getattr(c, k) for k in FAIRNESS_FIELDS},
    }


def _jsonish(value):
    import json

    return json.loads(json.dumps(value, default=str))


def claim_study(storage, optimizer: str, cfg: TuneConfig, log: Callable[[str], None] = print):
    """Create (and fill with N WAITING trials) or load the study of ``optimizer``."""
    import optuna

    settings = _jsonish(_settings(cfg, optimizer))
    for attempt in range(20):
        try:
            study = optuna.create_study(study_name=optimizer, storage=storage,
                                        direction=cfg.metric.direction)
        except optuna.exceptions.DuplicatedStudyError:
            study = optuna.load_study(study_name=optimizer, storage=storage)
            break
        except Exception:  # a concurrent create can fail in one process: look again
            if attempt == 19:
                raise
            time.sleep(0.5)
            continue
        study.set_user_attr(SETTINGS_ATTR, settings)
        for slot in range(cfg.trials):
            study.enqueue_trial({}, user_attrs={SLOT_ATTR: slot})
        study.set_user_attr("larq_bamsprod_enqueued", cfg.trials)
        log(f"tune {optimizer}: study created with {cfg.trials} trials")
        return study
    # Loaded: wait for the creator to finish enqueueing (it may be a moment behind).
    deadline = time.monotonic() + 30
    while "larq_bamsprod_enqueued" not in study.user_attrs and time.monotonic() < deadline:
        time.sleep(0.5)
    previous = study.user_attrs.get(SETTINGS_ATTR)
    if previous is not None and previous != settings:
        changed = [k for k in settings if previous.get(k) != settings[k]]
        raise ValueError(
            f"study {optimizer!r} in {cfg.storage} was tuned with other settings "
            f"({', '.join(f'{k}: {previous.get(k)!r} -> {settings[k]!r}' for k in changed)}); "
            "use another --storage (or --output), or delete the study")
    if "larq_bamsprod_enqueued" not in study.user_attrs:
        # Its creator was killed while enqueueing: add the missing slots.
        have = {t.user_attrs.get(SLOT_ATTR) for t in study.get_trials(deepcopy=False)}
        for slot in range(cfg.trials):
            if slot not in have:
                study.enqueue_trial({}, user_attrs={SLOT_ATTR: slot})
        study.set_user_attr("larq_bamsprod_enqueued", cfg.trials)
    return study


def _alive_here(attrs: dict) -> bool | None:
    """Whether the trial's process still runs, if it ran on this machine (else None)."""
    if attrs.get("host") != socket.gethostname() or "pid" not in attrs:
        return None
    try:
        os.kill(int(attrs["pid"]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def retry_stale(study, storage, stale_after: float, log: Callable[[str], None] = print) -> int:
    """FAIL every RUNNING trial whose worker is gone; enqueue a copy of it. Returns how many."""
    import optuna
    from optuna.trial import TrialState

    retried = 0
    now = time.time()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        attrs = trial.user_attrs
        alive = _alive_here(attrs)
        beat = attrs.get("heartbeat")
        if beat is None and trial.datetime_start is not None:
            beat = trial.datetime_start.timestamp()
        stale = alive is False or (alive is None and beat is not None
                                   and now - beat > stale_after)
        if not stale:
            continue
        trial_id = storage.get_trial_id_from_study_id_trial_number(
            storage.get_study_id_from_name(study.study_name), trial.number)
        try:
            if not storage.set_trial_state_values(trial_id, state=TrialState.FAIL):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another worker failed it first and enqueued the retry
        study.enqueue_trial(dict(trial.params), user_attrs={
            SLOT_ATTR: attrs.get(SLOT_ATTR), "retry_of": trial.number})
        log(f"tune {study.study_name}: trial {trial.number} was left RUNNING by a worker that "
            "is gone; enqueued again")
        retried += 1
    return retried


def claim_waiting(study, storage):
    """Atomically move one WAITING trial to RUNNING; its number, or None if there is none."""
    import optuna
    from optuna.trial import TrialState

    study_id = storage.get_study_id_from_name(study.study_name)
    for trial in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        try:
            if storage.set_trial_state_values(trial_id, state=TrialState.RUNNING):
                return trial.number
        except optuna.exceptions.UpdateFinishedTrialError:
            continue
    return None


class _Heartbeat:
    """Writes the time into the trial's user attributes every ``HEARTBEAT_SECONDS``."""

    def __init__(self, storage, trial_id: int, interval: float = HEARTBEAT_SECONDS):
        self.storage, self.trial_id, self.interval = storage, trial_id, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.wait(self.interval):
            try:
                self.storage.set_trial_user_attr(self.trial_id, "heartbeat", time.time())
            except Exception:  # the trial finished meanwhile, or the storage hiccupped
                pass

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def suggest(trial, space: dict[str, tuple]) -> dict[str, Any]:
    params = {}
    for name, spec in space.items():
        if spec[0] == "log":
            params[name] = trial.suggest_float(name, spec[1], spec[2], log=True)
        else:
            params[name] = trial.suggest_categorical(name, list(spec[1]))
    return params


def run_trials(storage, study, space: dict[str, tuple], objective: Callable[[dict, int], float],
               cfg: TuneConfig, log: Callable[[str], None] = print) -> int:
    """Claim and run WAITING trials of ``study`` until none is left; how many ran here."""
    import optuna

    ran = 0
    while True:
        retry_stale(study, storage, cfg.stale_after, log)
        number = claim_waiting(study, storage)
        if number is None:
            return ran
        study_id = storage.get_study_id_from_name(study.study_name)
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, number)
        storage.set_trial_user_attr(trial_id, "host", socket.gethostname())
        storage.set_trial_user_attr(trial_id, "pid", os.getpid())
        storage.set_trial_user_attr(trial_id, "heartbeat", time.time())
        sampler = optuna.samplers.TPESampler(
            seed=cfg.sampler_seed * 1_000_003 + number,
            n_startup_trials=max(1, min(10, cfg.trials // 2)))
        seeded = optuna.load_study(study_name=study.study_name, storage=storage,
                                   sampler=sampler)
        trial = optuna.trial.Trial(seeded, trial_id)
        with _Heartbeat(storage, trial_id):
            params = suggest(trial, space)
            try:
                value = float(objective(params, number))
            except Exception:
                seeded.tell(trial, state=optuna.trial.TrialState.FAIL)
                raise
        if math.isnan(value):  # diverged: the worst score
            value = 0.0 if cfg.metric.higher_is_better else math.inf
        seeded.tell(trial, value)
        ran += 1
        log(f"tune {study.study_name}: trial {number} {params} -> {value:.4f}")


def complete_trials(study) -> list:
    from optuna.trial import TrialState

    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))


def tune_all(cfg: TuneConfig, objective_for: Callable[[str], Callable[[dict, int], float]],
             log: Callable[[str], None] = print, poll: float = 2.0) -> dict:
    """Run this worker's share of every optimizer's trials, then wait for the others'.

    Returns ``{optimizer: study}`` once every study has ``cfg.trials`` COMPLETE trials.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(cfg.storage)
    studies = {opt: claim_study(storage, opt, cfg, log) for opt in cfg.compare.optimizers}
    waiting_said = False
    while True:
        for opt, study in studies.items():
            run_trials(storage, study, cfg.space_of(opt), objective_for(opt), cfg, log)
        counts = {opt: len(complete_trials(s)) for opt, s in studies.items()}
        if all(n >= cfg.trials for n in counts.values()):
            return studies
        if not waiting_said:
            log(f"tune: waiting for trials running elsewhere ({counts} of {cfg.trials} done)")
            waiting_said = True
        time.sleep(poll)


def best_params(study) -> tuple[dict, float, int]:
    """Parameters, value and number of the best COMPLETE trial (the first of equal ones):
    the highest value, or the lowest if the study minimizes."""
    from optuna.study import StudyDirection

    if study.direction == StudyDirection.MINIMIZE:
        best = min(complete_trials(study), key=lambda t: (t.value, t.number))
    else:
        best = max(complete_trials(study), key=lambda t: (t.value, -t.number))
    return dict(best.params), float(best.value), best.number


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
        f"`{cfg.compare.model}` on `{cfg.compare.dataset}` for the comparison's step budget "
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
    from larq_bamsprod.harness.progress import Progress
    from larq_bamsprod.harness.training import run_one

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
            result = run_one(trial_cfg, optimizer, trial_cfg.seeds[0], data_, strategy,
                             Path(trial_cfg.output), log=log, progress=progress,
                             evaluate_test=False)
        finally:
            tf.keras.backend.clear_session()
        return result["final"][cfg.metric.val_key]

    return objective


def run_tune(cfg: TuneConfig, log: Callable[[str], None] = print) -> dict:
    """Tune every optimizer with the same budget, report, then compare the best over seeds."""
    import tensorflow as tf

    from larq_bamsprod.harness import compare
    from larq_bamsprod.harness.distribute import make_strategy
    from larq_bamsprod.harness.files import write_json_atomic, write_text_atomic
    from larq_bamsprod.harness.training import load_data

    c = cfg.compare
    if c.deterministic:
        tf.config.experimental.enable_op_determinism()
    strategy = make_strategy(c.distribute)
    data_ = load_data(c, c.batch_size)
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
