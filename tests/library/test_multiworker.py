"""BAMSProd under ``tf.distribute.MultiWorkerMirroredStrategy`` with two worker processes
on 127.0.0.1 (``TF_CONFIG``, free ports) trains a Larq model, alone and inside Larq's
CaseOptimizer, to the same weights as one process with the same global batch."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from ports import free_ports

WORKER = pathlib.Path(__file__).parents[1] / "support" / "multiworker_worker.py"
CASES = ("new", "case_optimizer")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("multiworker")
    workers = [f"127.0.0.1:{port}" for port in free_ports(2)]
    base = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    procs = [subprocess.Popen([sys.executable, str(WORKER), "single", str(out)],
                              cwd=WORKER.parent, env=base, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)]
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        procs.append(subprocess.Popen(
            [sys.executable, str(WORKER), "multi", str(out)], cwd=WORKER.parent,
            env=dict(base, TF_CONFIG=json.dumps(tf_config)),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    try:
        outputs = [proc.communicate(timeout=300) for proc in procs]
    finally:
        for proc in procs:  # a worker whose peer died would wait for it forever
            if proc.poll() is None:
                proc.kill()
    for proc, (_, err) in zip(procs, outputs):
        assert proc.returncode == 0, f"{proc.args} failed:\n{err[-4000:]}"
    return {name: dict(np.load(out / f"{name}.npz")) for name in ("single-0", "multi-0",
                                                                    "multi-1")}


@pytest.mark.slow
def test_two_worker_processes_form_one_two_replica_cluster(runs):
    assert int(runs["multi-0"]["replicas"]) == 2 and int(runs["multi-1"]["replicas"]) == 2


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_multiworker_training_matches_single_process_training(runs, case):
    single, chief, other = runs["single-0"], runs["multi-0"], runs["multi-1"]
    np.testing.assert_array_equal(chief[f"{case}/initial"], single[f"{case}/initial"])
    change = np.max(np.abs(single[f"{case}/final"] - single[f"{case}/initial"]))
    assert change > 0.05  # the weights moved far more than the tolerance below
    np.testing.assert_array_equal(other[f"{case}/final"], chief[f"{case}/final"])
    np.testing.assert_allclose(chief[f"{case}/final"], single[f"{case}/final"],
                               rtol=1e-5, atol=1e-5)
