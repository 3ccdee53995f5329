"""The benchmark scripts run end to end (``--quick``) and write what the docs say they
write. Timings themselves are never asserted: benchmarks are scripts, not tests."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _run(script, tmp_path):
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--quick", "--output", str(out)],
        capture_output=True, text=True, timeout=900,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout, json.loads(out.read_text())


def test_update_step_quick_writes_the_table_and_json(tmp_path):
    stdout, report = _run("update_step.py", tmp_path)
    assert "vs AMSGrad" in stdout and "36 B/param floor" in stdout
    rows = {r["optimizer"]: r for r in report["results"][0]["rows"]}
    assert report["results"][0]["floor"]["floor_ms"] > 0
    assert {"amsgrad", "legacy-bamsprod", "bamsprod"} <= set(rows)
    assert rows["amsgrad"]["ratio_to_amsgrad"] == 1.0
    for name in ("legacy-bamsprod", "bamsprod"):
        assert rows[name]["state_bytes_per_param"] == 12.0  # m, v, v_hat in float32
        assert rows[name]["median_ms"] > 0


def test_train_step_quick_writes_paired_ratios(tmp_path):
    stdout, report = _run("train_step.py", tmp_path)
    rows = {r["optimizer"]: r for r in report["rows"]}
    assert set(rows) == {"adam", "legacy-bamsprod", "bamsprod"}
    assert rows["adam"]["ratio_to_adam"] == 1.0
    low, high = rows["bamsprod"]["paired_ratio_90ci"]
    assert low <= rows["bamsprod"]["paired_ratio_to_adam"] <= high
