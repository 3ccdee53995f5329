"""One tuning worker on a fast objective (no training), for the multi-process tune tests.

Usage: python tune_worker.py STORAGE OUTPUT TRIALS SECONDS_PER_TRIAL
The objective sleeps, then scores -(log10(lr) - log10(3e-3))^2.
"""

import math
import sys
import time

import larq_bamsprod  # noqa: F401  (before TensorFlow)
from larq_bamsprod.harness.experiments import tune
from larq_bamsprod.harness.experiments.config import CompareConfig

storage, output, trials, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])


def objective(params, number):
    time.sleep(seconds)
    return -(math.log10(params["learning_rate"]) - math.log10(3e-3)) ** 2


cfg = tune.TuneConfig(compare=CompareConfig(optimizers=["adam", "sgdm"], output=output),
                      trials=trials, storage=storage, stale_after=60)
tune.tune_all(cfg, lambda opt: objective, log=lambda msg: print(msg, flush=True), poll=0.2)
print("worker finished", flush=True)
