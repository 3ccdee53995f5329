"""The comparison table: aggregation over seeds and the convergence-speed ratio vs Bop."""

import math

import pytest

from larq_bamsprod.harness import compare, report, summary


def _history(accuracies, losses=None):
    losses = losses or [1.0 / (i + 1) for i in range(len(accuracies))]
    return [
        {"epoch": i + 1, "test_accuracy": a, "train_loss": loss, "step_seconds_median": 0.01}
        for i, (a, loss) in enumerate(zip(accuracies, losses))
    ]


def test_speedup_is_bop_epochs_to_its_best_over_epochs_to_reach_it():
    # Bop's best (0.80) first appears at epoch 4; BAMSProd reaches 0.80 at epoch 2 -> 2.0x.
    histories = {
        ("bop", 0): _history([0.5, 0.6, 0.7, 0.8, 0.8]),
        ("bamsprod", 0): _history([0.6, 0.81, 0.82, 0.83, 0.84]),
        ("adam", 0): _history([0.5, 0.55, 0.6, 0.65, 0.7]),
    }
    rows = {r["optimizer"]: r for r in summary.summarize(histories)["rows"]}
    assert rows["bamsprod"]["epochs_to_ref_best"] == [2]
    assert rows["bamsprod"]["speedup_vs_ref_mean"] == pytest.approx(4 / 2)
    assert rows["bop"]["speedup_vs_ref_mean"] == pytest.approx(1.0)
    assert rows["adam"]["epochs_to_ref_best"] == [None]
    assert rows["adam"]["speedup_vs_ref_mean"] is None
    assert rows["adam"]["ref_best_reached"] == "0/1"


def test_mean_and_sample_std_over_seeds():
    histories = {
        ("bop", 0): _history([0.5, 0.6]),
        ("bop", 1): _history([0.5, 0.7]),
        ("bop", 2): _history([0.9, 0.8]),
    }
    (row,) = summary.summarize(histories)["rows"]
    finals = [0.6, 0.7, 0.8]
    mean = sum(finals) / 3
    std = math.sqrt(sum((f - mean) ** 2 for f in finals) / 2)  # sample std, n - 1
    assert row["final_test_accuracy_mean"] == pytest.approx(mean)
    assert row["final_test_accuracy_std"] == pytest.approx(std)
    assert row["best_test_accuracy_mean"] == pytest.approx((0.6 + 0.7 + 0.9) / 3)
    assert row["seeds"] == 3


def test_markdown_table_has_one_row_per_optimizer_and_percentages():
    histories = {("bop", 0): _history([0.5, 0.6]), ("bamsprod", 0): _history([0.55, 0.65])}
    text = report.results_markdown(summary.summarize(histories))
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    assert len(lines) == 3  # header + 2 optimizers
    assert "| bamsprod | 1 | 65.00 ± 0.00 |" in text


def test_csv_has_header_and_rows():
    histories = {("bop", 0): _history([0.5, 0.6]), ("adam", 0): _history([0.4, 0.5])}
    text = report.results_csv(summary.summarize(histories))
    header, *rows = text.strip().splitlines()
    assert header.startswith("optimizer,")
    assert [r.split(",")[0] for r in rows] == ["bop", "adam"]


def test_first_epoch_reaching_none_when_never_reached():
    assert summary.first_epoch_reaching(_history([0.1, 0.2]), 0.5) is None
    assert summary.first_epoch_reaching(_history([0.1, 0.6, 0.4]), 0.5) == 2


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
    ],
)
def test_bad_config_raises_naming_the_field(kwargs, match):
    with pytest.raises(ValueError, match=match):
        compare.CompareConfig(**kwargs)
