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

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
import synthetic_fmnist  # noqa: E402

TESTS = Path(__file__).resolve().parents[1]
WORKER = TESTS / "support" / "tune_worker.py"
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


def _objective(params, number):
    # Score peaks at lr = 3e-3 inside adam's log-uniform [1e-5, 1].
    return -(math.log10(params["learning_rate"]) - math.log10(3e-3)) ** 2


def _tuned_points(cfg):
    tuned = tune.tune_all(cfg, lambda name: _objective, log=lambda _: None)
    return {opt: [[t.params for t in sorted(study.trials, key=lambda t: t.number)]
                  for study in runs] for opt, runs in tuned.items()}


def test_tuning_finds_the_known_best_learning_rate(tmp_path):
    cfg = tune.TuneConfig(compare=CompareConfig(optimizers=["adam"], output=str(tmp_path)),
                          trials=32)
    tuned = tune.tune_all(cfg, lambda name: _objective, log=lambda _: None)
    params, value, number, study = tune.best_of(tuned["adam"])
    # 32 quasi-random points over 5 decades: one in every 5/32 = 0.156 decade, so the
    # nearest to 3e-3 is closer than that.
    assert abs(math.log10(params["learning_rate"]) - math.log10(3e-3)) < 5 / 32
    assert value == max(t.value for t in tuned["adam"][0].trials)
    assert len(studies.complete_trials(tuned["adam"][0])) == 32


def test_a_studys_points_are_quasi_random_one_in_each_eighth_of_the_log_range(tmp_path):
    cfg = tune.TuneConfig(compare=CompareConfig(optimizers=["adam"], output=str(tmp_path)),
                          trials=8)
    rates = [p["learning_rate"] for p in _tuned_points(cfg)["adam"][0]]
    # adam's range is [1e-5, 1]: the eighths of its log range are 5/8 decade wide. The first
    # 2^m points of a (scrambled) Sobol' sequence put one point in each of 2^m equal bins.
    bins = sorted(int((math.log10(r) + 5) / (5 / 8)) for r in rates)
    assert bins == list(range(8))


def test_two_studies_draw_different_points_and_the_same_command_the_same_again(tmp_path):
    def config(output):
        return tune.TuneConfig(compare=CompareConfig(optimizers=["adam", "sgdm"],
                                                     output=str(output)), trials=3, studies=2)

    first = _tuned_points(config(tmp_path / "a"))
    for opt in ("adam", "sgdm"):
        one, two = ([p["learning_rate"] for p in points] for points in first[opt])
        assert not set(one) & set(two)
    assert set(p["learning_rate"] for p in first["adam"][0]).isdisjoint(
        p["learning_rate"] for p in first["sgdm"][0])
    assert _tuned_points(config(tmp_path / "b")) == first


def test_two_workloads_draw_different_points(tmp_path):
    from configs import builtin_config

    def points(**workload):
        cfg = tune.TuneConfig(compare=builtin_config(optimizers=["adam"], output=str(tmp_path),
                                                     **workload), trials=3)
        return tune.study_points(cfg, "adam", 1)

    cnn = points(model="BinaryCNN", dataset="fashion_mnist")
    assert cnn == points(model="BinaryCNN", dataset="fashion_mnist")
    assert not {p["learning_rate"] for p in cnn} & {
        p["learning_rate"] for p in points(model="BinaryCNN", dataset="fashion_mnist",
                                           train_subset=512)}
    assert not {p["learning_rate"] for p in cnn} & {
        p["learning_rate"] for p in points(model="BinaryLSTM", dataset="ptb")}


def test_study_opens_with_optunas_own_api(tmp_path):
    cfg = tune.TuneConfig(compare=CompareConfig(optimizers=["sgdm"], output=str(tmp_path)),
                          trials=2)
    tune.tune_all(cfg, lambda name: (lambda params, number: 0.5), log=lambda _: None)
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(str(tmp_path / "optuna.journal")))
    study = optuna.load_study(study_name="sgdm/study1", storage=storage)
    assert len(study.trials) == 2 and set(study.best_params) == {"learning_rate"}


def _worker(storage, output, trials, seconds):
    return subprocess.Popen(
        [sys.executable, str(WORKER), storage, str(output), str(trials),
         str(seconds)], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.parametrize("kind", ["journal", "sqlite"])
def test_two_workers_on_one_storage_run_n_trials_per_optimizer_not_2n(kind, tmp_path):
    # Both start at once on a storage neither has created yet.
    storage = (f"journal:{tmp_path / 'shared.journal'}" if kind == "journal"
               else f"sqlite:///{tmp_path / 'shared.db'}")
    workers = [_worker(storage, tmp_path / f"w{i}", 4, 0.3) for i in range(2)]
    logs = [w.communicate(timeout=300)[0] for w in workers]
    assert all(w.returncode == 0 for w in workers), logs
    assert _counts(storage) == {"adam/study1": {"COMPLETE": 4}, "sgdm/study1": {"COMPLETE": 4}}
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
        if any(tmp_path.glob("optuna.*")) and "adam/study1" in _counts(storage):
            states = [(t.state.name, bool(t.params)) for t in _trials(storage, "adam/study1")]
            if states.count(("COMPLETE", True)) == 1 and ("RUNNING", True) in states:
                break
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=30)
    killed = [t for t in _trials(storage, "adam/study1") if t.state.name == "RUNNING"]
    assert len(killed) == 1 and killed[0].params  # left behind by the kill, mid-objective
    rerun = _worker(storage, tmp_path, 3, 0.1)
    log = rerun.communicate(timeout=300)[0]
    assert rerun.returncode == 0, log
    assert "enqueued again" in log and "Traceback" not in log
    counts = _counts(storage)
    assert counts["adam/study1"] == {"COMPLETE": 3, "FAIL": 1}
    assert counts["sgdm/study1"] == {"COMPLETE": 3}
    retried = [t for t in _trials(storage, "adam/study1")
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
    ("--ablation", "bamsprod.beta_1", "bamsprod has no ablation 'beta_1'; valid: "
                                      "bamsprod.lr_decay"),
    ("--ablation", "bop.lr_decay", "bop has no ablation 'lr_decay'; valid: none"),
    ("--keep-edge", "bop", "--keep-edge 'bop' must look like OPTIMIZER=REASON"),
    ("--keep-edge", "adam=widened twice", "--keep-edge names adam, which --optimizers"),
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
        if (out / "trials" / "bamsprod-study1-trial1").exists():  # inside the second trial
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    result = subprocess.run(args, env=ENV, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    counts = _counts(f"journal:{out / 'optuna.journal'}")
    assert {k: v.get("COMPLETE") for k, v in counts.items()} == {"bamsprod/study1": 3,
                                                                  "bop/study1": 3}
    assert counts["bamsprod/study1"].get("FAIL") == 1
    report = json.loads((out / "tune.json").read_text())
    chosen = report["optimizers"]["bop"]["best"]["params"]
    assert set(chosen) == {"fp_learning_rate", "gamma", "threshold"}
    assert "## Every trial" in (out / "tune.md").read_text()
    # The final comparison ran the chosen configuration.
    done = json.loads((out / "runs" / "bop-seed0" / "done.json").read_text())
    assert done["hyperparameters"]["gamma"] == pytest.approx(chosen["gamma"])
    assert "test_accuracy" in done["final"]
    # Trials never read the test set.
    trial = json.loads((out / "trials" / "bop-study1-trial0" / "runs" / "bop-seed0" /
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
    assert _counts(storage) == {"sgdm/study1": {"COMPLETE": 3}, "adam/study1": {"COMPLETE": 3}}
    ran = sum(out.count("-> ") for out, _ in outputs)
    assert ran == 6, [out for out, _ in outputs]


def test_running_trial_of_another_machine_is_retried_only_once_its_heartbeat_is_stale(
        tmp_path):
    cfg = tune.TuneConfig(compare=CompareConfig(optimizers=["sgdm"], output=str(tmp_path)),
                          trials=2, stale_after=60)
    storage = studies.open_storage(cfg.storage)
    study = studies.claim_study(storage, "sgdm/study1", cfg, tune.study_settings(cfg, "sgdm"),
                                tune.study_points(cfg, "sgdm", 1), log=lambda _: None)
    number = studies.claim_waiting(study, storage)
    trial_id = storage.get_trial_id_from_study_id_trial_number(
        storage.get_study_id_from_name("sgdm/study1"), number)
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
             "(e.g. --space adam.learning_rate=log:1e-05:1) and tune again into a new --output, "
             "or state why it stays: --keep-edge adam=REASON"),
    (1.2e-5, "learning_rate=1.2e-05 is in the bottom 10% of [1e-05, 0.1] (log scale); widen it "
             "(e.g. --space adam.learning_rate=log:1e-06:0.1) and tune again into a new "
             "--output, or state why it stays: --keep-edge adam=REASON"),
    (1e-3, None),    # 0.5
    (0.03, None),    # (log10(0.03) + 5) / 4 = 0.8693
    (2.6e-5, None),  # log10(2.6) / 4 = 0.1037
])
def test_at_edge_by_hand(value, expected):
    from larq_bamsprod.harness.catalogue.search_space import at_edge

    space = {"learning_rate": ("log", 1e-5, 1e-1), "lr_decay": ("choice", ("sqrt", None))}
    found = at_edge(space, {"learning_rate": value, "lr_decay": None}, "adam")
    assert found == ([] if expected is None else [expected])


def test_bamsprod_default_space_is_its_learning_rate_alone(tmp_path):
    cfg = tune.TuneConfig(compare=CompareConfig(optimizers=["bamsprod"], output=str(tmp_path)),
                          trials=4)
    assert cfg.space_of("bamsprod") == {"learning_rate": ("log", 1e-4, 1.0)}
    assert all(set(p) == {"learning_rate"} for p in _tuned_points(cfg)["bamsprod"][0])


def test_lr_decay_ablation_searches_sqrt_against_none_half_each(tmp_path):
    cfg = tune.TuneConfig(compare=CompareConfig(optimizers=["bamsprod"], output=str(tmp_path)),
                          trials=4, ablations={"bamsprod": ["lr_decay"]})
    points = _tuned_points(cfg)["bamsprod"][0]
    assert all(set(p) == {"learning_rate", "lr_decay"} for p in points)
    # The first 4 Sobol' points put 2 in each half of every dimension.
    assert sorted(str(p["lr_decay"]) for p in points) == ["None", "None", "sqrt", "sqrt"]


def test_edge_choice_is_flagged_in_tune_json_with_the_reason_kept(tmp_path):
    def config(output, keep):
        return tune.TuneConfig(compare=CompareConfig(optimizers=["adam", "sgdm"],
                                                     output=str(output)),
                               trials=8, keep_edge=keep)

    # Higher is better with the rate: the best of 8 points is in the top eighth of [1e-5, 1]
    # and of [1e-4, 1], i.e. above 10^(-5/8) and 10^(-4/8): inside the top 10% (log).
    def objective(params, number):
        return params["learning_rate"]

    cfg = config(tmp_path, {"sgdm": "the largest stable rate"})
    tuned = tune.tune_all(cfg, lambda name: objective, log=lambda _: None)
    text, data = tune.tune_report(cfg, tuned)
    for opt in ("adam", "sgdm"):
        rate = data["optimizers"][opt]["best"]["params"]["learning_rate"]
        assert [e.split(" is in")[0] for e in data["optimizers"][opt]["edge"]] == [
            f"learning_rate={rate:.3g}"]
    assert data["optimizers"]["adam"]["edge_kept_because"] is None
    assert data["optimizers"]["sgdm"]["edge_kept_because"] == "the largest stable rate"
    assert "Kept (--keep-edge): the largest stable rate" in text
    assert "Unresolved (no --keep-edge)" in text


def test_readme_states_every_search_space_width_in_decades():
    from larq_bamsprod.harness.catalogue.search_space import widths_table

    # bamsprod's learning rate: log10(1 / 1e-4) = 4 decades; bop's gamma log10(1e-2/1e-6) = 4.
    table = widths_table()
    assert "| bamsprod | learning_rate | log-uniform [0.0001, 1] | 4 |" in table
    assert "| bop | fp_learning_rate | log-uniform [0.0001, 0.1] | 3 |" in table
    assert table in (REPO / "README.md").read_text()


def _refused(argv, capsys):
    """Exit code and stderr of ``larq-bamsprod ARGV`` (argparse's own refusals exit)."""
    try:
        code = cli.main(argv)
    except SystemExit as stop:
        code = stop.code
    return code, capsys.readouterr().err


@pytest.mark.parametrize("flag, value, message", [
    ("--sampler-seed", "-1", "argument --sampler-seed: expected an integer >= 0, received '-1'"),
    ("--stale-after", "0", "argument --stale-after: expected a number of seconds > 0, "
                           "received '0'"),
    ("--studies", "0", "argument --studies: expected a positive integer, received '0'"),
    ("--hparam", "bamsprod.learning_rate=0.1",
     "--hparam bamsprod.learning_rate=0.1 sets a hyperparameter that tune searches "
     "(bamsprod's space: learning_rate); drop it, or narrow the search with --space "
     "bamsprod.learning_rate=log:LOW:HIGH"),
])
def test_bad_tune_setting_refused_in_one_line_writing_nothing(flag, value, message, tmp_path,
                                                               capsys):
    output = tmp_path / "out"
    code, err = _refused(["tune", "--optimizers", "bamsprod,bop", "--output", str(output),
                          flag, value], capsys)
    assert code == 2 and message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not output.exists()


def test_other_trials_into_a_tuned_folder_refused_before_any_study_is_created(
        tmp_path, capsys):
    out = tmp_path / "tuned"
    cfg = tune.TuneConfig(compare=CompareConfig(optimizers=["bamsprod", "bop"],
                                                output=str(out)), trials=2)
    tune.tune_all(cfg, lambda name: (lambda params, number: 0.5), log=lambda _: None)
    storage = f"journal:{out / 'optuna.journal'}"
    before = _counts(storage)
    argv = ["tune", "--optimizers", "adam,bamsprod,bop", "--output", str(out)]
    code, err = _refused(argv + ["--trials", "3"], capsys)
    assert code == 2 and "study 'bamsprod/study1'" in err and "trials: 2 -> 3" in err, err
    assert err.count("\n") == 1
    assert _counts(storage) == before  # no adam study, no trial
    # The corrected command is accepted (checked, not run: run() would train).
    assert callable(cli._tune(cli.build_parser().parse_args(argv + ["--trials", "2"])))


def test_storage_of_an_older_tune_refused_in_one_line(tmp_path, capsys):
    storage = studies.open_storage(f"journal:{tmp_path / 'old.journal'}")
    optuna.create_study(study_name="bamsprod", storage=storage)
    code, err = _refused(["tune", "--optimizers", "bamsprod,bop", "--output",
                          str(tmp_path / "out"), "--storage",
                          f"journal:{tmp_path / 'old.journal'}"], capsys)
    assert code == 2 and "holds studies named bamsprod of an older tune" in err, err
    assert not (tmp_path / "out").exists()


def test_tune_md_gives_full_digits_and_the_compare_command_that_trains_the_finals(tmp_path):
    import shlex

    argv = ["tune", "--optimizers", "adam,bamsprod", "--epochs", "2", "--seeds", "0,1",
            "--train-subset", "512", "--hparam", "bamsprod.beta_1=0.8", "--trials", "2",
            "--studies", "2", "--output", str(tmp_path)]
    args = cli.build_parser().parse_args(argv)
    cfg = tune.TuneConfig(compare=CompareConfig(optimizers=["adam", "bamsprod"],
                                                output=str(tmp_path)),
                          trials=2, studies=2, compare_argv=args.compare_argv(args))
    tuned = tune.tune_all(cfg, lambda name: _objective, log=lambda _: None)
    text, data = tune.tune_report(cfg, tuned)
    chosen = {opt: info["best"]["params"] for opt, info in data["optimizers"].items()}
    for params in chosen.values():
        assert f"learning_rate={params['learning_rate']!r}" in text  # e.g. 0.0050380278841692504
    command = shlex.split(text.split("```bash\n")[1].split("\n```")[0])
    assert command[:2] == ["larq-bamsprod", "compare"]
    again = cli.build_parser().parse_args(command[1:])
    assert again.optimizers == "adam,bamsprod" and again.seeds == [0, 1]
    assert (again.epochs, again.train_subset, again.output) == (2, 512, str(tmp_path))
    from larq_bamsprod.harness.catalogue.registry import parse_overrides

    assert parse_overrides(again.hparam) == {
        "adam": chosen["adam"], "bamsprod": {"beta_1": 0.8, **chosen["bamsprod"]}}


def test_time_left_is_measured_after_the_first_step(monkeypatch):
    from larq_bamsprod.harness.runner import progress

    now = [0.0]
    monkeypatch.setattr(progress.time, "perf_counter", lambda: now[0])
    count = progress.Progress(1, 10, log=lambda _: None, verbose=0)
    for seconds in (100.0, 101.0, 102.0):  # the first step traces for 100 s, then 1 s each
        now[0] = seconds
        count.step()
        if seconds == 100.0:
            assert count.remaining_seconds() is None
    # 7 steps left at 1 s each: 7 s (not 102 / 3 * 7 = 238 s).
    assert count.remaining_seconds() == pytest.approx(7.0)
