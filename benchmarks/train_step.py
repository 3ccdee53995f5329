"""Time whole training steps (``model.fit``) of one model under several optimizers.

One model (so every optimizer steps the same weights in the same memory) is compiled once
per optimizer; each compiled ``train_function`` is kept with its optimizer and swapped back
in (``model.train_function``, ``model.optimizer``) when that optimizer's turn comes, so
nothing is retraced. Rounds are interleaved in a shuffled order: in each round every
optimizer runs ``--steps`` steps of ``model.fit`` on the same synthetic batches (CPU time
does not depend on pixel values); a callback times each batch (``on_train_batch_begin`` to
``..._end``) and the first batch of each ``fit`` call, which pays for switching, is
dropped. The optimizers take turns on the same weights, so the run says nothing about
training quality; it is a timing.

The table gives the median step time, its ratio to legacy Adam's, and the median over
rounds of the per-round ratio (each optimizer's median step in a round over Adam's in the
same round) with a 90% bootstrap interval over rounds.

Usage::

    python benchmarks/train_step.py --output runs/bench_train.json   # make bench-train
    python benchmarks/train_step.py --quick                           # smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

# isort: off
import machine  # noqa: E402  (imports larq_bamsprod, which selects Keras 2, first)
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from update_step import OPTIMIZERS as UPDATE_OPTIMIZERS  # noqa: E402

import larq_bamsprod  # noqa: E402
from larq_bamsprod import fast, kernels, legacy  # noqa: E402
# isort: on

BASELINE = "adam"
OPTIMIZERS = {
    "adam": ("Keras legacy Adam (fused kernel)", lambda: tf.keras.optimizers.legacy.Adam(1e-3)),
    "amsgrad": UPDATE_OPTIMIZERS["amsgrad"][:2],
    "legacy-bamsprod": ("legacy.BAMSProd() on every variable", lambda: legacy.BAMSProd(1e-3)),
    "bamsprod": ("BAMSProd() (new optimizer API) on every variable",
                 lambda: larq_bamsprod.BAMSProd(1e-3)),
    "bop-case": UPDATE_OPTIMIZERS["bop-case"][:2],
    "bamsprod-case": UPDATE_OPTIMIZERS["bamsprod-case"][:2],
    "legacy-bamsprod-reference": (
        "legacy.BAMSProd(), reference path (LARQ_BAMSPROD_FAST=reference)",
        lambda: legacy.BAMSProd(1e-3)),
}
PATHS = {"legacy-bamsprod-reference": "reference"}


def _steps_taken(optimizer) -> int:
    # larq's CaseOptimizer leaves its own counter alone; its optimizers count.
    counter = getattr(optimizer, "optimizers", [optimizer])[0]
    return int(counter.iterations.numpy())


class BatchTimer(tf.keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.times: list[float] = []
        self._start = 0.0

    def on_train_batch_begin(self, batch, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.times.append(time.perf_counter() - self._start)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="BinaryResNetE18", choices=list(machine.MODELS))
    parser.add_argument("--optimizers", default=",".join(OPTIMIZERS),
                        help=f"comma-separated, from: {', '.join(OPTIMIZERS)}")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--steps", type=int, default=6, help="fit steps per round")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: TinyBinaryCNN, 3 optimizers, 2 rounds of 3 steps")
    parser.add_argument("--output", default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.model, args.rounds, args.steps = "TinyBinaryCNN", 2, 3
        args.optimizers = "adam,legacy-bamsprod,bamsprod"
    names = [o.strip() for o in args.optimizers.split(",") if o.strip()]
    unknown = [o for o in names if o not in OPTIMIZERS]
    if unknown:
        parser.error(f"unknown optimizer(s) {unknown}; choose from {list(OPTIMIZERS)}")
    names = [BASELINE] + [o for o in names if o != BASELINE]

    info = machine.describe()
    kernel = kernels.status()
    print(f"# {info['date']}  {info['cpu']} x{info['cpu_count']}  TF {info['tensorflow']}  "
          f"load {info['load_average_1m']:.2f}  kernel "
          f"{'available' if kernel['available'] else 'UNAVAILABLE'}")

    tf.keras.utils.set_random_seed(args.seed)
    template = machine.MODELS[args.model]()
    weights = template.get_weights()
    shape = template.input_shape[1:]
    classes = template.output_shape[-1]
    rng = np.random.default_rng(args.seed)
    n = args.batch_size * (args.steps + 1)
    x = rng.standard_normal((n, *shape)).astype("float32")
    y = rng.integers(0, classes, size=n)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(args.batch_size).repeat()

    model = tf.keras.models.clone_model(template)
    model.set_weights(weights)
    compiled, timers = {}, {}
    for name in names:
        optimizer = OPTIMIZERS[name][1]()
        model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
        with fast.use(PATHS.get(name, "auto")):  # the train function is traced here
            model.fit(data, epochs=1, steps_per_epoch=2, verbose=0)
        compiled[name] = (optimizer, model.train_function)
        timers[name] = []
    print(f"# {args.model}: {template.count_params():,} parameters, batch {args.batch_size}, "
          f"{len(names)} optimizers x {args.rounds} rounds x {args.steps} steps", flush=True)

    order = list(names)
    shuffle = random.Random(args.seed)
    rounds = []
    for _ in range(args.rounds):
        shuffle.shuffle(order)
        this_round = {}
        for name in order:
            model.optimizer, model.train_function = compiled[name]
            before = _steps_taken(model.optimizer)
            timer = BatchTimer()
            model.fit(data, epochs=1, steps_per_epoch=args.steps, verbose=0,
                      callbacks=[timer])
            if _steps_taken(model.optimizer) != before + args.steps:
                raise RuntimeError(f"{name}: fit did not step its own optimizer")
            timers[name].extend(timer.times[1:])
            this_round[name] = statistics.median(timer.times[1:])
        rounds.append(this_round)

    base = statistics.median(timers[BASELINE])
    rng = np.random.default_rng(args.seed)
    rows = []
    print(f"\n{'optimizer':<27} {'median ms':>10} {'IQR ms':>17} {'vs Adam':>8} "
          f"{'paired (90% CI)':>22}  description")
    for name in names:
        t = timers[name]
        q = np.percentile(t, [25, 75])
        paired = np.array([r[name] / r[BASELINE] for r in rounds])
        boot = [np.median(rng.choice(paired, size=len(paired))) for _ in range(2000)]
        low, high = np.percentile(boot, [5, 95])
        row = {"optimizer": name, "description": OPTIMIZERS[name][0],
               "median_ms": 1e3 * statistics.median(t),
               "iqr_ms": [1e3 * q[0], 1e3 * q[1]],
               "ratio_to_adam": statistics.median(t) / base,
               "paired_ratio_to_adam": float(np.median(paired)),
               "paired_ratio_90ci": [float(low), float(high)],
               "steps_timed": len(t)}
        rows.append(row)
        print(f"{name:<27} {row['median_ms']:>10.1f} {row['iqr_ms'][0]:>8.1f}-"
              f"{row['iqr_ms'][1]:<8.1f} {row['ratio_to_adam']:>8.3f} "
              f"{row['paired_ratio_to_adam']:>8.3f} ({low:.3f}-{high:.3f})  "
              f"{row['description']}")
    info["load_average_1m_end"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    if args.output:
        path = Path(args.output)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({
            "command": " ".join([sys.executable, *sys.argv]), "machine": info,
            "kernel": kernel, "model": args.model, "params": template.count_params(),
            "batch_size": args.batch_size, "rows": rows,
            "times_ms": {k: [round(1e3 * v, 3) for v in t] for k, t in timers.items()},
        }, indent=1))
        print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
