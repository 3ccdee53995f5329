"""`larq-bamsprod tune`: equal budgets (exactly N trials per optimizer, whatever the number of
workers and kills), the known optimum found, bad input refused before anything is written."""

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

optuna = pytest.importorskip("optuna")

from larq_bamsprod.harness import cli  # noqa: E402
from larq_bamsprod.harness.experiments import studies, tune  # noqa: E402
from larq_bamsprod.harness.experiments.config import CompareConfig  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import synthetic_fmnist  # noqa: E402

TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
       "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


def _counts(storage_url):
    storage = studies.open_storage(storage_url)
    out = {}
    for summary in optuna.get_all_study_summaries(storage):
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        states = [t.state.name for t in study.get_trials(deepcopy=False)]
        out[summary.study_name] = {s: states.count(s) for s in set(states)}
    return out


def test_tuning_finds_the_known_best_learning_rate(tmp_path):
    # Score peaks at lr = 3e-3 inside adam's log-uniform [1e-5, 1e-1].
    def objective(params, number):
        return -(math.log10(params["learning_rate"]) - math.log10(3e-3)) ** 2

    cfg = tune.TuneConfig(compare=CompareConfig(optimizers=["adam"], output=str(tmp_path)),
                          trials=30)
    tuned = tune.tune_all(cfg, lambda opt: objective, log=lambda _: None)
    params, value, _ = studies.best_params(tuned["adam"])
    assert abs(math.log10(params["learning_rate"]) - math.log10(3e-3)) < 0.15
    assert len(studies.complete_trials(tuned["adam"])) == 30
    # The same seed draws the same trials again.
    again = tune.TuneConfig(compare=CompareConfig(optimizers=["adam"],
                                                  output=str(tmp_path / "again")), trials=30)
    assert studies.best_params(tune.tune_all(again, lambda opt: objective,
                                          log=lambda _: None)["adam"]) == (params, value, _)


def test_study_opens_with_optunas_own_api(tmp_path):
    cfg = tune.TuneConfig(compare=CompareConfig(optimizers=["sgdm"], output=str(tmp_path)),
                          trials=2)
    tune.tune_all(cfg, lambda opt: (lambda params, number: 0.5), log=lambda _: None)
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(str(tmp_path / "optuna.journal")))
    study = optuna.load_study(study_name="sgdm", storage=storage)
    assert len(study.trials) == 2 and set(study.best_params) == {"learning_rate"}


def _worker(storage, output, trials, seconds):
    return subprocess.Popen(
        [sys.executable, str(TESTS / "tune_worker.py"), storage, str(output), str(trials),
         str(seconds)], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.parametrize("kind", ["journal", "sqlite"])
def test_two_workers_on_one_storage_run_n_trials_per_optimizer_not_2n(kind, tmp_path):
    # Both start at once on a storage neither has created yet.
    storage = (f"journal:{tmp_path / 'shared.journal'}" if kind == "journal"
               else f"sqlite:///{tmp_path / 'shared.db'}")
    workers = [_worker(storage, tmp_path / f"w{i}", 4, 0.3) for i in range(2)]
    logs = [w.communicate(timeout=300)[0] for w in workers]
    assert all(w.returncode == 0 for w in workers), logs
    assert _counts(storage) == {"adam": {"COMPLETE": 4}, "sgdm": {"COMPLETE": 4}}
    ran = [log.count("-> ") for log in logs]
    assert sum(ran) == 8, logs


def _trials(storage_url, name):
    storage = studies.open_storage(storage_url)
    return optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)


@pytest.mark.parametrize("kind", ["journal", "sqlite"])
def test_sigkill_mid_trial_then_rerun_retries_its_own_parameters(kind, tmp_path):
    storage = (f"journal:{tmp_path / 'optuna.journal'}" if kind == "journal"
               else f"sqlite:///{tmp_path / 'optuna.db'}")
    worker = _worker(storage, tmp_path, 3, 1.5)
    # Kill once the second adam trial is running (mid-trial: its objective sleeps 1.5 s).
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        time.sleep(0.3)
        if any(tmp_path.glob("optuna.*")) and "adam" in _counts(storage):
            states = [(t.state.name, bool(t.params)) for t in _trials(storage, "adam")]
            if states.count(("COMPLETE", True)) == 1 and ("RUNNING", True) in states:
                break
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=30)
    killed = [t for t in _trials(storage, "adam") if t.state.name == "RUNNING"]
    assert len(killed) == 1 and killed[0].params  # left behind by the kill, mid-objective
    rerun = _worker(storage, tmp_path, 3, 0.1)
    log = rerun.communicate(timeout=300)[0]
    assert rerun.returncode == 0, log
    assert "enqueued again" in log and "Traceback" not in log
    counts = _counts(storage)
    assert counts["adam"] == {"COMPLETE": 3, "FAIL": 1}
    assert counts["sgdm"] == {"COMPLETE": 3}
    retried = [t for t in _trials(storage, "adam")
               if t.user_attrs.get("retry_of") == killed[0].number]
    assert len(retried) == 1 and retried[0].state.name == "COMPLETE"
    assert retried[0].params == killed[0].params


@pytest.mark.parametrize("flag, value, message", [
    ("--space", "bop.gamma=log:0:1e-3", "log-uniform bounds need 0 < low < high"),
    ("--space", "bop.lr=log:1e-4:1e-1", "'bop' has no hyperparameter 'lr'; valid:"),
    ("--space", "bop.gamma=uniform:1:2", "kind must be log or choice"),
    ("--space", "adam.learning_rate=log:1e-4:1e-1", "--space names adam, which --optimizers"),
    ("--storage", "mongodb://localhost/studies", "--storage must be an SQLAlchemy URL"),
    ("--storage", "postgresql://nobody@127.0.0.1:1/none", "cannot be opened"),
])
def test_bad_search_space_or_storage_refused_in_one_line_writing_nothing(
        flag, value, message, tmp_path, capsys):
    output = tmp_path / "out"
    argv = ["tune", "--optimizers", "bamsprod,bop", "--output", str(output), flag, value]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("larq-bamsprod tune: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not output.exists()


@pytest.mark.slow
def test_tune_command_end_to_end_then_killed_and_resumed(tmp_path):
    data_dir = synthetic_fmnist.make(tmp_path / "fmnist", n=256)
    out = tmp_path / "tune"
    args = [sys.executable, "-m", "larq_bamsprod.harness", "tune", "--model", "BinaryCNN",
            "--dataset", "fashion_mnist", "--optimizers", "bamsprod,bop", "--trials", "3",
            "--epochs", "1", "--steps-per-epoch", "5", "--train-subset", "512", "--seeds", "0",
            "--batch-size", "32", "--data-dir", data_dir, "--output", str(out),
            "--verbose", "0"]
    proc = subprocess.Popen(args, env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
        if (out / "trials" / "bamsprod-trial1").exists():  # inside the second trial
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    result = subprocess.run(args, env=ENV, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    counts = _counts(f"journal:{out / 'optuna.journal'}")
    assert {k: v.get("COMPLETE") for k, v in counts.items()} == {"bamsprod": 3, "bop": 3}
    assert counts["bamsprod"].get("FAIL") == 1
    report = json.loads((out / "tune.json").read_text())
    chosen = report["optimizers"]["bop"]["best"]["params"]
    assert set(chosen) == {"fp_learning_rate", "gamma", "threshold"}
    assert "## Every trial" in (out / "tune.md").read_text()
    # The final comparison ran the chosen configuration.
    done = json.loads((out / "runs" / "bop-seed0" / "done.json").read_text())
    assert done["hyperparameters"]["gamma"] == pytest.approx(chosen["gamma"])
    assert "test_accuracy" in done["final"]
    # Trials never read the test set.
    trial = json.loads((out / "trials" / "bop-trial0" / "runs" / "bop-seed0" /
                        "done.json").read_text())
    assert "test_accuracy" not in trial["final"]


@pytest.mark.slow
def test_two_tune_commands_sharing_a_storage_run_n_trials_per_optimizer(tmp_path):
    data_dir = synthetic_fmnist.make(tmp_path / "fmnist", n=256)
    storage = f"journal:{tmp_path / 'shared.journal'}"

    def command(output):
        return [sys.executable, "-m", "larq_bamsprod.harness", "tune", "--model", "BinaryCNN",
                "--dataset", "fashion_mnist", "--optimizers", "sgdm,adam", "--trials", "3",
                "--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "32", "--seeds",
                "0", "--data-dir", data_dir, "--storage", storage, "--output", str(output),
                "--verbose", "0", "--no-rerun"]

    procs = [subprocess.Popen(command(tmp_path / f"worker{i}"), env=ENV, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for i in range(2)]
    outputs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err[-2000:] for _, err in outputs]
    assert _counts(storage) == {"sgdm": {"COMPLETE": 3}, "adam": {"COMPLETE": 3}}
    ran = sum(out.count("-> ") for out, _ in outputs)
    assert ran == 6, [out for out, _ in outputs]


def test_running_trial_of_another_machine_is_retried_only_once_its_heartbeat_is_stale(
        tmp_path):
    cfg = tune.TuneConfig(compare=CompareConfig(optimizers=["sgdm"], output=str(tmp_path)),
                          trials=2, stale_after=60)
    storage = studies.open_storage(cfg.storage)
    study = studies.claim_study(storage, "sgdm", cfg, tune.study_settings(cfg, "sgdm"),
                                log=lambda _: None)
    number = studies.claim_waiting(study, storage)
    trial_id = storage.get_trial_id_from_study_id_trial_number(
        storage.get_study_id_from_name("sgdm"), number)
    storage.set_trial_user_attr(trial_id, "host", "another-machine")
    storage.set_trial_user_attr(trial_id, "pid", 1)
    storage.set_trial_user_attr(trial_id, "heartbeat", time.time() - 30)  # fresh enough
    assert studies.retry_stale(study, storage, cfg.stale_after, log=lambda _: None) == 0
    storage.set_trial_user_attr(trial_id, "heartbeat", time.time() - 61)  # stale
    assert studies.retry_stale(study, storage, cfg.stale_after, log=lambda _: None) == 1
    assert studies.retry_stale(study, storage, cfg.stale_after, log=lambda _: None) == 0
    states = sorted(t.state.name for t in study.get_trials(deepcopy=False))
    assert states == ["FAIL", "WAITING", "WAITING"]  # slot 0 again, and slot 1


@pytest.mark.parametrize("value, expected", [
    # Position in log scale of [1e-5, 1e-1]: (log10(value) + 5) / 4; the edge is < 0.1 or > 0.9.
    (0.0738, "learning_rate=0.0738 is in the top 10% of [1e-05, 0.1] (log scale); widen it "
             "(e.g. --space adam.learning_rate=log:1e-05:1) and tune again into a new --output"),
    (1.2e-5, "learning_rate=1.2e-05 is in the bottom 10% of [1e-05, 0.1] (log scale); widen it "
             "(e.g. --space adam.learning_rate=log:1e-06:0.1) and tune again into a new "
             "--output"),
    (1e-3, None),    # 0.5
    (0.03, None),    # (log10(0.03) + 5) / 4 = 0.8693
    (2.6e-5, None),  # log10(2.6) / 4 = 0.1037
])
def test_at_edge_by_hand(value, expected):
    from larq_bamsprod.harness.catalogue.search_space import at_edge

    space = {"learning_rate": ("log", 1e-5, 1e-1), "lr_decay": ("choice", ("sqrt", None))}
    found = [e.replace("OPT.", "adam.") for e in at_edge(space, {"learning_rate": value,
                                                                  "lr_decay": None})]
    assert found == ([] if expected is None else [expected])
