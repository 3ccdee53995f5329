"""How many of Bop's binary weights a lower flip threshold could change: the share of Bop's
momentum magnitudes |m| at or below each level, in a final run's last checkpoint.

Bop flips a binary weight when its momentum agrees with its sign and ``|m| > threshold``;
lowering the threshold from ``tau`` to ``tau' < tau`` changes the decision only for weights
with ``tau' < |m| <= tau``. When a study chooses a threshold at the bottom edge of its range,
this says how much room below it is left (at the end of training; earlier states differ).

Usage (from the repository's top folder, after the run has finished; its checkpoint is not
committed, so this reads a local run)::

    .venv/bin/python docs/results/third/bop_momentum.py \\
        docs/results/third/binary_resnet34/runs/bop-seed1/ckpt/ckpt-1
"""

import sys

import numpy as np
import tensorflow as tf


def main(path: str) -> None:
    reader = tf.train.load_checkpoint(path)
    slots: dict[str, dict[str, str]] = {}
    for name in reader.get_variable_to_shape_map():
        if ".OPTIMIZER_SLOT/" in name:
            variable, rest = name.split("/.OPTIMIZER_SLOT/")
            slots.setdefault(variable, {})[rest.split("/")[-3]] = name
    # Bop keeps one slot, m; the Adam that Larq's CaseOptimizer gives the rest keeps m and v.
    bop = [names["m"] for names in slots.values() if "m" in names and "v" not in names]
    m = np.concatenate([np.abs(reader.get_tensor(name)).ravel() for name in bop])
    print(f"{path}: {len(bop)} Bop-trained kernels, {m.size:,} binary weights")
    for level in (1e-12, 1e-10, 1e-9, 1e-8, 1e-7, 1e-6):
        print(f"  share with |m| <= {level:g}: {np.mean(m <= level):.4%}")
    q = np.quantile(m, [0.01, 0.1, 0.5])
    print(f"  |m| quantiles: 1% {q[0]:.3g}, 10% {q[1]:.3g}, median {q[2]:.3g}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: bop_momentum.py CHECKPOINT (e.g. .../runs/bop-seed1/ckpt/ckpt-1)")
    main(sys.argv[1])
