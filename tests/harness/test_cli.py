"""The ``larq-bamsprod`` command as a user meets it: bad input is refused before anything is
written, in one line naming the argument, the value and the fix; a quiet start; ``list``."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from larq_bamsprod.harness import cli

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
import synthetic_fmnist  # noqa: E402
from cli_errors import one_error_line  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return synthetic_fmnist.make(tmp_path_factory.mktemp("fmnist"), n=64)


def _compare_argv(data_dir, output, *extra):
    return ["compare", "--dataset", "fashion_mnist", "--data-dir", data_dir,
            "--optimizers", "bamsprod,bop", "--epochs", "1", "--batch-size", "32",
            "--steps-per-epoch", "2", "--output", str(output), "--verbose", "0", *extra]




@pytest.mark.parametrize("extra, expected", [
    (["--hparam", "bamsprod.learning_rate=-1"],
     "--hparam bamsprod.learning_rate=-1: learning_rate must be > 0, received learning_rate=-1"),
    (["--hparam", "bamsprod.beta_1=1.5"],
     "--hparam bamsprod.beta_1=1.5: beta_1 must be in [0, 1), received beta_1=1.5"),
    (["--hparam", "bamsprod.bound_target=max"],
     "optimizer bamsprod (set with --hparam bamsprod.NAME=VALUE): bound_target must be a "
     "float > 0, one of ['mean'] or None, received bound_target='max'"),
    (["--hparam", "bamsprod.learning_rate=abc"],
     "--hparam bamsprod.learning_rate=abc: learning_rate must be a number, received "
     "learning_rate='abc'"),
    (["--hparam", "bop.gamma=0"], "gamma must be > 0, received gamma=0"),
    (["--hparam", "adam.learning_rate=0.1"],
     "--hparam adam.learning_rate=... is for optimizer 'adam', which is not in --optimizers "
     "bamsprod,bop; add adam to --optimizers or drop the --hparam"),
    (["--dataset", "imagenet2012"],
     "dataset 'imagenet2012' is not prepared in data_dir="),
])
def test_bad_input_is_refused_in_one_line_before_anything_is_written(
        data_dir, tmp_path, capsys, extra, expected):
    output = tmp_path / "out"
    assert cli.main(_compare_argv(data_dir, output, *extra)) == 2
    line = one_error_line(capsys)
    assert expected in line
    assert not output.exists()


def test_an_existing_file_as_output_is_refused(data_dir, tmp_path, capsys):
    output = tmp_path / "results.txt"
    output.write_text("keep me")
    assert cli.main(_compare_argv(data_dir, output)) == 2
    assert f"--output '{output}' is a file, not a folder" in one_error_line(capsys)
    assert output.read_text() == "keep me"


def test_an_output_that_cannot_be_created_is_refused(data_dir, tmp_path, capsys):
    (tmp_path / "file").write_text("")
    output = tmp_path / "file" / "out"
    assert cli.main(_compare_argv(data_dir, output)) == 2
    assert f"--output '{output}' cannot be created: '{tmp_path / 'file'}' is a file" in (
        one_error_line(capsys))


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into a read-only folder")
def test_an_unwritable_output_is_refused(data_dir, tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    assert cli.main(_compare_argv(data_dir, locked / "out")) == 2
    assert "is not writable" in one_error_line(capsys)


def test_an_unwritable_system_path_is_refused(data_dir, capsys):
    # /proc accepts no new files, even from root.
    assert cli.main(_compare_argv(data_dir, "/proc/larq-bamsprod-out")) == 2
    assert "--output '/proc/larq-bamsprod-out' is not writable" in one_error_line(capsys)


@pytest.mark.parametrize("argv, expected", [
    (["compare", "--epochs", "0"],
     "larq-bamsprod compare: error: argument --epochs: expected a positive integer, "
     "received '0'; see `larq-bamsprod compare --help`"),
    (["compare", "--seeds", "a"], "argument --seeds: expected comma-separated integers"),
    (["recipe"], "larq-bamsprod recipe: error: the following arguments are required: NAME"),
    (["train"], "larq-bamsprod: error: argument command: invalid choice: 'train'"),
])
def test_usage_errors_are_one_line_without_the_usage_block(argv, expected, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert expected in err and "usage:" not in err


def test_recipe_takes_hparams_as_compare_does(data_dir, tmp_path, capsys):
    argv = ["recipe", "TrainQuickNet", "--dataset", "fashion_mnist", "--data-dir", data_dir,
            "--output", str(tmp_path / "out")]
    assert cli.main(argv + ["--hparam", "bamsprod.learning_rate=-0.1"]) == 2
    line = one_error_line(capsys, "larq-bamsprod recipe")
    assert "--hparam bamsprod.learning_rate=-0.1: learning_rate must be > 0" in line
    assert cli.main(argv + ["--hparam", "adam.learning_rate=0.1"]) == 2
    line = one_error_line(capsys, "larq-bamsprod recipe")
    assert ("--hparam 'adam.learning_rate=0.1' is for optimizer 'adam', but --optimizer is "
            "bamsprod; write --hparam bamsprod.NAME=VALUE") in line
    assert cli.main(argv + ["--hparam", "bamsprod.bound_target=max"]) == 2
    assert "bound_target='max'" in one_error_line(capsys, "larq-bamsprod recipe")
    assert not (tmp_path / "out").exists()


def test_recipe_short_and_qualified_hparams_are_the_same():
    assert cli._recipe_hparams("bamsprod", ["learning_rate=0.1"]) == {"learning_rate": 0.1}
    assert cli._recipe_hparams("bamsprod", ["bamsprod.learning_rate=0.1"]) == {
        "learning_rate": 0.1}


def _launch(*argv, env_extra=None):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env.update(PYTHONPATH=str(REPO), **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "larq_bamsprod_cli", *argv], env=env,
                          capture_output=True, text=True, timeout=300, cwd=REPO)


@pytest.mark.slow
def test_help_starts_without_tensorflow_log_noise():
    result = _launch("--help")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.startswith("usage: larq-bamsprod")
    assert "--tf-logs" in result.stdout


@pytest.mark.slow
def test_a_command_starts_without_tensorflow_log_noise():
    # `import larq_bamsprod` no longer imports TensorFlow: the launcher must import it
    # while descriptor 2 is hidden, or its start-up log reaches the screen.
    result = _launch("list")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "BinaryCNN" in result.stdout


@pytest.mark.slow
def test_errors_are_the_only_line_on_stderr():
    result = _launch("compare", "--hparam", "bamsprod.learning_rate=-1")
    assert result.returncode == 2
    assert result.stderr.startswith("larq-bamsprod compare: error: --hparam bamsprod.")
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_top_level_verbose_is_told_from_the_commands_own():
    import larq_bamsprod_cli

    assert larq_bamsprod_cli.wants_tf_logs(["--tf-logs", "list"])
    assert not larq_bamsprod_cli.wants_tf_logs(["compare", "--verbose", "2"])
    assert not larq_bamsprod_cli.wants_tf_logs(["compare", "--tf-logs"])
    assert not larq_bamsprod_cli.wants_tf_logs(["--help"])


def test_list_marks_installed_datasets_and_how_to_get_the_others(data_dir, capsys):
    assert cli.main(["list", "--data-dir", data_dir]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ")}
    assert rows["fashion_mnist"].split(None, 1)[1] == "installed"
    assert "not installed; to get it: " in rows["cifar10"]
    assert "tfds build cifar10" in rows["cifar10"]
    assert "ILSVRC2012_img_train.tar" in rows["imagenet2012"]
    assert f"TFDS data_dir {data_dir}" in out


def test_list_gives_the_models_smallest_input(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ")}
    assert rows["QuickNetSmall"].endswith(
        "any input size (enlarged to 32x32 inside the model below that)")
    assert rows["BinaryAlexNet"].endswith("enlarged to 64x64 inside the model below that)")
    # BinaryCNN pools 2x2 three times (valid): 8 -> 4 -> 2 -> 1, but 7 -> 3 -> 1 -> 0.
    assert rows["BinaryCNN"].endswith("min input 8x8")
    assert rows["BinaryResNet34"].endswith("min input 1x1")
    assert "TrainQuickNet" in out


@pytest.mark.slow
def test_ctrl_c_ends_with_one_line_saying_how_to_resume(data_dir, tmp_path):
    import signal
    import time

    argv = _compare_argv(data_dir, tmp_path, "--epochs", "20")
    argv[argv.index("--optimizers") + 1] = "sgdm"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    # A terminal's Ctrl-C reaches a process whose SIGINT is at its default. When this suite
    # itself runs in the background of a non-interactive shell (`make test &`), SIGINT is
    # ignored and children inherit that, so the child gets the default back first.
    proc = subprocess.Popen([sys.executable, "-m", "larq_bamsprod_cli", *argv], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    history = tmp_path / "runs" / "sgdm-seed0" / "history.json"
    deadline = time.monotonic() + 300
    while not history.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == [
        "larq-bamsprod compare: interrupted; finished epochs are saved, run the same "
        "command again to resume"]


def test_input_note_names_the_model_the_sizes_and_nothing_for_native_inputs():
    from larq_bamsprod.harness.catalogue import models

    assert models.input_note("quicknetsmall", (28, 28, 1)) == (
        "QuickNetSmall needs inputs of at least 32x32: the 28x28 images are enlarged to "
        "32x32 (bilinear) inside the model")
    assert models.input_note("QuickNetSmall", (32, 32, 3)) is None
    assert models.input_note("BinaryCNN", (28, 28, 1)) is None


@pytest.mark.slow
def test_compare_says_once_and_in_results_md_that_images_are_enlarged(data_dir, tmp_path):
    argv = _compare_argv(data_dir, tmp_path, "--model", "QuickNetSmall", "--test-subset", "32")
    argv[argv.index("--optimizers") + 1] = "sgd"
    argv[argv.index("--steps-per-epoch") + 1] = "1"
    result = subprocess.run([sys.executable, "-m", "larq_bamsprod_cli", *argv],
                            env={**os.environ, "PYTHONPATH": str(REPO)},
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    note = ("Note: QuickNetSmall needs inputs of at least 32x32: the 28x28 images are "
            "enlarged to 32x32 (bilinear) inside the model.")
    assert result.stdout.count(note) == 2  # once when it starts, once in the table it prints
    assert result.stdout.splitlines()[0] == note
    assert note in (tmp_path / "results.md").read_text()


def test_a_multi_paragraph_error_is_told_in_one_line(data_dir, tmp_path, capsys):
    argv = ["recipe", "TrainQuickNet", "--data-dir", data_dir, "--output",
            str(tmp_path / "out"), "--set", "nonsense_field=3"]
    assert cli.main(argv) == 2
    assert "Key 'nonsense_field' does not correspond to any field of component " in (
        one_error_line(capsys, "larq-bamsprod recipe"))


def test_the_names_help_lists_are_the_catalogues():
    from larq_bamsprod.harness.catalogue import data, names, registry
    from larq_bamsprod.harness.experiments import config

    assert names.OPTIMIZERS == tuple(registry.REGISTRY)[:len(names.OPTIMIZERS)]
    assert names.COMPARED_BY_DEFAULT == registry.COMPARED_BY_DEFAULT
    assert names.DATASETS == tuple(sorted(data.DATASETS))
    assert names.SCHEDULES == config.SCHEDULES


@pytest.mark.parametrize("argv", [["--help"], ["compare", "--help"], ["tune", "-h"],
                                  ["evidence", "--help"], []])
def test_help_imports_neither_tensorflow_nor_the_library(argv):
    # What makes --help take 8-15 s: importing TensorFlow (through larq_bamsprod).
    code = ("import sys, larq_bamsprod_cli\n"
            "try:\n"
            f"    larq_bamsprod_cli.main({argv!r})\n"
            "except SystemExit as exit_:\n"
            "    print('exit', exit_.code)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('tensorflow', 'keras', 'larq', 'tf_keras')))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    last = result.stdout.strip().splitlines()[-2:]
    assert last == [f"exit {2 if not argv else 0}", "[]"], result.stdout[-2000:] + result.stderr


def test_a_bad_recipe_set_is_blamed_on_set(data_dir, tmp_path, capsys):
    argv = ["recipe", "TrainQuickNet", "--data-dir", data_dir, "--output",
            str(tmp_path / "out"), "--set", "optimizer_hparams={'learning_rate': -1}"]
    assert cli.main(argv) == 2
    line = one_error_line(capsys, "larq-bamsprod recipe")
    assert line.startswith("larq-bamsprod recipe: error: --set optimizer_hparams="
                           "{'learning_rate': -1}: learning_rate must be > 0")
    assert "--hparam" not in line
    assert not (tmp_path / "out").exists()


def test_every_image_model_has_a_smallest_input_of_at_least_one(capsys):
    assert cli.main(["list"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if "input" in line]
    assert not [row for row in rows if "0x0" in row], rows


def test_binary_cnns_smallest_input_is_where_building_it_starts_to_work():
    import tensorflow as tf

    from larq_bamsprod.harness.catalogue import models

    side = models.smallest_input("BinaryCNN")
    models.build_model("BinaryCNN", (side, side, 1), 10)
    with pytest.raises(Exception, match="Negative dimension size"):
        models.build_model("BinaryCNN", (side - 1, side - 1, 1), 10)
    tf.keras.backend.clear_session()
