"""A refused command leaves nothing behind that changes the next one (issue 28, items 2-4).

Each bad command is run as a user runs it (a subprocess of ``larq-bamsprod``): exit status
2, one line on stderr naming the argument, the value and the fix, no traceback, and no
output folder; then the corrected command runs into the same folder.
"""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
import synthetic_fmnist  # noqa: E402
from cli_run import refusal_line, run_cli  # noqa: E402

pytestmark = pytest.mark.slow

COMPARE = "larq-bamsprod compare"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return synthetic_fmnist.make(tmp_path_factory.mktemp("fmnist"), n=64)


def _compare(data_dir, output, *extra, **kwargs):
    return run_cli("compare", "--dataset", "fashion_mnist", "--data-dir", data_dir,
                   "--optimizers", "sgd", "--epochs", "1", "--batch-size", "16",
                   "--steps-per-epoch", "2", "--validation-size", "16",
                   "--output", output, "--verbose", "0", *extra, **kwargs)


@pytest.mark.parametrize("extra, expected", [
    (["--image-size", "2"],
     "--image-size 2 is too small for BinaryCNN, whose smallest input is 8x8; give "
     "--image-size 8 or more"),
    (["--train-subset", "10"],
     "--train-subset 10 is smaller than --batch-size 16: no whole batch to train on; give "
     "--train-subset at least 16 or a smaller --batch-size"),
    (["--distribute", "multiworker"],
     "--distribute multiworker needs the TF_CONFIG environment variable on every worker"),
])
def test_a_refused_compare_writes_nothing_and_the_corrected_one_runs(
        data_dir, tmp_path, extra, expected):
    output = tmp_path / "out"
    line = refusal_line(_compare(data_dir, output, *extra, drop_env=("TF_CONFIG",)), COMPARE)
    assert expected in line
    assert not output.exists()
    result = _compare(data_dir, output)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (output / "results.json").exists()


@pytest.mark.parametrize("extra, expected", [
    (["--eval-every", "1000"],
     "--eval-every 1000 is more than the 2 steps of each run (1 epoch of 2 steps): no "
     "evaluation but the last; give --eval-every 2 or less, or leave it out"),
    (["--seeds", "0,,1"], "argument --seeds: expected comma-separated integers such as "
     "0,1,2, received '0,,1'"),
    (["--seeds", "0,0"], "argument --seeds: '0,0' names 0 more than once; give each seed "
     "once"),
])
def test_a_setting_that_cannot_be_meant_is_refused(data_dir, tmp_path, extra, expected):
    output = tmp_path / "out"
    assert expected in refusal_line(_compare(data_dir, output, *extra), COMPARE)
    assert not output.exists()


def test_a_stray_word_is_not_taken_for_the_output_folder(data_dir, tmp_path):
    result = run_cli("compare", "bamsprod,bop", "--data-dir", data_dir, cwd=tmp_path)
    line = refusal_line(result, "larq-bamsprod")
    assert "unrecognized arguments: bamsprod,bop" in line
    assert "--optimizers bamsprod,bop" in line
    assert list(tmp_path.iterdir()) == []


RECIPE = "larq-bamsprod recipe"


def _recipe(data_dir, output, *extra, **kwargs):
    return run_cli("recipe", "TrainQuickNet", "--dataset", "fashion_mnist", "--data-dir",
                   data_dir, "--epochs", "1", "--batch-size", "8", "--steps-per-epoch", "1",
                   "--output", output, *extra, **kwargs)


def test_a_recipe_refused_for_its_image_size_writes_nothing_and_the_corrected_one_runs(
        data_dir, tmp_path):
    output = tmp_path / "out"
    line = refusal_line(_recipe(data_dir, output, "--image-size", "8"), RECIPE)
    assert "--image-size 8: recipe TrainQuickNet's model cannot be built for inputs of " \
           "8x8x3" in line
    assert line.endswith("give --image-size 32 or more")
    assert not output.exists()
    result = _recipe(data_dir, output, "--image-size", "32")
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((output / "history.json").read_text())["input_shape"] == [32, 32, 3]


def test_a_recipe_on_a_dataset_that_cannot_be_downloaded_leaves_no_folder(tmp_path):
    # A proxy that refuses every connection: TFDS' download hosts count as unreachable.
    data_dir = tmp_path / "tfds"
    data_dir.mkdir()
    result = _recipe(data_dir, tmp_path / "out", "--dataset", "kmnist", "--image-size", "32",
                     env_extra={"http_proxy": "http://127.0.0.1:9",
                                "https_proxy": "http://127.0.0.1:9"}, timeout=120)
    line = refusal_line(result, RECIPE)
    assert f"dataset 'kmnist' is not prepared in data_dir='{data_dir}' and its download " \
           "hosts ['codh.rois.ac.jp'] cannot be reached" in line
    assert "tfds build kmnist" in line
    assert list(data_dir.iterdir()) == []
    assert not (tmp_path / "out").exists()
