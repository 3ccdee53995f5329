"""The comparison's numbers, checked against values worked out by hand on fixed histories:
time to target, speed-ups, paired 95% intervals, verdicts, and the tables."""

import math

import pytest
from configs import builtin_config

from larq_bamsprod.harness.experiments import compare
from larq_bamsprod.harness.reports import stats, summary, tables


def _rows(val_accuracies, steps=(10, 20, 30)):
    return [
        {"step": s, "val_accuracy": a, "val_loss": 1.0 - a, "train_loss": 1.0 / (i + 1),
         "train_seconds": s / 10, "step_seconds_median": 0.01}
        for i, (s, a) in enumerate(zip(steps, val_accuracies))
    ]


def _result(val_accuracies, test_accuracy):
    rows = _rows(val_accuracies)
    return {"history": rows,
            "final": {"val_accuracy": rows[-1]["val_accuracy"], "test_accuracy": test_accuracy},
            "best": {"test_accuracy": test_accuracy}, "train_seconds": 3.0, "eval_seconds": 1.0}


# Three seeds. bop's final validation accuracies 0.7, 0.8, 0.9; the tests below set the
# target to 0.8 (the default, the lowest of them, 0.7, is tested on its own).
RESULTS = {
    ("bop", 0): _result([0.5, 0.6, 0.7], 0.70),  # never reaches 0.8
    ("bop", 1): _result([0.5, 0.7, 0.8], 0.75),  # step 30
    ("bop", 2): _result([0.6, 0.7, 0.9], 0.80),  # step 30
    ("bamsprod", 0): _result([0.8, 0.85, 0.86], 0.80),  # step 10
    ("bamsprod", 1): _result([0.7, 0.8, 0.82], 0.85),  # step 20
    ("bamsprod", 2): _result([0.81, 0.9, 0.91], 0.92),  # step 10
    ("adam", 0): _result([0.5, 0.55, 0.6], 0.60),  # never
    ("adam", 1): _result([0.6, 0.7, 0.79], 0.80),  # never
    ("adam", 2): _result([0.7, 0.8, 0.85], 0.79),  # step 20
    ("sgdm", 0): _result([0.1, 0.2, 0.3], 0.50),
    ("sgdm", 1): _result([0.1, 0.2, 0.3], 0.55),
    ("sgdm", 2): _result([0.1, 0.2, 0.3], 0.60),
}


@pytest.fixture(scope="module")
def rows():
    return {r["optimizer"]: r for r in summary.summarize(RESULTS, "bop", target=0.8)["rows"]}


def test_default_target_is_the_lowest_mean_final_validation_accuracy():
    # Means of the final validation accuracies: bop 0.8, bamsprod 0.8633, adam 0.7467.
    without_sgdm = {k: v for k, v in RESULTS.items() if k[0] != "sgdm"}
    result = summary.summarize(without_sgdm, "bop")
    assert result["target"] == pytest.approx((0.6 + 0.79 + 0.85) / 3)
    assert result["target_rule"] == summary.WORST_MEAN
    assert summary.summarize(RESULTS, "bop")["target"] == pytest.approx(0.3)  # sgdm's
    given = summary.summarize(RESULTS, "bop", target=0.5)
    assert given["target"] == 0.5 and given["target_rule"] == summary.GIVEN


@pytest.mark.parametrize("order", [("bop", "bamsprod", "adam"), ("adam", "bamsprod", "bop"),
                                   ("bamsprod", "adam", "bop")])
@pytest.mark.parametrize("reference", ["bop", "bamsprod", "adam"])
def test_default_target_and_ladder_ignore_the_order_and_the_reference(order, reference):
    results = {(opt, seed): RESULTS[(opt, seed)] for opt in order for seed in (2, 0, 1)}
    result = summary.summarize(results, reference)
    assert result["target"] == pytest.approx((0.6 + 0.79 + 0.85) / 3)
    # First evaluations: bop 0.5, 0.5, 0.6; bamsprod 0.8, 0.7, 0.81; adam 0.5, 0.6, 0.7:
    # median 0.6; levels 0.6 + f * (target - 0.6).
    target = (0.6 + 0.79 + 0.85) / 3
    assert result["targets"] == pytest.approx([0.6 + f * (target - 0.6)
                                               for f in (0.25, 0.5, 0.75, 1.0)])


# Ladder and censoring by hand. Final validation means: a 0.75, b 0.55 -> target 0.55. First
# evaluations 0.2, 0.4, 0.3, 0.3 -> median 0.3; levels 0.3625, 0.425, 0.4875, 0.55.
LADDER_RESULTS = {
    ("a", 0): _result([0.2, 0.5, 0.8], 0.8),
    ("a", 1): _result([0.4, 0.6, 0.7], 0.7),
    ("b", 0): _result([0.3, 0.4, 0.5], 0.5),  # never reaches 0.4875 or 0.55
    ("b", 1): _result([0.3, 0.45, 0.6], 0.6),
}


def test_ladder_levels_and_steps_by_hand():
    result = summary.summarize(LADDER_RESULTS, "a")
    assert result["targets"] == pytest.approx([0.3625, 0.425, 0.4875, 0.55])
    rows = {r["optimizer"]: r for r in result["rows"]}
    assert rows["a"]["steps_to_targets"] == [[20, 10], [20, 20], [20, 20], [30, 20]]
    assert rows["b"]["steps_to_targets"] == [[20, 20], [30, 20], [30, 30], [None, 30]]
    assert rows["b"]["seconds_to_targets"][1] == [3.0, 2.0]
    # The last level is the target itself.
    assert rows["b"]["steps_to_targets"][-1] == rows["b"]["steps_to_target"]


def test_a_miss_is_censored_not_dropped():
    # b's seed 0 misses 0.55: the median over [never, 30] is infinite, not 30.
    assert stats.median_steps([None, 30]) == math.inf
    assert stats.median_steps([None, 30, 20]) == 30
    text = tables.ladder_markdown(summary.summarize(LADDER_RESULTS, "a"))
    # Seconds are steps / 10 in these histories.
    assert _table_row(text, "b") == ["b", "20 / 2.0 s (2/2)", "25 / 2.5 s (2/2)",
                                     "30 / 3.0 s (2/2)", "never (1/2)"]
    assert _table_row(text, "a")[4] == "25 / 2.5 s (2/2)"


def _table_row(text, first):
    line = next(line for line in text.splitlines() if line.startswith(f"| {first} |"))
    return [c.strip() for c in line.strip("|").split("|")]


def test_time_to_target_is_the_first_evaluation_at_or_above_it():
    rows = _rows([0.5, 0.7, 0.8])
    assert stats.time_to_target(rows, 0.7) == (20, 2.0)
    assert stats.time_to_target(rows, 0.5) == (10, 1.0)
    assert stats.time_to_target(rows, 0.81) == (None, None)


def test_steps_to_target_per_seed(rows):
    assert rows["bop"]["steps_to_target"] == [None, 30, 30]
    assert rows["bamsprod"]["steps_to_target"] == [10, 20, 10]
    assert rows["bamsprod"]["seconds_to_target"] == [1.0, 2.0, 1.0]
    assert rows["adam"]["steps_to_target"] == [None, None, 20]
    assert rows["adam"]["target_reached"] == "1/3"


@pytest.mark.parametrize("reference, steps, expected", [
    (40, 20, 2.0), (30, 20, 1.5), (40, None, 0.0), (None, 20, math.inf), (None, None, None),
])
def test_speedup_counts_never_as_zero_or_infinity(reference, steps, expected):
    assert stats.speedup(reference, steps) == expected


def test_speedup_median_over_seeds_with_never(rows):
    # bamsprod: seed 0 only the reference never reaches -> inf; 30/20; 30/10 -> median 3.
    assert rows["bamsprod"]["speedup_per_seed"] == [math.inf, 1.5, 3.0]
    assert rows["bamsprod"]["speedup_median"] == 3.0
    # adam: seed 0 neither reaches (left out); seed 1 only adam never -> 0; 30/20.
    assert rows["adam"]["speedup_per_seed"] == [None, 0.0, 1.5]
    assert rows["adam"]["speedup_median"] == 0.75


def test_t_interval_by_hand():
    # mean 0.03, sd 0.02, n 3: half width t(0.975, 2) * 0.02 / sqrt(3) = 4.3027 * 0.011547
    iv = stats.mean_interval([0.01, 0.03, 0.05])
    assert iv["mean"] == pytest.approx(0.03)
    assert iv["low"] == pytest.approx(0.03 - 0.049683, abs=1e-6)
    assert iv["high"] == pytest.approx(0.03 + 0.049683, abs=1e-6)
    assert stats.mean_interval([0.2])["low"] is None


def test_t_critical_table_and_expansion():
    assert stats.t_critical(1) == 12.7062
    assert stats.t_critical(30) == 2.0423
    assert stats.t_critical(40) == pytest.approx(2.0211, abs=1e-4)
    assert stats.t_critical(120) == pytest.approx(1.9799, abs=1e-4)


def test_paired_test_accuracy_differences_and_verdicts(rows):
    better = rows["bamsprod"]["diff_final_test_accuracy"]  # diffs 0.10, 0.10, 0.12
    assert better["mean"] == pytest.approx(0.32 / 3)
    assert better["low"] == pytest.approx(0.32 / 3 - 4.3027 * 0.011547 / math.sqrt(3), abs=1e-6)
    assert rows["bamsprod"]["verdict"] == "better"
    unclear = rows["adam"]["diff_final_test_accuracy"]  # diffs -0.10, +0.05, -0.01
    assert unclear["mean"] == pytest.approx(-0.02)
    assert unclear["high"] - unclear["mean"] == pytest.approx(
        4.3027 * math.sqrt(0.0057) / math.sqrt(3), abs=1e-6)
    assert rows["adam"]["verdict"] == "no difference detected"
    assert rows["sgdm"]["verdict"] == "worse"  # diffs -0.2 on every seed
    assert rows["bop"]["verdict"] == "reference"


def test_steps_difference_uses_seeds_where_both_reach_the_target(rows):
    iv = rows["bamsprod"]["diff_steps_to_target"]  # seeds 1, 2: -10, -20
    assert iv["n"] == 2 and iv["mean"] == pytest.approx(-15)
    assert iv["high"] == pytest.approx(-15 + 12.7062 * math.sqrt(50) / math.sqrt(2))


def test_one_seed_gives_no_verdict():
    one = {k: v for k, v in RESULTS.items() if k[1] == 0}
    rows = {r["optimizer"]: r for r in summary.summarize(one, "bop")["rows"]}
    assert rows["bamsprod"]["verdict"] == "no verdict (1 seed)"


def test_markdown_table_states_rule_and_verdicts():
    text = tables.results_markdown(summary.summarize(RESULTS, "bop", target=0.8))
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    assert len(lines) == 10  # header + 4 optimizers; the ladder's header + 4 optimizers
    # Ladder from the median first evaluation, 0.55 (module RESULTS), to 0.8.
    assert "| optimizer | to 61.25% | to 67.50% | to 73.75% | to 80.00% |" in text
    assert "Ladder of targets: 61.25%, 67.50%, 73.75%, 80.00%" in text
    # val finals .86 .82 .91: mean 86.33, sd 4.51; test .80 .85 .92: mean 85.67, sd 6.03
    assert "| bamsprod | 3 | 86.33 ± 4.51 | 85.67 ± 6.03 |" in text
    # Diffs 0.10, 0.10, 0.12: t = 0.10667 / (0.011547 / sqrt 3) = 16, df 2, two-sided
    # p = 1 - 16 / sqrt(16^2 + 2) = 0.00388; sign-flip: all 3 positive, 2 / 2^3 = 0.25.
    assert "| 0.00388 / 0.25 | better | primary | 10, 20, 10 | 3.00x |" in text
    assert "| secondary |" in text and "not a tie" in text
    assert "never, 30, 30" in text
    assert "Student t" in text and "whole interval is above 0" in text


def test_csv_has_header_and_rows():
    text = tables.results_csv(summary.summarize(RESULTS, "bop", target=0.8))
    header, *rows = text.strip().splitlines()
    assert header.startswith("optimizer,")
    assert [r.split(",")[0] for r in rows] == ["bop", "bamsprod", "adam", "sgdm"]


def test_csv_cells_are_plain_values():
    import csv
    import io

    made = summary.summarize(RESULTS, "bop", target=0.8)
    rows = {r["optimizer"]: r for r in csv.DictReader(io.StringIO(tables.results_csv(made)))}
    for row in rows.values():
        assert not any(cell.startswith(("{", "[")) for cell in row.values()), row
    bamsprod = next(r for r in made["rows"] if r["optimizer"] == "bamsprod")
    assert float(rows["bamsprod"]["diff_final_test_accuracy.mean"]) == pytest.approx(
        bamsprod["diff_final_test_accuracy"]["mean"])
    seeds = made["seeds"]
    assert [rows["bamsprod"][f"steps_to_target.seed{s}"] for s in seeds] == [
        "" if v is None else str(v) for v in bamsprod["steps_to_target"]]


def test_result_files_honour_the_umask(tmp_path):
    import os
    import stat

    from larq_bamsprod.harness.files import write_json_atomic

    for umask, mode in ((0o022, 0o644), (0o077, 0o600), (0o002, 0o664)):
        previous = os.umask(umask)
        try:
            write_json_atomic(tmp_path / f"{umask:o}.json", {"a": 1})
        finally:
            os.umask(previous)
        assert stat.S_IMODE((tmp_path / f"{umask:o}.json").stat().st_mode) == mode


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"epochs": 0}, "epochs must be a positive integer, received epochs=0"),
        ({"batch_size": -1}, "batch_size must be a positive integer"),
        ({"optimizers": ["bamsprod", "lion"]}, "unknown optimizer 'lion'; valid optimizers: "),
        ({"schedule": "linear"}, "schedule must be one of constant, cosine, step"),
        ({"seeds": []}, "seeds is empty"),
        ({"distribute": "tpu"}, "distribute must be one of mirrored, multiworker"),
        ({"hparams": {"adam": {"lr": 1.0}}}, "unknown hyperparameter 'lr' for optimizer 'adam'"),
        ({"validation_size": 0}, "validation_size must be a positive integer"),
        ({"eval_every": -5}, "eval_every must be a positive integer"),
        ({"optimizers": ["adam"], "reference": "bop"}, "reference 'bop' is not among"),
        ({"target": 1.5}, "target must be a validation accuracy in"),
    ],
)
def test_bad_config_raises_naming_the_field(kwargs, match):
    with pytest.raises(ValueError, match=match):
        builtin_config(**kwargs)


def test_reference_defaults_to_bop_else_the_first_optimizer():
    assert compare.CompareConfig(optimizers=["adam", "bop"]).reference_name == "bop"
    assert compare.CompareConfig(optimizers=["adam", "sgdm"]).reference_name == "adam"


def test_a_seed_or_an_optimizer_named_twice_is_refused():
    with pytest.raises(ValueError, match=r"seeds names a seed twice \(\[0, 0\]\)"):
        compare.CompareConfig(seeds=[0, 0])
    with pytest.raises(ValueError, match="optimizers names one optimizer twice"):
        compare.CompareConfig(optimizers=["adam", "Adam"])


def test_evaluation_points_about_twenty_and_the_last_step():
    from larq_bamsprod.harness.runner.training import evaluation_steps

    assert evaluation_steps(279, None) == list(range(14, 279, 14)) + [279]
    assert evaluation_steps(8, None) == list(range(1, 9))
    assert evaluation_steps(10, 4) == [4, 8, 10]


def test_default_evaluation_points_keep_evaluation_batches_under_a_third_of_the_steps():
    from larq_bamsprod.harness.runner.training import evaluation_steps

    # The tuned BinaryCNN: 1716 steps, 40 validation batches. About 20 points would be 86
    # steps apart, 20 x 40 = 800 batches = 47% of the steps; ceil(40 / 0.3) = 134 apart
    # gives 12 points + the last: 13 x 40 = 520 batches, 30% of the steps.
    points = evaluation_steps(1716, None, validation_batches=40)
    assert points == list(range(134, 1609, 134)) + [1716]
    assert len(points) * 40 <= 0.31 * 1716
    # A small validation set leaves the 20 points as they were; --eval-every wins.
    assert evaluation_steps(279, None, validation_batches=2) == list(range(14, 279, 14)) + [279]
    assert evaluation_steps(1716, 50, validation_batches=40)[:2] == [50, 100]


def test_speedup_interval_by_hand():
    # logs of 2 and 8: mean log 4 -> geometric mean 4; sd of (ln 2, ln 8) = sqrt(2) * ln 2,
    # half width t(0.975, 1) * sd / sqrt(2) = 12.7062 * ln 2.
    iv = stats.ratio_interval([2.0, 8.0])
    assert iv["n"] == 2
    assert iv["mean"] == pytest.approx(4.0)
    assert iv["low"] == pytest.approx(4.0 * math.exp(-12.7062 * math.log(2)))
    assert iv["high"] == pytest.approx(4.0 * math.exp(12.7062 * math.log(2)))
    # 0 (optimizer never), inf (reference never) and None (neither) are left out.
    assert stats.ratio_interval([0.0, math.inf, None, 3.0]) == {
        "n": 1, "mean": pytest.approx(3.0), "low": None, "high": None, "p_t": None,
        "p_sign_flip": 1.0}


@pytest.mark.parametrize("ratios, reached, ref_reached, expected", [
    ([1.2, 1.3, 1.25], 3, 3, "faster"),
    ([0.5, 0.6, 0.55], 3, 3, "slower"),
    ([0.5, 2.0, 1.0], 3, 3, "no difference detected"),
    ([1.2, 1.3], 2, 3, "no verdict (target missed on some seeds)"),
    ([], 0, 3, "slower (never reaches)"),
    ([], 3, 0, "faster (reference never reaches)"),
    ([1.5], 1, 1, "no verdict (1 seed)"),
])
def test_speed_verdict(ratios, reached, ref_reached, expected):
    seeds = max(reached, ref_reached)
    assert stats.speed_verdict(stats.ratio_interval(ratios), reached, ref_reached,
                               seeds) == expected


def test_summary_speed_interval_and_verdict(rows):
    # bamsprod: per-seed speed-ups inf, 1.5, 3.0 -> interval over 1.5 and 3.0 only;
    # bop missed seed 0, so no speed verdict.
    iv = rows["bamsprod"]["speedup_interval"]
    assert iv["n"] == 2 and iv["mean"] == pytest.approx(math.sqrt(4.5))
    assert rows["bamsprod"]["speed_verdict"] == "no verdict (target missed on some seeds)"
    assert "speed_verdict" not in rows["bop"]


# --- p-values and Holm's correction, by hand ---------------------------------------------

@pytest.mark.parametrize("t, df, expected", [
    (1.0, 1, 0.5),                                   # 1 - 2 atan(1) / pi
    (2.0, 2, 1 - 2 / math.sqrt(6)),                   # 1 - t / sqrt(t^2 + 2)
    (1.0, 3, 1 - 2 / math.pi * (math.pi / 6 + 0.5 * math.sqrt(3) / 2)),  # theta = pi/6
    (math.sqrt(4 / 3), 4, 1 - 0.5 * (1 + 0.5 * 0.75)),  # theta = 30 deg: sin .5, cos^2 .75
])
def test_t_p_value_by_hand(t, df, expected):
    assert stats.t_two_sided_p(t, df) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("df", range(1, 31))
def test_t_p_value_at_the_published_critical_value_is_005(df):
    assert stats.t_two_sided_p(stats.t_critical(df), df) == pytest.approx(0.05, abs=2e-5)


@pytest.mark.parametrize("diffs, expected", [
    ([0.1, 0.2, 0.3, 0.4, 0.5], 2 / 32),       # 5 seeds all positive: 0.0625
    ([0.10, 0.10, 0.12], 0.25),                # 3 seeds: never below 2 / 8
    # |sum| 0.06: of the 8 sign patterns of 0.10, 0.05, 0.01 the sums at least 0.06 away
    # from 0 are +-0.16, +-0.14, +-0.06: 6 / 8.
    ([-0.10, 0.05, -0.01], 0.75),
    ([0.3, -0.1, 0.2, 0.4], 4 / 16),           # sums >= 0.8: +-(1.0, 0.8); 2 + 2 of 16
])
def test_exact_sign_flip_p_by_hand(diffs, expected):
    assert stats.sign_flip_p(diffs) == pytest.approx(expected)


def test_holm_by_hand():
    # Sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1: 0.02, 0.03, 0.06, max(0.04, 0.06).
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert stats.holm([0.5, None, 0.2]) == [0.5, None, 0.4]  # None: not in the family
    assert stats.holm([0.6, 0.7]) == [1.0, 1.0]


def test_a_zero_width_interval_is_no_verdict():
    iv = stats.paired_test([0.01, 0.01])  # two seeds, identical differences
    assert iv["low"] == iv["high"] == pytest.approx(0.01)
    assert iv["p_t"] is None and iv["p_sign_flip"] == 0.5
    assert stats.verdict(iv) == "no verdict (no spread over seeds)"
    assert stats.speed_verdict(stats.ratio_interval([2.0, 2.0]), 2, 2, 2) == (
        "no verdict (no spread over seeds)")
