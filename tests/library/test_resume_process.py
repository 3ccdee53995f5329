"""Exact resume across processes: train N steps, save, load in a NEW interpreter, train M
more; weights and every optimizer variable equal, bit for bit, those of an uninterrupted
N+M-step run (CPU, op determinism on).

Covered: both BAMSProd classes and legacy BAMSProd inside Larq's CaseOptimizer, all with
schedules on ``learning_rate`` and ``beta_1``, on a model with a binary ``QuantDense``;
saved with ``tf.train.Checkpoint`` and with ``model.save`` (.h5). The training runs in
``resume_worker.py``, once per phase for the module.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

WORKER = pathlib.Path(__file__).parents[1] / "support" / "resume_worker.py"
CASES = ("new", "legacy", "case_optimizer")
METHODS = ("checkpoint", "model_save")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("resume")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    for phase in ("first", "second"):  # two interpreters: nothing survives but the files
        proc = subprocess.run([sys.executable, str(WORKER), phase, str(out)], cwd=WORKER.parent,
                              capture_output=True, text=True, env=env, timeout=600)
        assert proc.returncode == 0, f"{phase} failed:\n{proc.stdout}\n{proc.stderr[-4000:]}"
    return out


def _load(out, name):
    with np.load(out / f"{name}.npz") as data:
        return {key: data[key] for key in data.files}


def _params():
    for case in CASES:
        for method in METHODS:
            marks = ()
            if case == "case_optimizer" and method == "model_save":
                # tf-keras 2.19 + larq 0.14: loading the .h5 logs "Error in loading the
                # saved optimizer state" and starts CaseOptimizer afresh. Use a checkpoint.
                marks = pytest.mark.xfail(strict=True, reason="h5 drops CaseOptimizer state")
            yield pytest.param(case, method, id=f"{case}-{method}", marks=marks)


@pytest.mark.parametrize("case,method", list(_params()))
def test_resumed_run_in_new_process_equals_uninterrupted_run_bitwise(runs, case, method):
    uninterrupted = _load(runs, f"{case}-uninterrupted")
    resumed = _load(runs, f"{case}-{method}")
    assert sorted(resumed) == sorted(uninterrupted)
    # m, v and vhat of every trainable variable are compared, not only the weights.
    assert sum(key.endswith("vhat") or "/vhat/" in key for key in uninterrupted) == 3
    for key, expected in uninterrupted.items():
        np.testing.assert_array_equal(resumed[key], expected, err_msg=key)
