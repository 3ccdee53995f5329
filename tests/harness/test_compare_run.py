"""The comparison harness end to end on a tiny offline dataset built by real TFDS code:
fairness, outputs, resume, and survival of SIGKILL."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from larq_bamsprod.harness import cli

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
import synthetic_fmnist  # noqa: E402

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return synthetic_fmnist.make(tmp_path_factory.mktemp("fmnist"), n=256)


def _compare(data_dir, output, *extra, optimizers="bamsprod,bop", epochs=2):
    """Run the real command in a fresh interpreter (op determinism is process-global)."""
    args = [
        sys.executable, "-m", "larq_bamsprod.harness", "compare", "--model", "BinaryCNN",
        "--dataset", "fashion_mnist", "--optimizers", optimizers, "--epochs", str(epochs),
        "--batch-size", "32", "--steps-per-epoch", "4", "--seeds", "0",
        "--data-dir", data_dir, "--output", str(output), "--verbose", "0", *extra,
    ]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)


def _ok(result):
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def _history(output, name, seed=0):
    path = Path(output) / "runs" / f"{name}-seed{seed}" / "history.json"
    return json.loads(path.read_text())["rows"]


def _losses(history):
    return [(row["step"], row["train_loss"], row["val_loss"], row["val_accuracy"])
            for row in history]


def _tensorboard(folder):
    """Scalar tags and plugin names written to a run's TensorBoard event files."""
    import tensorflow as tf

    tags, plugins = set(), set()
    for path in folder.glob("events.out.tfevents*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                tags.add(value.tag)
                plugins.add(value.metadata.plugin_data.plugin_name)
    return tags, plugins


def test_identical_optimizers_give_identical_runs(data_dir, tmp_path):
    # Same initial weights + same batches + op determinism: two rows with identical
    # settings must produce bit-identical curves; anything unfair would make them differ.
    _ok(_compare(data_dir, tmp_path, optimizers="adam,adam@twin"))
    assert _losses(_history(tmp_path, "adam")) == _losses(_history(tmp_path, "adam@twin"))


def test_outputs_table_plot_tensorboard_and_history(data_dir, tmp_path):
    out = _ok(_compare(data_dir, tmp_path))
    assert "[run 1/2] bamsprod seed 0" in out and "[run 2/2] bop seed 0" in out  # progress
    assert "Epoch 1/2" not in out  # Keras' own count is off
    summary = json.loads((tmp_path / "results.json").read_text())
    assert [r["optimizer"] for r in summary["rows"]] == ["bamsprod", "bop"]
    # BinaryCNN on 28x28x1, counted by hand: binary 3x3 convs 32->64, 64->128, 128->256 and
    # the dense 2304->128; real: the stem 3x3x1x32, five batch norms (gamma, beta) and the
    # classifier 128x10 + 10.
    binary = 9 * 32 * 64 + 9 * 64 * 128 + 9 * 128 * 256 + 3 * 3 * 256 * 128
    real = 9 * 32 + 2 * (32 + 64 + 128 + 256 + 128) + 128 * 10 + 10
    assert (summary["layout"]["binary"], summary["layout"]["real"]) == (binary, real)
    assert summary["layout"]["trained_by"] == {
        "bamsprod": "bamsprod every weight", "bop": "bop the binary weights, Adam(0.01) the "
        "real ones"}
    assert len(summary["targets"]) == 4 and len(summary["rows"][0]["steps_to_targets"]) == 4
    for name in ("results.md", "results.csv", "results.json", "curves.png", "config.json"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # 2 epochs x 4 steps; 25 validation examples (10% of 256) are 1 batch of 32, so the
    # default points are ceil(1 / 0.3) = 4 steps apart (evaluation batches <= 0.3 x steps).
    assert [r["step"] for r in _history(tmp_path, "bamsprod")] == [4, 8]
    done = json.loads((tmp_path / "runs" / "bamsprod-seed0" / "done.json").read_text())
    assert set(done["final"]) >= {"val_accuracy", "test_accuracy"}
    assert done["best"]["val_accuracy"] == max(r["val_accuracy"] for r in done["history"])
    tags, plugins = _tensorboard(tmp_path / "tensorboard" / "bamsprod-seed0")
    assert {"val_accuracy", "val_loss", "train_loss", "learning_rate"} <= tags
    assert {"final_test_accuracy", "final_val_accuracy", "best_test_accuracy"} <= tags
    assert "hparams" in plugins  # the HParams dashboard's entry for this run
    table = (tmp_path / "results.md").read_text()
    assert "| bamsprod |" in table and "| bop |" in table
    # Different optimizers from the same start do train differently.
    assert _losses(_history(tmp_path, "bamsprod")) != _losses(_history(tmp_path, "bop"))
    # Re-running the same command skips both finished runs and changes nothing.
    before = _history(tmp_path, "bop")
    assert _ok(_compare(data_dir, tmp_path)).count("finished earlier, skipped") == 2
    assert _history(tmp_path, "bop") == before


def test_resume_after_interruption_equals_uninterrupted_run(data_dir, tmp_path):
    _ok(_compare(data_dir, tmp_path / "full", optimizers="bamsprod", epochs=3))
    part = tmp_path / "part"
    _ok(_compare(data_dir, part, optimizers="bamsprod", epochs=3))
    # As if stopped after epoch 2: forget what epoch 3 wrote (its checkpoint stays, unused).
    run = part / "runs" / "bamsprod-seed0"
    (run / "done.json").unlink()
    state = json.loads((run / "history.json").read_text())
    state["epochs_done"] = 2
    state["rows"] = [r for r in state["rows"] if r["step"] <= 2 * 4]
    (run / "history.json").write_text(json.dumps(state))
    assert "resumed after epoch 2" in _ok(
        _compare(data_dir, part, optimizers="bamsprod", epochs=3)
    )
    assert _losses(_history(part, "bamsprod")) == _losses(_history(tmp_path / "full", "bamsprod"))


def test_changed_settings_in_an_existing_output_are_refused(data_dir, tmp_path):
    _ok(_compare(data_dir, tmp_path, optimizers="sgdm", epochs=1))
    result = _compare(data_dir, tmp_path, optimizers="sgdm", epochs=2)
    assert result.returncode == 2
    assert "different settings (epochs: 1 -> 2 (schedule 'cosine' spreads" in result.stderr


def test_sigkill_at_random_points_then_resume_equals_uninterrupted_run(data_dir, tmp_path):
    # Each launch is killed once it has recorded a new epoch, plus a seeded random delay
    # (none for the first), so kills land at the epoch boundary, mid-epoch, mid-evaluation,
    # mid-checkpoint and mid-write; every launch still makes progress.
    reference = tmp_path / "reference"
    _ok(_compare(data_dir, reference, optimizers="bamsprod", epochs=4))
    killed = tmp_path / "killed"
    history_file = killed / "runs" / "bamsprod-seed0" / "history.json"
    args = [
        sys.executable, "-m", "larq_bamsprod.harness", "compare", "--model", "BinaryCNN",
        "--dataset", "fashion_mnist", "--optimizers", "bamsprod", "--epochs", "4",
        "--batch-size", "32", "--steps-per-epoch", "4", "--seeds", "0",
        "--data-dir", data_dir, "--output", str(killed), "--verbose", "0",
    ]
    rng = random.Random(0)
    delays = [0.0] + [rng.uniform(0.0, 0.8) for _ in range(3)]

    def recorded():
        if not history_file.exists():
            return 0
        return json.loads(history_file.read_text())["epochs_done"]

    kills, progress = 0, []
    for delay in delays:
        before = recorded()
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        launched = time.monotonic()
        while proc.poll() is None and time.monotonic() - launched < 300:
            if recorded() > before:
                time.sleep(delay)
                if proc.poll() is None:
                    proc.send_signal(signal.SIGKILL)
                    kills += 1
                break
            time.sleep(0.02)
        proc.wait(timeout=60)
        # Whatever was on disk at the kill is whole: every JSON file parses, and no epoch
        # recorded before the kill was lost.
        for path in killed.rglob("*.json"):
            json.loads(path.read_text())
        progress.append(recorded() - before)
    assert kills >= 3, f"only {kills} of {len(delays)} kills landed before the run ended"
    assert min(progress) >= 0, progress  # epochs recorded before a kill are kept
    _ok(_compare(data_dir, killed, optimizers="bamsprod", epochs=4))
    assert _losses(_history(killed, "bamsprod")) == _losses(_history(reference, "bamsprod"))


@pytest.mark.parametrize(
    "flag, value, message",
    [
        ("--model", "ResNet9000", "valid"),
        ("--dataset", "cifar11", "valid"),
        ("--optimizers", "bamsprod,lion", "valid optimizers: bamsprod, bop, adam"),
        ("--hparam", "adam.momentum=0.9", "unknown hyperparameter 'momentum' for optimizer"),
        ("--model-arg", "widthmult=0.5",
         "model BinaryCNN takes no argument 'widthmult'; valid: none"),
        ("--model-arg", "width_multiplier", "--model-arg takes NAME=VALUE"),
        ("--validation-size", "60000", "--validation-size must be smaller than the training"),
        ("--reference", "sgd", "reference 'sgd' is not among the compared optimizers"),
    ],
)
def test_cli_bad_names_list_the_valid_choices(flag, value, message, capsys):
    assert cli.main(["compare", flag, value]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


@pytest.mark.parametrize("value, message", [
    ("widthmult=0.5", "takes no argument 'widthmult'; valid: width_multiplier, stem"),
    ("width_multiplier=-1", "--model-arg: width_multiplier must be a number > 0, received "
                            "width_multiplier=-1"),
    ("stem=giant", "--model-arg: stem must be one of ['auto', 'cifar', 'imagenet']"),
])
def test_cli_bad_model_args_are_named_with_the_valid_ones(value, message, capsys):
    argv = ["compare", "--model", "BinaryMobileNetV2", "--model-arg", value]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_model_args_are_recorded_and_count_as_a_fairness_setting(data_dir, tmp_path):
    mobilenet = ("--model", "BinaryMobileNetV2", "--test-subset", "32")
    out = _ok(_compare(data_dir, tmp_path, *mobilenet, "--model-arg", "width_multiplier=0.35",
                       optimizers="sgdm", epochs=1))
    assert "`BinaryMobileNetV2`(width_multiplier=0.35)" in out  # the table's header
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_args"] == {"width_multiplier": 0.35}
    # The argument reached the builder: the saved initial weights are width 0.35's.
    import h5py

    from larq_bamsprod.harness.catalogue import models

    with h5py.File(tmp_path / "init" / "seed0.weights.h5") as f:
        saved = []
        f.visititems(lambda _, obj: saved.append(obj.size) if isinstance(obj, h5py.Dataset)
                     else None)
    expected = {w: models.build_model("BinaryMobileNetV2", (28, 28, 1), 10,
                                      width_multiplier=w).count_params() for w in (0.35, 1.0)}
    assert sum(saved) == expected[0.35] != expected[1.0]
    result = _compare(data_dir, tmp_path, *mobilenet, "--model-arg", "width_multiplier=0.5",
                      optimizers="sgdm", epochs=1)
    assert result.returncode == 2
    assert "model_args.width_multiplier: 0.35 -> 0.5" in result.stderr


def test_initial_weights_are_written_through_a_file_of_this_process_only(data_dir, tmp_path):
    # Two processes starting the same seed of one --output (final runs split over processes)
    # once both wrote init/.tmp-seed0.weights.h5: h5py refused the second one (BlockingIOError,
    # a traceback) and the first one's weights were corrupted. Here another process's
    # temporary file is in the way, as a folder of that name: the run must not touch it, and
    # leave only its own result.
    other = tmp_path / "out" / "init" / ".tmp-seed0.weights.h5"
    other.mkdir(parents=True)
    _ok(_compare(data_dir, tmp_path / "out", optimizers="bamsprod", epochs=1))
    assert (tmp_path / "out" / "init" / "seed0.weights.h5").is_file()
    assert sorted(p.name for p in (tmp_path / "out" / "init").iterdir()) == [
        ".tmp-seed0.weights.h5", "seed0.weights.h5"]
