"""Under tf.distribute.MirroredStrategy on two virtual CPUs, BAMSProd trains and takes the
same steps as on one device with the same global batch.

The virtual CPUs must be configured before TensorFlow initializes its devices, so the
training runs in a fresh interpreter (``distributed_worker.py``), once for the module.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

WORKER = pathlib.Path(__file__).parents[1] / "support" / "distributed_worker.py"
CLASSES = ["new", "legacy"]


@pytest.fixture(scope="module")
def mirrored_results():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run(
        [sys.executable, str(WORKER)], capture_output=True, text=True, env=env, timeout=600
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULTS ")]
    assert proc.returncode == 0 and lines, f"worker failed:\n{proc.stdout}\n{proc.stderr}"
    return json.loads(lines[-1][len("RESULTS "):])


@pytest.mark.slow
def test_mirrored_strategy_runs_on_two_replicas(mirrored_results):
    assert mirrored_results["replicas"] == 2
    assert len(mirrored_results["devices"]) == 2


@pytest.mark.slow
@pytest.mark.parametrize("kind", CLASSES)
def test_mirrored_training_lowers_the_loss(mirrored_results, kind):
    before, after = mirrored_results[kind]["mirrored_loss"]
    assert after < 0.5 * before


@pytest.mark.slow
@pytest.mark.parametrize("kind", CLASSES)
def test_mirrored_training_matches_single_device_training(mirrored_results, kind):
    result = mirrored_results[kind]
    assert result["iterations"] == [12, 12]
    assert result["max_abs_change"] > 0.05  # the weights moved far more than the tolerance
    assert result["max_abs_diff"] < 1e-5
