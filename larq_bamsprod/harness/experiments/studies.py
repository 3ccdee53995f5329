"""Optuna studies with an exact trial budget per study, shared by any number of workers.

Exactly ``--trials`` per study, with any number of processes on one storage and across
kills: the process that creates a study enqueues all N trials at once (Optuna ``WAITING``
trials, their parameters fixed); every worker then claims WAITING trials one at a time
(``WAITING -> RUNNING`` is atomic in Optuna's storages), so no worker ever creates a trial
of its own. A running trial writes a heartbeat (a user attribute) every
:data:`HEARTBEAT_SECONDS`; a RUNNING trial whose heartbeat is older than ``--stale-after``
seconds, or whose process is gone from this machine, is marked FAIL by the next worker
that looks, and a copy of it (same slot, same parameters) is enqueued again. Completed
trials are never rerun. Every trial's parameters are fixed when it is enqueued (the
study's quasi-random points), so a retried trial runs the killed one's.

Storage: an SQLAlchemy URL (``sqlite:///PATH``, ``postgresql://...``, ``mysql://...``) or
``journal:PATH`` (Optuna's ``JournalFileBackend``).
"""

from __future__ import annotations

import math
import os
import socket
import threading
import time
from pathlib import Path
from typing import Callable

from larq_bamsprod.harness.catalogue.search_space import suggest
from larq_bamsprod.harness.files import as_json

HEARTBEAT_SECONDS = 10.0
DEFAULT_STALE_AFTER = 120.0
STORAGE_SCHEMES = ("sqlite", "postgresql", "mysql", "oracle", "mssql")

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


SETTINGS_ATTR = "larq_bamsprod_settings"
SLOT_ATTR = "larq_bamsprod_slot"


def claim_study(storage, name: str, cfg, settings: dict, points: list[dict],
                log: Callable[[str], None] = print):
    """Create (and fill with one WAITING trial per point of ``points``, its parameters
    fixed) or load the study ``name``; ``settings`` are what every worker of the study must
    agree on."""
    import optuna

    settings = as_json(settings)
    # Every parameter is fixed when the trial is enqueued; the sampler draws nothing.
    sampler = optuna.samplers.RandomSampler(seed=0)
    for attempt in range(20):
        try:
            study = optuna.create_study(study_name=name, storage=storage, sampler=sampler,
                                        direction=cfg.metric.direction)
        except optuna.exceptions.DuplicatedStudyError:
            study = optuna.load_study(study_name=name, storage=storage, sampler=sampler)
            break
        except Exception:  # a concurrent create can fail in one process: look again
            if attempt == 19:
                raise
            time.sleep(0.5)
            continue
        study.set_user_attr(SETTINGS_ATTR, settings)
        _enqueue_missing(study, points)
        log(f"tune {name}: study created with {len(points)} trials")
        return study
    # Loaded: wait for the creator to finish enqueueing (it may be a moment behind).
    deadline = time.monotonic() + 30
    while "larq_bamsprod_enqueued" not in study.user_attrs and time.monotonic() < deadline:
        time.sleep(0.5)
    check_settings(study, settings, cfg.storage)
    if "larq_bamsprod_enqueued" not in study.user_attrs:
        _enqueue_missing(study, points)  # its creator was killed while enqueueing
    return study


def check_settings(study, settings: dict, storage_url: str) -> None:
    """Refuse a study tuned with other settings than ``settings`` (JSON-clean)."""
    previous = study.user_attrs.get(SETTINGS_ATTR)
    if previous is None or previous == settings:
        return
    changed = [k for k in settings if previous.get(k) != settings[k]]
    raise ValueError(
        f"study {study.study_name!r} in {storage_url} was tuned with other settings "
        f"({', '.join(f'{k}: {previous.get(k)!r} -> {settings[k]!r}' for k in changed)}); "
        "use another --storage (or --output), or delete the study")


def check_existing(url: str, settings: dict[str, dict], optimizers: list[str]) -> None:
    """Refuse, before any study is created, a storage whose studies of ``settings`` (study
    name -> settings) were tuned with other settings, or that holds an older tune's study
    named after one of ``optimizers`` (one TPE study per optimizer). Writes nothing: a
    storage file that does not exist yet is not created."""
    import optuna

    if url.startswith(("journal:", "sqlite:///")):
        path = Path(url.split(":", 1)[1].removeprefix("///"))
        if not path.exists():
            return
    storage = open_storage(url)
    names = {s.study_name for s in storage.get_all_studies()}
    old = sorted(names & set(optimizers))
    if old:
        raise ValueError(
            f"--storage {url} holds studies named {', '.join(old)} of an older tune (one TPE "
            "study per optimizer; studies are now OPTIMIZER/studyK); tune into a new --output "
            "or --storage")
    for name in sorted(names & set(settings)):
        study = optuna.load_study(study_name=name, storage=storage)
        check_settings(study, as_json(settings[name]), url)


def _enqueue_missing(study, points: list[dict]) -> None:
    have = {t.user_attrs.get(SLOT_ATTR) for t in study.get_trials(deepcopy=False)}
    for slot, point in enumerate(points):
        if slot not in have:
            study.enqueue_trial(point, user_attrs={SLOT_ATTR: slot})
    study.set_user_attr("larq_bamsprod_enqueued", len(points))


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


def run_trials(storage, study, space: dict[str, tuple], objective: Callable[[dict, int], float],
               cfg, log: Callable[[str], None] = print, label: str = "") -> int:
    """Claim and run WAITING trials of ``study`` until none is left; how many ran here.
    ``label`` starts each progress line (e.g. ``optimizer adam study 1/2``)."""
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
        # The same study object throughout: a second one loaded from an RDB storage has a
        # cache of its own that has not seen this trial (KeyError in Optuna's cache).
        trial = optuna.trial.Trial(study, trial_id)
        slot = trial.user_attrs.get(SLOT_ATTR)
        with _Heartbeat(storage, trial_id):
            params = suggest(trial, space)
            log(f"tune: {label or study.study_name} trial {slot + 1}/{cfg.trials} "
                f"(Optuna trial {number}): {params}")
            try:
                value = float(objective(params, number))
            except Exception:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                raise
        if math.isnan(value):  # diverged: the worst score
            value = 0.0 if cfg.metric.higher_is_better else math.inf
        study.tell(trial, value)
        ran += 1
        log(f"tune: {label or study.study_name} trial {slot + 1}/{cfg.trials} -> {value!r}")


def complete_trials(study) -> list:
    from optuna.trial import TrialState

    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))


def run_studies(cfg, plans: dict[str, dict], log: Callable[[str], None] = print,
                poll: float = 2.0) -> dict:
    """Run this worker's share of the trials of every study of ``plans``, then wait for the
    others'.

    ``plans`` maps a study name to ``{"settings", "points", "space", "objective",
    "label"}``. Returns ``{name: study}`` once every study has ``cfg.trials`` COMPLETE trials.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(cfg.storage)
    studies = {name: claim_study(storage, name, cfg, plan["settings"], plan["points"], log)
               for name, plan in plans.items()}
    waiting_said = False
    while True:
        for name, study in studies.items():
            plan = plans[name]
            run_trials(storage, study, plan["space"], plan["objective"], cfg, log,
                       plan["label"])
        counts = {name: len(complete_trials(s)) for name, s in studies.items()}
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
