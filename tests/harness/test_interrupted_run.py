"""A run killed and resumed reports what an uninterrupted one reports (issue 28 items 5-6,
issue 25 item 7): its training seconds and its TensorBoard log.

The accounting rule is checked on a clock the test drives (no sleeping, no timing
noise): every step is charged to training once, the first step of each epoch at the
run's typical step time, whether the run went through in one process or was killed and
resumed in another. A real kill and resume then checks it end to end, and that
TensorBoard holds every evaluation point once, seconds never running backwards.
"""

import json
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest

from larq_bamsprod.harness.runner import training

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
import synthetic_fmnist  # noqa: E402
from cli_run import REPO  # noqa: E402


class _Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class _NoProgress:
    def step(self):
        pass


def _train(evaluator, clock, epochs, steps, first, tracing):
    """Drive ``evaluator`` through ``epochs`` of ``steps`` steps of 1 s; the first step of
    each epoch takes ``first`` s more (the input pipeline's fill), the first of the process
    ``tracing`` s more on top."""
    for epoch in epochs:
        evaluator.on_epoch_begin(epoch)
        for batch in range(steps):
            evaluator.on_train_batch_begin(batch)
            clock.now += 1.0 + (first if batch == 0 else 0.0)
            if tracing:
                clock.now, tracing = clock.now + tracing, 0.0
            evaluator.on_train_batch_end(batch)
        evaluator.on_epoch_end(epoch)


def _run(steps_per_epoch):
    return training._Run("sgd", 0, types.SimpleNamespace(steps_per_epoch=steps_per_epoch),
                         None, [], [], Path("."), None, True, _NoProgress())


@pytest.fixture
def clock(monkeypatch):
    clock = _Clock()
    monkeypatch.setattr(training, "time", types.SimpleNamespace(perf_counter=clock))
    return clock


def test_a_resumed_run_is_charged_the_training_seconds_of_an_uninterrupted_one(clock):
    whole = _run(4)
    _train(training._Evaluator(whole), clock, range(3), 4, first=5.0, tracing=20.0)
    resumed = _run(4)
    _train(training._Evaluator(resumed), clock, range(1), 4, first=5.0, tracing=20.0)
    # Killed after epoch 1; a new process (new evaluator) traces again and goes on.
    _train(training._Evaluator(resumed), clock, range(1, 3), 4, first=5.0, tracing=20.0)
    # 12 steps of 1 s; the fills (3 x 5 s) and the tracing (20 s per process) are startup.
    assert whole.train_seconds == pytest.approx(12.0)
    assert resumed.train_seconds == pytest.approx(12.0)
    assert whole.startup_seconds == pytest.approx(3 * 5.0 + 20.0)
    assert resumed.startup_seconds == pytest.approx(3 * 5.0 + 2 * 20.0)


def test_with_one_step_per_epoch_only_the_first_step_of_a_process_is_startup(clock):
    run = _run(1)
    _train(training._Evaluator(run), clock, range(3), 1, first=0.0, tracing=20.0)
    assert run.train_seconds == pytest.approx(2.0)
    assert run.startup_seconds == pytest.approx(21.0)


def test_bop_logs_its_rates_and_bamsprod_its_own():
    from larq_bamsprod.harness.catalogue import registry

    # Bop's layout: Adam's rate for the real-valued weights (fp_learning_rate, 0.01) and
    # Bop's adaptivity rate gamma (1e-4), Larq's defaults as the registry records them.
    assert training.learning_rates(registry.make_optimizer("bop", None, None)) == {
        "learning_rate": pytest.approx(0.01), "bop_gamma": pytest.approx(1e-4)}
    assert training.learning_rates(registry.make_optimizer("sgd", None, None)) == {
        "learning_rate": pytest.approx(0.1)}


def _events(folder: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder), size_guidance={"tensors": 0})
    events.Reload()
    return events


def _scalars(events, tag: str) -> list[tuple[int, float]]:
    import tensorflow as tf

    return [(e.step, float(tf.make_ndarray(e.tensor_proto))) for e in events.Tensors(tag)]


def test_hparams_are_named_per_optimizer_and_none_is_left_out(tmp_path):
    import tensorflow as tf
    from tensorboard.plugins.hparams import plugin_data_pb2

    writer = tf.summary.create_file_writer(str(tmp_path))
    hparams = {"learning_rate": 0.01, "gamma": 0.001, "fp_learning_rate": None,
               "lr_decay": None, "bound_target": "mean"}
    training._log_hparams(writer, "bamsprod", 0, hparams, {"val_accuracy": 0.5},
                          {"val_accuracy": 0.5}, 10)
    content = _events(tmp_path).PluginTagToContent("hparams")["_hparams_/session_start_info"]
    logged = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info.hparams
    assert set(logged) == {"optimizer", "seed", "bamsprod.learning_rate", "bamsprod.gamma",
                           "bamsprod.bound_target"}
    assert logged["bamsprod.gamma"].number_value == pytest.approx(0.001)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return synthetic_fmnist.make(tmp_path_factory.mktemp("fmnist"), n=256)


def _compare(data_dir, output):
    return [sys.executable, "-m", "larq_bamsprod_cli", "compare", "--dataset",
            "fashion_mnist", "--data-dir", str(data_dir), "--optimizers", "sgd",
            "--epochs", "6", "--batch-size", "16", "--steps-per-epoch", "8",
            "--validation-size", "32", "--eval-every", "4", "--output", str(output),
            "--verbose", "0"]


def _kill_in_the_second_half_of_an_epoch(proc, history: Path) -> None:
    """SIGKILL ``proc`` three quarters into its third epoch: after that epoch's mid-epoch
    evaluation point (step 4 of 8), before the epoch is saved."""
    seen, deadline = {}, time.monotonic() + 900
    while proc.poll() is None and time.monotonic() < deadline and 2 not in seen:
        if history.exists():
            seen.setdefault(json.loads(history.read_text())["epochs_done"], time.monotonic())
        time.sleep(0.01)
    if 1 in seen and 2 in seen:
        time.sleep(0.75 * (seen[2] - seen[1]))
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)


@pytest.fixture(scope="module")
def whole_and_resumed(data_dir, tmp_path_factory):
    """``(done.json, run folder)`` of an uninterrupted run and of one killed mid-epoch and
    resumed by the same command."""
    root = tmp_path_factory.mktemp("interrupted")
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}
    whole = subprocess.run(_compare(data_dir, root / "whole"), env=env,
                           capture_output=True, text=True, timeout=900)
    assert whole.returncode == 0, whole.stderr[-3000:]
    output = root / "killed"
    history = output / "runs" / "sgd-seed0" / "history.json"
    proc = subprocess.Popen(_compare(data_dir, output), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _kill_in_the_second_half_of_an_epoch(proc, history)
    killed_after = json.loads(history.read_text())["epochs_done"]
    assert 2 <= killed_after < 6, "the run was not killed mid-training"
    assert not (history.parent / "done.json").exists()
    resumed = subprocess.run(_compare(data_dir, output), env=env, capture_output=True,
                             text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "sgd seed 0: resumed after epoch" in resumed.stdout
    return [(json.loads((folder / "runs" / "sgd-seed0" / "done.json").read_text()), folder)
            for folder in (root / "whole", output)]


@pytest.mark.slow
def test_a_run_killed_mid_training_and_resumed_reports_comparable_seconds(
        whole_and_resumed):
    (a, _), (b, _) = whole_and_resumed
    assert [r["step"] for r in a["history"]] == [r["step"] for r in b["history"]]
    assert [r["step"] for r in a["history"]] == list(range(4, 49, 4))
    # Same work, same rule: comparable seconds (a loose bound: the machine is shared).
    ratio = b["train_seconds"] / a["train_seconds"]
    assert 0.25 < ratio < 4, (a["train_seconds"], b["train_seconds"])


@pytest.mark.slow
def test_tensorboard_of_a_resumed_run_has_every_point_once_and_seconds_forward(
        whole_and_resumed):
    (_, whole), (done, resumed) = whole_and_resumed
    events = _events(resumed / "tensorboard" / "sgd-seed0")
    seconds = _scalars(events, "train_seconds")
    assert [step for step, _ in seconds] == list(range(4, 49, 4))
    assert [value for _, value in seconds] == pytest.approx(
        [row["train_seconds"] for row in done["history"]])
    assert all(a < b for (_, a), (_, b) in zip(seconds, seconds[1:]))
    rates = _scalars(events, "learning_rate")
    assert [step for step, _ in rates] == list(range(4, 49, 4))
    assert set(_events(whole / "tensorboard" / "sgd-seed0").Tags()["tensors"]) == set(
        events.Tags()["tensors"])


def test_time_left_waits_for_a_quarter_of_a_run_and_leaves_the_first_step_out(monkeypatch):
    from larq_bamsprod.harness.runner import progress

    clock = _Clock()
    monkeypatch.setattr(progress, "time", types.SimpleNamespace(perf_counter=clock))
    count = progress.Progress(runs=2, steps_per_run=8, log=lambda _: None, verbose=0)
    clock.now += 30.0  # data, model, tracing: the first step ends at 30 s
    count.step()
    assert count.remaining_seconds() is None
    for _ in range(3):  # steps of 2 s each
        clock.now += 2.0
        count.step()
    # 4 of 16 steps done (a quarter of a run is 2); 3 timed steps of 2 s: 12 left x 2 s.
    assert count.remaining_seconds() == pytest.approx(24.0)


@pytest.mark.slow
def test_a_recipe_killed_after_an_epoch_keeps_that_epochs_record(data_dir, tmp_path):
    output = tmp_path / "recipe"
    args = [sys.executable, "-m", "larq_bamsprod_cli", "recipe", "TrainQuickNet",
            "--dataset", "fashion_mnist", "--data-dir", str(data_dir), "--epochs", "3",
            "--batch-size", "8", "--steps-per-epoch", "2", "--image-size", "32",
            "--output", str(output)]
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 900
    record = output / "history.json"
    while proc.poll() is None and time.monotonic() < deadline:
        if record.exists() and json.loads(record.read_text())["history"].get("loss"):
            break  # epoch 1 checkpointed by larq-zoo, then recorded
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    # larq-zoo's checkpoint of the last finished epoch (none if the kill came between the
    # record of epoch 1 and its checkpoint: then epoch 1 is trained again).
    stats = output / "stats.json"
    killed_after = json.loads(stats.read_text())["epoch"] if stats.exists() else 0
    assert killed_after < 3, "the recipe was not killed mid-training"
    resumed = subprocess.run(args, env=env, capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    if killed_after:
        assert f"Loaded model from epoch {killed_after}." in resumed.stdout
    history = json.loads((output / "history.json").read_text())["history"]
    # Every epoch once, whichever process trained it (and once if trained twice).
    assert len(history["loss"]) == 3
