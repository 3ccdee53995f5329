"""examples/keras3_comparison.py runs end to end on a tiny subset of Fashion-MNIST."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "keras3_comparison.py"
DATA = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")


@pytest.mark.skipif(not DATA.exists(), reason="Fashion-MNIST not installed (make data)")
def test_the_keras3_example_trains_every_optimizer_on_a_tiny_subset(capsys):
    spec = importlib.util.spec_from_file_location("keras3_comparison", EXAMPLE)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    rows = example.main(["--train-subset", "256", "--test-subset", "256", "--epochs", "1",
                         "--batch-size", "64"])
    assert [row["optimizer"] for row in rows] == ["BAMSProd", "Bop + Adam", "Adam"]
    assert all(0.0 <= row["test_accuracy"] <= 1.0 for row in rows)
    assert "| BAMSProd |" in capsys.readouterr().out
