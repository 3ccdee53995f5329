"""Time one jitted Keras 3 update: BAMSProd against Keras' own ``Adam(amsgrad=True)``.

Both optimizers get their own slots on the same ~10M float32 weights (the shapes of a
small binary CNN's layers, below) and apply the same fixed gradients (seeded Gaussian
noise; an elementwise update's cost does not depend on the values) through
``jax.jit(optimizer.stateless_apply)`` with the weights and slots donated, as Keras'
JAX trainer does in ``model.fit``. Rounds of ``--steps`` updates are interleaved in a
shuffled order, so load from other processes falls on both alike; the result is the
median time per update over rounds and the ratio of the medians, measured in one process.
Goal (#27): BAMSProd <= 1.1x AMSGrad.

Usage::

    KERAS_BACKEND=jax python benchmarks/keras3_update.py             # make bench-keras3
    KERAS_BACKEND=jax python benchmarks/keras3_update.py --rounds 5 --steps 2   # smoke test
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import random
import statistics
import time

os.environ.setdefault("KERAS_BACKEND", "jax")

# isort: off
import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

from larq_bamsprod.keras3 import BAMSProd  # noqa: E402
# isort: on

SHAPES = [(3, 3, 128, 256), (3, 3, 256, 256), (3, 3, 256, 384), (3, 3, 256, 512),
          (3, 3, 512, 512), (3, 3, 512, 512), (4608, 512), (512, 10), (512,), (256,), (10,)]
"""About 10M weights (10,032,906), in the shapes of a binary CNN's layers."""

OPTIMIZERS = {
    "BAMSProd": lambda: BAMSProd(),
    "AMSGrad": lambda: keras.optimizers.Adam(learning_rate=0.01, amsgrad=True),
}


def _cpu() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


class Timed:
    """One optimizer's jitted update on its own copy of the weights and slots."""

    def __init__(self, make, grads):
        variables = [keras.Variable(np.zeros(g.shape, np.float32)) for g in grads]
        self.optimizer = make()
        self.optimizer.build(variables)
        self.weights = [v.value for v in variables]
        self.slots = [v.value for v in self.optimizer.variables]
        self.grads = grads
        self.step = jax.jit(self.optimizer.stateless_apply, donate_argnums=(0, 2))

    def run(self, steps: int) -> float:
        """Seconds per update over ``steps`` updates."""
        start = time.perf_counter()
        for _ in range(steps):
            self.weights, self.slots = self.step(self.slots, self.grads, self.weights)
        jax.block_until_ready((self.weights, self.slots))
        return (time.perf_counter() - start) / steps


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=41, help="interleaved rounds")
    parser.add_argument("--steps", type=int, default=10, help="updates per round")
    parser.add_argument("--output", help="also write the result as JSON here")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    grads = [jax.numpy.asarray(rng.normal(size=s).astype(np.float32)) for s in SHAPES]
    timed = {name: Timed(make, grads) for name, make in OPTIMIZERS.items()}
    for t in timed.values():
        t.run(2)  # compile and warm up
    times = {name: [] for name in timed}
    order = list(timed)
    for _ in range(args.rounds):
        random.shuffle(order)
        for name in order:
            times[name].append(timed[name].run(args.steps))
    medians = {name: statistics.median(values) for name, values in times.items()}
    result = {
        "command": "KERAS_BACKEND=jax python benchmarks/keras3_update.py "
                   f"--rounds {args.rounds} --steps {args.steps}",
        "date": datetime.date.today().isoformat(),
        "machine": f"{_cpu()}, {os.cpu_count()} CPUs",
        "versions": {"keras": keras.__version__, "jax": jax.__version__},
        "weights": int(sum(np.prod(s) for s in SHAPES)),
        "median_ms": {name: round(1e3 * m, 3) for name, m in medians.items()},
        "ratio_bamsprod_to_amsgrad": round(medians["BAMSProd"] / medians["AMSGrad"], 3),
    }
    print(json.dumps(result, indent=2))
    if args.output:
        with open(args.output, "w") as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()
