"""What a rerun into an existing ``--output`` may change: runs are identified by every
setting that changes what they compute, hyperparameters included (config.py)."""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from larq_bamsprod.harness.catalogue import registry
from larq_bamsprod.harness.experiments import config
from larq_bamsprod.harness.files import write_json_atomic

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
import synthetic_fmnist  # noqa: E402
from configs import builtin_config  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def _recorded(tmp_path, **settings):
    """An output folder as compare leaves it for ``settings``."""
    cfg = builtin_config(output=str(tmp_path), **settings)
    write_json_atomic(tmp_path / "config.json",
                      {**cfg.to_json(),
                       "hyperparameters": config.resolved_hyperparameters(cfg)})
    return cfg


def _refusal(tmp_path, **settings):
    with pytest.raises(ValueError, match="holds a comparison with different settings") as err:
        config.check_resumable(builtin_config(output=str(tmp_path), **settings))
    return str(err.value)


def test_a_changed_hyperparameter_is_refused_and_named(tmp_path):
    _recorded(tmp_path, optimizers=["bamsprod", "bop"])
    message = _refusal(tmp_path, optimizers=["bamsprod", "bop"],
                       hparams={"bamsprod": {"learning_rate": 0.1}, "bop": {"gamma": 1e-3}})
    assert "bamsprod.learning_rate: 0.01 -> 0.1" in message
    assert "bop.gamma: 0.0001 -> 0.001" in message


def test_tune_checks_a_finished_comparison_on_settings_not_hyperparameters(tmp_path):
    """``tune``'s final comparison trains the chosen hyperparameters, so its rerun (to resume
    or to re-report) is checked on the settings only; a changed setting is still refused."""
    _recorded(tmp_path, optimizers=["bamsprod", "bop"],
              hparams={"bamsprod": {"learning_rate": 0.0055, "lr_decay": None}})
    config.check_resumable(builtin_config(output=str(tmp_path),
                                                optimizers=["bamsprod", "bop"]),
                           hyperparameters=False)
    with pytest.raises(ValueError, match="batch_size"):
        config.check_resumable(builtin_config(output=str(tmp_path), batch_size=64,
                                                    optimizers=["bamsprod", "bop"]),
                               hyperparameters=False)
    _refusal(tmp_path, optimizers=["bamsprod", "bop"])  # compare itself still refuses


def test_an_override_equal_to_the_default_is_the_same_run(tmp_path):
    _recorded(tmp_path, optimizers=["bamsprod"])
    config.check_resumable(builtin_config(
        output=str(tmp_path), optimizers=["bamsprod"],
        hparams={"bamsprod": {"learning_rate": 0.01}}))


def test_a_changed_default_counts_as_a_change(tmp_path, monkeypatch):
    # Resolved values are recorded, so a new library default cannot slip into old runs.
    _recorded(tmp_path, optimizers=["adam"])
    adam = registry.REGISTRY["adam"]
    monkeypatch.setitem(registry.REGISTRY, "adam", dataclasses.replace(
        adam, defaults={**adam.defaults, "learning_rate": 3e-4}))
    assert "adam.learning_rate: 0.001 -> 0.0003" in _refusal(tmp_path, optimizers=["adam"])


def test_seeds_and_optimizers_may_be_added(tmp_path):
    _recorded(tmp_path, optimizers=["bamsprod"], seeds=[0])
    config.check_resumable(builtin_config(
        output=str(tmp_path), optimizers=["bamsprod", "adam"], seeds=[0, 1],
        hparams={"adam": {"learning_rate": 0.1}}))


@pytest.mark.parametrize("change, expected", [
    ({"epochs": 6}, "epochs: 5 -> 6 (schedule 'cosine' spreads over all epochs"),
    ({"epochs": 4}, "epochs: 5 -> 4 (fewer epochs than the finished runs)"),
    ({"distribute": "mirrored"}, "distribute: None -> 'mirrored'"),
    ({"batch_size": 64}, "batch_size: 128 -> 64"),
])
def test_other_changes_are_refused(tmp_path, change, expected):
    _recorded(tmp_path)
    assert expected in _refusal(tmp_path, **change)


def test_epochs_may_grow_with_the_constant_schedule(tmp_path):
    _recorded(tmp_path, schedule="constant")
    config.check_resumable(builtin_config(output=str(tmp_path), schedule="constant",
                                                epochs=8))


def test_folders_from_before_the_record_are_checked_against_done_json(tmp_path):
    cfg = builtin_config(output=str(tmp_path), optimizers=["sgdm"])
    write_json_atomic(tmp_path / "config.json", cfg.to_json())  # no "hyperparameters"
    write_json_atomic(tmp_path / "runs" / "sgdm-seed0" / "done.json",
                      {"history": [], "hyperparameters": registry.describe("sgdm")})
    assert "sgdm.momentum: 0.9 -> 0.5" in _refusal(
        tmp_path, optimizers=["sgdm"], hparams={"sgdm": {"momentum": 0.5}})


# ------------------------------------------------------------------ the command itself


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return synthetic_fmnist.make(tmp_path_factory.mktemp("fmnist"), n=128)


def _compare(data_dir, output, *extra, optimizers="bamsprod", epochs=1, seeds="0",
             schedule="cosine", steps="2"):
    args = [sys.executable, "-m", "larq_bamsprod_cli", "compare", "--model", "BinaryCNN",
            "--dataset", "fashion_mnist", "--optimizers", optimizers, "--epochs", str(epochs),
            "--batch-size", "32", "--seeds", seeds, "--schedule", schedule,
            "--data-dir", data_dir, "--output", str(output), "--verbose", "0", *extra]
    if steps is not None:
        args += ["--steps-per-epoch", steps]
    # The command as installed (quiet start: stderr holds only the command's own lines).
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)


def _ok(result):
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def _state(output, name, seed=0):
    return json.loads((Path(output) / "runs" / f"{name}-seed{seed}" / "history.json").read_text())


def _history(output, name, seed=0):
    """One row per evaluation point."""
    return _state(output, name, seed)["rows"]


@pytest.mark.slow
def test_rerun_with_another_learning_rate_is_refused_and_changes_nothing(data_dir, tmp_path):
    _ok(_compare(data_dir, tmp_path))
    files = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    result = _compare(data_dir, tmp_path, "--hparam", "bamsprod.learning_rate=0.1")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "bamsprod.learning_rate: 0.01 -> 0.1" in lines[0], lines
    assert "finished earlier, skipped" not in result.stdout
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == files


@pytest.mark.slow
def test_a_finished_comparison_takes_more_seeds_and_optimizers(data_dir, tmp_path):
    _ok(_compare(data_dir, tmp_path))
    first = _history(tmp_path, "bamsprod")
    out = _ok(_compare(data_dir, tmp_path, "--hparam", "sgdm.learning_rate=0.05",
                       optimizers="bamsprod,sgdm", seeds="0,1"))
    assert out.count("finished earlier, skipped") == 1  # bamsprod seed 0
    assert _history(tmp_path, "bamsprod") == first
    recorded = json.loads((tmp_path / "config.json").read_text())
    assert recorded["seeds"] == [0, 1] and recorded["optimizers"] == ["bamsprod", "sgdm"]
    assert recorded["hyperparameters"]["sgdm"]["learning_rate"] == 0.05
    assert recorded["hyperparameters"]["bamsprod"]["learning_rate"] == 0.01
    for name, seed in (("sgdm", 0), ("sgdm", 1), ("bamsprod", 1)):
        assert _state(tmp_path, name, seed)["epochs_done"] == 1


@pytest.mark.slow
def test_a_rerun_naming_fewer_optimizers_keeps_every_finished_run_in_the_report(
        data_dir, tmp_path):
    _ok(_compare(data_dir, tmp_path, optimizers="bamsprod,sgdm"))
    out = _ok(_compare(data_dir, tmp_path, optimizers="adam"))
    assert "finished earlier, skipped" not in out  # only adam ran
    results = json.loads((tmp_path / "results.json").read_text())
    assert [row["optimizer"] for row in results["rows"]] == ["bamsprod", "sgdm", "adam"]
    table = (tmp_path / "results.md").read_text()
    assert all(f"| {name} " in table for name in ("bamsprod", "sgdm", "adam"))
    # Measured against the folder's first optimizer, as the full command would be, not
    # against the only one this rerun named.
    assert results["reference"] == "bamsprod"


@pytest.mark.slow
def test_a_rerun_finishing_some_seeds_reports_like_the_full_command(data_dir, tmp_path):
    """Two processes share a comparison's runs (one seed each, one only Adam): the report
    each leaves is the full command's: every seed in its header, Bop the reference, and
    every optimizer's --hparam kept in config.json."""
    adam = ("--hparam", "adam.learning_rate=0.003")
    _ok(_compare(data_dir, tmp_path, "--hparam", "bop.gamma=0.0002", *adam,
                 optimizers="bop,adam", seeds="0"))
    _ok(_compare(data_dir, tmp_path, *adam, optimizers="adam", seeds="1"))
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["reference"] == "bop"
    assert sorted((row["optimizer"], row["seeds"]) for row in results["rows"]) == [
        ("adam", 2), ("bop", 1)]
    assert "seeds [0, 1]," in (tmp_path / "results.md").read_text()
    recorded = json.loads((tmp_path / "config.json").read_text())
    assert recorded["hparams"] == {"bop": {"gamma": 0.0002},
                                   "adam": {"learning_rate": 0.003}}


@pytest.mark.slow
def test_more_epochs_with_the_constant_schedule_equal_a_longer_run(data_dir, tmp_path):
    # --eval-every given: the default spacing depends on the run's total steps, so a run
    # grown by an epoch would otherwise evaluate at other points than the longer run.
    every = ("--eval-every", "1")
    _ok(_compare(data_dir, tmp_path / "long", *every, epochs=2, schedule="constant"))
    _ok(_compare(data_dir, tmp_path / "grown", *every, epochs=1, schedule="constant"))
    out = _ok(_compare(data_dir, tmp_path / "grown", *every, epochs=2, schedule="constant"))
    assert "resumed after epoch 1" in out
    grown, long = _history(tmp_path / "grown", "bamsprod"), _history(tmp_path / "long", "bamsprod")

    def losses(history):
        return [(r["step"], r["train_loss"], r["val_loss"], r["val_accuracy"])
                for r in history]

    assert losses(grown) == losses(long)


@pytest.mark.slow
def test_a_grown_run_keeps_the_folders_evaluation_spacing(data_dir, tmp_path):
    """No --eval-every: the first comparison's default spacing is recorded and a run grown
    by more epochs keeps it, so it equals one longer run with that --eval-every; the default
    of the longer run would have evaluated elsewhere."""
    from larq_bamsprod.harness.runner.training import default_spacing

    # 1 epoch of 2 steps; one validation batch (12 examples held out of 128): the default
    # spacing is max(1, round(2 / 20), ceil(1 / 0.3)) = 4, more than the run: one point.
    _ok(_compare(data_dir, tmp_path / "grown", epochs=1, schedule="constant"))
    spacing = json.loads((tmp_path / "grown" / "config.json").read_text())["eval_spacing"]
    assert spacing == 4 == default_spacing(2, 1)
    assert [r["step"] for r in _history(tmp_path / "grown", "bamsprod")] == [2]
    # Grown to 50 epochs (100 steps), whose own default would be round(100 / 20) = 5.
    assert default_spacing(100, 1) == 5
    _ok(_compare(data_dir, tmp_path / "grown", epochs=50, schedule="constant"))
    _ok(_compare(data_dir, tmp_path / "long", "--eval-every", "4", epochs=50,
                 schedule="constant"))
    grown, long = _history(tmp_path / "grown", "bamsprod"), _history(tmp_path / "long", "bamsprod")
    assert [r["step"] for r in grown] == [2, *range(4, 101, 4)]

    def losses(history):
        return [(r["step"], r["train_loss"], r["val_loss"], r["val_accuracy"])
                for r in history]

    # The first part's point (step 2, its run's end) is the one row the longer run lacks.
    assert losses(grown)[1:] == losses(long)
    assert json.loads((tmp_path / "grown" / "config.json").read_text())["eval_spacing"] == 4


@pytest.mark.slow
def test_an_epoch_is_one_pass_over_the_dataset_in_data_dir(data_dir, tmp_path):
    # data_dir holds 128 training examples: 4 batches of 32, not 60000 // 32 (the published
    # size of Fashion-MNIST, which the step count was read from when --data-dir was ignored).
    _ok(_compare(data_dir, tmp_path, steps=None))
    # 12 of them (10%) are held out for validation: 116 // 32 = 3 steps.
    assert _history(tmp_path, "bamsprod")[-1]["step"] == 3  # the run's last step
