"""A user's own workload through ``compare`` and ``tune``: by command line (module, callable
and file forms) and by the Python API; bad workloads refused in one line before anything is
written; a rerun with changed data refused; a user's own optimizer beside BAMSProd.

The example workload is ``examples/own_workload.py`` (Fashion-MNIST read with NumPy from
Debian's files, standing for a user's arrays).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from cli_errors import one_error_line

from larq_bamsprod import harness
from larq_bamsprod.harness import cli
from larq_bamsprod.harness.workload import Workload, load_workload

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
FMNIST = Path(os.environ.get("LARQ_BAMSPROD_FASHION_MNIST_DIR",
                             "/usr/share/datasets/fashion-mnist"))
needs_fmnist = pytest.mark.skipif(not (FMNIST / "t10k-labels-idx1-ubyte.gz").is_file(),
                                  reason="Debian's dataset-fashion-mnist (make data)")
QUICK = ["--epochs", "1", "--steps-per-epoch", "3", "--seeds", "0", "--verbose", "0"]


def _model(classes=3, shape=(6,)):
    def build():
        return tf.keras.Sequential([tf.keras.Input(shape), tf.keras.layers.Dense(classes),
                                    tf.keras.layers.Softmax()])
    return build


def _arrays(n=64, classes=3, seed=0, features=6):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    x = (rng.normal(size=(n, features)) + y[:, None]).astype(np.float32)
    return x, y


def _toy(**kwargs):
    settings = {"name": "toy", "model": _model(), "train": _arrays(), "test": _arrays(32, seed=1),
                "batch_size": 8, "validation_size": 16}
    return Workload(**{**settings, **kwargs})


def _cli(args, cwd=REPO, env=None):
    """The real command in a fresh interpreter (op determinism is process-global)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    return subprocess.run([sys.executable, "-m", "larq_bamsprod_cli", *args], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=900)


def _ok(result):
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def _results(output):
    return json.loads((Path(output) / "results.json").read_text())


# --- the object ------------------------------------------------------------------------------

def test_defaults_hold_out_validation_by_the_fixed_seeded_rule():
    from larq_bamsprod.harness.workload import split_masks

    x, y = _arrays(64)
    arrays = _toy(train=(x, y)).arrays()
    keep, held = split_masks(64, 16)
    np.testing.assert_array_equal(arrays["validation"][0], x[held])
    np.testing.assert_array_equal(arrays["train"][0], x[keep])
    assert len(arrays["train"][0]) == 48 and len(arrays["test"][0]) == 32


def test_a_dataset_of_examples_is_read_as_the_same_arrays():
    x, y = _arrays(64)
    from_arrays = _toy(train=(x, y))
    from_dataset = _toy(train=tf.data.Dataset.from_tensor_slices((x, y)))
    assert from_arrays.fingerprint() == from_dataset.fingerprint()


def test_a_changed_example_changes_the_fingerprint():
    x, y = _arrays(64)
    changed = x.copy()
    changed[5, 0] += 1.0
    assert (_toy(train=(x, y)).fingerprint()["train"]["sha256"]
            != _toy(train=(changed, y)).fingerprint()["train"]["sha256"])


def test_every_run_of_a_seed_builds_the_same_initial_weights():
    workload = _toy()
    first = [w.numpy() for w in workload.build_model(seed=3).weights]
    second = [w.numpy() for w in workload.build_model(seed=3).weights]
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"train": (np.zeros((10, 6)), np.zeros(9))}, ValueError,
     "train: x has 10 examples but y has 9"),
    ({"train": (np.zeros((0, 6)), np.zeros(0))}, ValueError, "train is empty"),
    ({"train": np.zeros((10, 6))}, TypeError, r"train must be \(x, y\) arrays"),
    ({"model": lambda: "not a model"}, TypeError, "must return an uncompiled tf.keras.Model"),
    ({"model": _model(shape=(5,))}, ValueError, r"does not fit model .* give data of the "
     "model's input shape"),
    ({"model": _model(classes=2)}, ValueError, r"labels run from 0 to 2, outside the model's "
     r"2 classes \(0 to 1\); give the model 3 outputs"),
    ({"batch_size": 100}, ValueError, "fewer than batch_size=100"),
    ({"validation_size": 64}, ValueError, "validation_size must be smaller than train"),
])
def test_bad_workloads_are_refused_naming_the_problem(kwargs, error, match):
    with pytest.raises(error, match=match):
        _toy(**kwargs).check()


@pytest.mark.parametrize("kwargs, match", [
    ({"name": ""}, "name must be a non-empty string"),
    ({"model": "BinaryCNN"}, "model must be a zero-argument callable"),
    ({"test": None}, "test is required"),
    ({"batch_size": 0}, "batch_size must be a positive integer, received batch_size=0"),
    ({"metric": "f1"}, "metric must be one of accuracy, perplexity, received metric='f1'"),
])
def test_bad_arguments_are_refused_when_the_workload_is_made(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        _toy(**kwargs)


# --- loading ``--workload`` ----------------------------------------------------------------

def _module(tmp_path, text, name="wl_mod"):
    (tmp_path / f"{name}.py").write_text(text)
    return tmp_path


TOY_MODULE = """
import numpy as np, tensorflow as tf
from larq_bamsprod.harness import Workload
def build():
    return tf.keras.Sequential([tf.keras.Input((6,)), tf.keras.layers.Dense(3),
                                tf.keras.layers.Softmax()])
rng = np.random.default_rng(0)
y = rng.integers(0, 3, 64); x = (rng.normal(size=(64, 6)) + y[:, None]).astype('float32')
toy = Workload(name='toy', model=build, train=(x, y), test=(x[:32], y[:32]), batch_size=8,
               validation_size=16)
def make():
    return toy
number = 3
"""


@pytest.mark.parametrize("spec, match", [
    ("nothing_here", "takes MODULE:NAME or path/to/file.py:NAME"),
    ("no_such_module_xyz:toy", "no module named 'no_such_module_xyz' in the current folder"),
    ("wl_mod:missing", r"module wl_mod has no 'missing'; its workloads: toy"),
    ("wl_mod:number", "number is a int, not a larq_bamsprod.harness.Workload"),
    ("missing_file.py:toy", "no file 'missing_file.py'"),
])
def test_a_bad_workload_spec_says_what_is_wrong(spec, match, tmp_path, monkeypatch):
    monkeypatch.chdir(_module(tmp_path, TOY_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ValueError, match=match):
        load_workload(spec, "--workload")


def test_module_callable_and_file_forms_load_the_same_workload(tmp_path, monkeypatch):
    monkeypatch.chdir(_module(tmp_path, TOY_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    prints = {load_workload(spec).fingerprint()["train"]["sha256"]
              for spec in ("wl_mod:toy", "wl_mod:make", str(tmp_path / "wl_mod.py") + ":toy")}
    assert len(prints) == 1


@pytest.mark.parametrize("extra, match", [
    (["--workload", "wl_mod:toy", "--model", "BinaryCNN"],
     "--workload brings its own model and data; drop --model"),
    (["--workload", "wl_mod:toy", "--dataset", "mnist", "--model-arg", "a=1"],
     "drop --dataset, --model-arg"),
    (["--workload", "wl_mod:missing"], "has no 'missing'"),
    (["--workload", "wl_mod:number"], "not a larq_bamsprod.harness.Workload"),
    (["--workload", "wl_mod:toy", "--batch-size", "500"], "fewer than batch_size=500"),
])
def test_cli_refuses_a_bad_workload_in_one_line_writing_nothing(extra, match, tmp_path,
                                                                 monkeypatch, capsys):
    monkeypatch.chdir(_module(tmp_path, TOY_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "out"
    assert cli.main(["compare", *extra, "--output", str(out), *QUICK]) == 2
    assert match in one_error_line(capsys)
    assert not out.exists()


# --- through compare and tune ----------------------------------------------------------------

@pytest.mark.slow
@needs_fmnist
def test_example_workload_through_compare_by_module_callable_and_file(tmp_path):
    # The module form from the examples folder; the callable and the file form from the
    # repository: all three train the same small workload to the same numbers.
    rows = {}
    for form, spec, cwd in (("module", "own_workload:small", EXAMPLES),
                            ("file", "examples/own_workload.py:small", REPO)):
        out = tmp_path / form
        _ok(_cli(["compare", "--workload", spec, "--optimizers", "bamsprod,bop", *QUICK,
                  "--output", str(out)], cwd=cwd))
        rows[form] = _results(out)["rows"]
        assert (out / "curves.png").is_file()
        config = json.loads((out / "config.json").read_text())
        assert config["workload"] == "own-bnn-fmnist-small"
        assert config["data"]["train"]["examples"] == 512  # as given; 128 are held out
        assert _results(out)["train_size"] == 384
    assert rows["module"] == rows["file"] or _same_numbers(rows["module"], rows["file"])


def _same_numbers(a, b):
    keys = ("optimizer", "final_val_accuracy_mean", "final_test_accuracy_mean")
    return [{k: r[k] for k in keys} for r in a] == [{k: r[k] for k in keys} for r in b]


@pytest.mark.slow
@needs_fmnist
def test_example_workload_through_tune_by_cli(tmp_path):
    out = tmp_path / "tune"
    _ok(_cli(["tune", "--workload", "own_workload:small", "--optimizers", "bamsprod,adam",
              "--trials", "2", *QUICK, "--output", str(out)], cwd=EXAMPLES))
    tuned = json.loads((out / "tune.json").read_text())
    assert set(tuned["optimizers"]) == {"bamsprod", "adam"}
    assert all(len(info["trials"]) == 2 for info in tuned["optimizers"].values())
    assert {r["optimizer"] for r in _results(out)["rows"]} == {"bamsprod", "adam"}


@pytest.mark.slow
@needs_fmnist
def test_example_workload_through_the_api_with_a_users_own_optimizer(tmp_path):
    sys.path.insert(0, str(EXAMPLES))
    try:
        import own_workload
    finally:
        sys.path.remove(str(EXAMPLES))
    workload = own_workload.small()
    rows = harness.compare(workload, optimizers=[
        "bamsprod", ("my_sgd", lambda shape: tf.keras.optimizers.legacy.SGD(
            0.05 if shape is None else _scaled(0.05, shape)))],
        epochs=1, steps_per_epoch=3, output=str(tmp_path / "api"), verbose=0,
        deterministic=False, log=lambda _: None)  # determinism is process-wide: not here
    assert [r["optimizer"] for r in rows] == ["bamsprod", "my_sgd"]
    assert all(0 <= r["final_test_accuracy_mean"] <= 1 for r in rows)
    # The CLI and the API write the same files.
    assert {p.name for p in (tmp_path / "api").iterdir()} >= {
        "config.json", "results.json", "results.md", "results.csv", "curves.png", "runs"}
    tuned = harness.tune(workload, optimizers=["bamsprod"], trials=2, epochs=1,
                         steps_per_epoch=3, output=str(tmp_path / "tune"), verbose=0,
                         deterministic=False, log=lambda _: None)
    assert len(tuned["tune"]["optimizers"]["bamsprod"]["trials"]) == 2
    assert [r["optimizer"] for r in tuned["rows"]] == ["bamsprod"]


def _scaled(base, shape):
    from larq_bamsprod.schedules import ScaledSchedule

    return ScaledSchedule(base, shape)


@pytest.mark.slow
def test_a_rerun_with_changed_data_is_refused_naming_the_difference(tmp_path):
    _module(tmp_path, TOY_MODULE)
    out = tmp_path / "out"
    args = ["compare", "--workload", "wl_mod:toy", "--optimizers", "adam", "--output",
            str(out), *QUICK]
    _ok(_cli(args, cwd=tmp_path))
    _module(tmp_path, TOY_MODULE.replace("+ y[:, None]", "+ 2 * y[:, None]"))
    result = _cli(args, cwd=tmp_path)
    assert result.returncode == 2
    line = result.stderr.strip()
    assert len(line.splitlines()) == 1, result.stderr
    assert "holds a comparison with different settings" in line
    assert "data.train.sha256" in line and "data.test.sha256" in line
    assert len(list((out / "runs").iterdir())) == 1  # nothing trained the second time


def test_an_unregistered_user_optimizer_name_is_refused_if_it_is_a_built_in():
    with pytest.raises(ValueError, match="optimizer name 'adam' is a built-in optimizer's"):
        harness.compare(_toy(), optimizers=[("adam", lambda: None)], output="/nonexistent/x")
