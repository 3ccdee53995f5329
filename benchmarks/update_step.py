"""Time one optimizer update (``apply_gradients`` inside ``tf.function``) per optimizer.

For each model, every optimizer gets its own slots on the same variables (copies of the
model's trainable variables without their Keras constraints unless ``--with-constraints``,
so the time is the update's alone) and applies the same fixed gradients (seeded Gaussian
noise; the cost of an elementwise update does not depend on the values). Rounds are
interleaved in a shuffled order, so load from other processes falls on every optimizer
alike; the table reports medians over rounds and ratios of medians taken in the same
process:

* ``vs AMSGrad``: to Keras' fused ``tf.keras.optimizers.legacy.Adam(amsgrad=True)``
  (``ResourceApplyAdamWithAmsgrad``), the yardstick (goal: <= 1.0, issue #28).
* ``vs floor``: to the time NumPy takes, in the same rounds, to move 36 bytes per
  parameter (read 18, write 18): the traffic an AMSGrad-type step cannot avoid (read g, w,
  m, v, v_hat; write w, m, v, v_hat; float32). Four probes (a copy and an in-place
  scaling, each with one thread and with one per core); the fastest is the floor.
* ``state B/p``: optimizer state bytes per parameter (3 slots x 4 bytes = 12 for BAMSProd).
* ``ops``: graph operations in the traced step that touch a tensor with more than one
  element (a proxy for passes over memory, equal on CPU and GPU), then all operations.

On a GPU, every timed step is followed by ``tf.test.experimental.sync_devices()`` so that
the time is the device's; XLA-compiled updates (the BAMSProd default on GPU) count as one
op per variable here.

Usage::

    python benchmarks/update_step.py --output runs/bench.json        # make bench
    python benchmarks/update_step.py --quick                          # smoke test
    python benchmarks/update_step.py --models BinaryResNetE18 --rounds 200
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import random
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

# isort: off
import machine  # noqa: E402  (imports larq_bamsprod, which selects Keras 2, first)
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import larq_bamsprod  # noqa: E402
from larq_bamsprod import fast, kernels, legacy  # noqa: E402
# isort: on

FLOOR_BYTES_PER_PARAM = 36
BASELINE = "amsgrad"


def _case_bop():
    import larq as lq

    return lq.optimizers.CaseOptimizer(
        (lq.optimizers.Bop.is_binary_variable, lq.optimizers.Bop()),
        default_optimizer=tf.keras.optimizers.legacy.Adam(0.01),
    )


def _case_bamsprod():
    import larq as lq

    return lq.optimizers.CaseOptimizer(
        (lq.optimizers.Bop.is_binary_variable, legacy.BAMSProd()),
        default_optimizer=tf.keras.optimizers.legacy.Adam(0.01),
    )


# name: (description, factory, fast path asked for while tracing)
OPTIMIZERS = {
    "amsgrad": ("Keras legacy Adam(amsgrad=True), fused kernel",
                lambda: tf.keras.optimizers.legacy.Adam(1e-3, amsgrad=True), "auto"),
    "adam": ("Keras legacy Adam, fused kernel",
             lambda: tf.keras.optimizers.legacy.Adam(1e-3), "auto"),
    "sgd": ("Keras legacy SGD", lambda: tf.keras.optimizers.legacy.SGD(1e-3), "auto"),
    "bop-case": ("CaseOptimizer(Bop on binary kernels, legacy Adam on the rest)",
                 _case_bop, "auto"),
    "legacy-bamsprod": ("legacy.BAMSProd(), default path (kernel)",
                        lambda: legacy.BAMSProd(1e-3), "auto"),
    "bamsprod": ("BAMSProd() (new optimizer API), default path (kernel)",
                 lambda: larq_bamsprod.BAMSProd(1e-3), "auto"),
    "legacy-bamsprod-fixed": ("legacy.BAMSProd(bound_target=1e-6): one-pass kernel",
                              lambda: legacy.BAMSProd(1e-3, bound_target=1e-6), "auto"),
    "legacy-bamsprod-none": ("legacy.BAMSProd(bound_target=None): one-pass kernel",
                             lambda: legacy.BAMSProd(1e-3, bound_target=None), "auto"),
    "bamsprod-case": ("CaseOptimizer(legacy.BAMSProd on binary kernels, Adam on the rest)",
                      _case_bamsprod, "auto"),
    "legacy-bamsprod-xla": ("legacy.BAMSProd(), XLA path (GPU default)",
                            lambda: legacy.BAMSProd(1e-3), "xla"),
    "legacy-bamsprod-reference": ("legacy.BAMSProd(), reference path (separate TF ops)",
                                  lambda: legacy.BAMSProd(1e-3), "reference"),
    "bamsprod-reference": ("BAMSProd(), reference path (separate TF ops)",
                           lambda: larq_bamsprod.BAMSProd(1e-3), "reference"),
}
ALL = list(OPTIMIZERS)
CORE = ["amsgrad", "adam", "legacy-bamsprod", "bamsprod", "legacy-bamsprod-fixed",
        "legacy-bamsprod-reference"]
DEFAULT_MODELS = {
    "TinyBinaryCNN": ALL,
    "QuickNetSmall": ALL,
    "BinaryResNetE18": ALL,
    "BinaryDenseNet45": CORE,
    "BinaryAlexNet": CORE,
}
QUICK_MODELS = {"TinyBinaryCNN": ["amsgrad", "legacy-bamsprod", "bamsprod",
                                  "legacy-bamsprod-reference"]}

# Ops that move no tensor data or only alias it.
_FREE_OPS = {"Const", "Identity", "NoOp", "Placeholder", "VarHandleOp"}


def count_ops(graph) -> tuple[int, int]:
    """(ops touching a tensor with > 1 element, all ops) in ``graph``."""
    array_ops = 0
    operations = graph.get_operations()
    for op in operations:
        if op.type in _FREE_OPS:
            continue
        shapes = [t.shape for t in list(op.inputs) + list(op.outputs)
                  if t.dtype != tf.resource]
        if any(s.rank is None or s.num_elements() is None or s.num_elements() > 1
               for s in shapes):
            array_ops += 1
    return array_ops, len(operations)


def _variables(optimizer):
    found = optimizer.variables() if callable(optimizer.variables) else optimizer.variables
    found = list(found)
    # larq's CaseOptimizer keeps its optimizers' slots (default included) out of its own.
    for inner in getattr(optimizer, "optimizers", []):
        found.extend(_variables(inner))
    return list({id(v): v for v in found}.values())


def _state_bytes(optimizer, params: set) -> int:
    return sum(
        int(np.prod(v.shape)) * v.dtype.size for v in _variables(optimizer)
        if int(np.prod(v.shape)) > 1 and id(v) not in params
    )


def _sync():
    if tf.config.list_logical_devices("GPU"):
        tf.test.experimental.sync_devices()


def _floor_probe(params: int):
    """NumPy moving FLOOR_BYTES_PER_PARAM * params bytes (half read, half written), with 1
    and N threads, two ways: a copy (the destination is also read in by the cache, so it
    understates bandwidth) and an in-place scaling (read and write the same lines, as an
    optimizer does with w, m, v, v_hat)."""
    n = FLOOR_BYTES_PER_PARAM * params // 8  # float32 elements: 4 bytes read, 4 written
    src = np.ones(n, np.float32)
    dst = np.ones_like(src)
    one = np.float32(1.0)

    def parts(threads, work):
        bounds = np.linspace(0, n, threads + 1).astype(int)
        slices = [slice(bounds[i], bounds[i + 1]) for i in range(threads)]

        def run():
            workers = [threading.Thread(target=work, args=(s,)) for s in slices]
            for w in workers:
                w.start()
            for w in workers:
                w.join()

        return run

    probes = {}
    for threads in sorted({1, max(1, os.cpu_count() or 1)}):
        probes[f"copy-{threads}t"] = parts(threads, lambda s: np.copyto(dst[s], src[s]))
        probes[f"in-place-{threads}t"] = parts(
            threads, lambda s: np.multiply(dst[s], one, out=dst[s]))
    return probes


def _bare_copies(variables):
    """Plain variables with the same shapes, values and Bop "precision", but no Keras
    constraint (larq's weight_clip would add a clip pass to every optimizer's step)."""
    copies = []
    for v in variables:
        copy = tf.Variable(v.read_value(), name=v.name.split(":")[0])
        if hasattr(v, "precision"):
            copy.precision = v.precision
        copies.append(copy)
    return copies


def bench_model(name: str, optimizers: list[str], rounds: int, warmup: int,
                seed: int, with_constraints: bool = False) -> dict:
    tf.keras.backend.clear_session()
    tf.keras.utils.set_random_seed(seed)
    model = machine.MODELS[name]()
    variables = model.trainable_variables
    if not with_constraints:
        variables = _bare_copies(variables)
    params = sum(int(np.prod(v.shape)) for v in variables)
    rng = np.random.default_rng(seed)
    grads = [tf.constant(rng.standard_normal(v.shape).astype(v.dtype.as_numpy_dtype) * 1e-3)
             for v in variables]
    param_ids = {id(v) for v in variables}

    steps, info = {}, {}
    for key in optimizers:
        description, factory, path = OPTIMIZERS[key]
        optimizer = factory()

        def step(optimizer=optimizer):
            optimizer.apply_gradients(zip(grads, variables))

        step = tf.function(step, autograph=False)
        with fast.use(path):
            concrete = step.get_concrete_function()
            for _ in range(warmup):
                step()
        _sync()
        array_ops, all_ops = count_ops(concrete.graph)
        kernel_ops = sum(op.type == "LarqBamsprodResourceApply"
                         for op in concrete.graph.get_operations())
        steps[key] = step
        info[key] = {
            "description": description,
            "path": path,
            "state_bytes": _state_bytes(optimizer, param_ids),
            "array_ops": array_ops,
            "all_ops": all_ops,
            "bamsprod_kernel_ops": kernel_ops,
        }

    probes = _floor_probe(params)
    for probe in probes.values():
        probe()
    timed = {**steps, **probes}
    times = {key: [] for key in timed}
    order = list(timed)
    shuffle = random.Random(seed)
    for _ in range(rounds):
        shuffle.shuffle(order)
        for key in order:
            start = time.perf_counter()
            timed[key]()
            _sync()
            times[key].append(time.perf_counter() - start)

    floor_key = min(probes, key=lambda k: statistics.median(times[k]))
    floor = statistics.median(times[floor_key])
    base = statistics.median(times[BASELINE]) if BASELINE in times else None
    rows = []
    for key in optimizers:
        t = times[key]
        median = statistics.median(t)
        paired = (statistics.median(a / b for a, b in zip(t, times[BASELINE]))
                  if base else None)
        q = np.percentile(t, [25, 75])
        rows.append({
            "model": name,
            "optimizer": key,
            **info[key],
            "params": params,
            "variables": len(variables),
            "median_ms": 1e3 * median,
            "iqr_ms": [1e3 * q[0], 1e3 * q[1]],
            "ratio_to_amsgrad": median / base if base else None,
            "paired_ratio_to_amsgrad": paired,
            "ratio_to_floor": median / floor,
            "state_bytes_per_param": info[key]["state_bytes"] / params,
        })
    floor_row = {
        "model": name,
        "params": params,
        "floor_probe": floor_key,
        "floor_ms": 1e3 * floor,
        "floor_bandwidth_GBps": FLOOR_BYTES_PER_PARAM * params / floor / 1e9,
        "probe_medians_ms": {k: 1e3 * statistics.median(times[k]) for k in probes},
    }
    gc.collect()
    return {"rows": rows, "floor": floor_row, "times_ms": {
        k: [round(1e3 * x, 4) for x in v] for k, v in times.items()}}


def print_table(results: list[dict]) -> None:
    header = (f"{'model':<17} {'optimizer':<26} {'params':>10} {'median ms':>10} "
              f"{'vs AMSGrad':>10} {'vs floor':>9} {'state B/p':>9} {'ops':>11}")
    print(header)
    print("-" * len(header))
    for result in results:
        floor = result["floor"]
        for row in result["rows"]:
            ratio = row["ratio_to_amsgrad"]
            print(f"{row['model']:<17} {row['optimizer']:<26} {row['params']:>10,} "
                  f"{row['median_ms']:>10.2f} "
                  f"{(f'{ratio:.3f}' if ratio else '-'):>10} "
                  f"{row['ratio_to_floor']:>9.2f} {row['state_bytes_per_param']:>9.1f} "
                  f"{row['array_ops']:>5}/{row['all_ops']:<5}")
        print(f"{floor['model']:<17} {'(36 B/param floor)':<26} {floor['params']:>10,} "
              f"{floor['floor_ms']:>10.2f} {'':>10} {1.0:>9.2f}   "
              f"({floor['floor_bandwidth_GBps']:.1f} GB/s, {floor['floor_probe']})")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=None,
                        help=f"comma-separated, from: {', '.join(machine.MODELS)} "
                             "(default: all, each with its optimizer set)")
    parser.add_argument("--optimizers", default=None,
                        help=f"comma-separated, from: {', '.join(OPTIMIZERS)}")
    parser.add_argument("--rounds", type=int, default=60, help="timed steps per optimizer")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: TinyBinaryCNN, 4 optimizers, 5 rounds")
    parser.add_argument("--with-constraints", action="store_true",
                        help="update the model's own variables, so every optimizer also "
                             "applies their Keras constraints (larq's weight_clip), as in "
                             "training; by default constraint-free copies, so the time is "
                             "the update's alone")
    parser.add_argument("--output", default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    if args.quick:
        plan = dict(QUICK_MODELS)
        args.rounds = min(args.rounds, 5)
        args.warmup = 1
    else:
        plan = dict(DEFAULT_MODELS)
    if args.models:
        names = [m.strip() for m in args.models.split(",") if m.strip()]
        unknown = [m for m in names if m not in machine.MODELS]
        if unknown:
            parser.error(f"unknown model(s) {unknown}; choose from {list(machine.MODELS)}")
        plan = {m: plan.get(m, CORE) for m in names}
    if args.optimizers:
        chosen = [o.strip() for o in args.optimizers.split(",") if o.strip()]
        unknown = [o for o in chosen if o not in OPTIMIZERS]
        if unknown:
            parser.error(f"unknown optimizer(s) {unknown}; choose from {list(OPTIMIZERS)}")
        plan = {m: chosen for m in plan}
    for m in plan:  # the baseline goes first in every model
        plan[m] = [BASELINE] + [o for o in plan[m] if o != BASELINE]
    return args, plan


def main(argv=None) -> int:
    args, plan = parse_args(argv)
    info = machine.describe()
    kernel = kernels.status()
    info["bandwidth_Bps"] = machine.copy_bandwidth()
    print(f"# {info['date']}  {info['cpu']} x{info['cpu_count']}  TF {info['tensorflow']}  "
          f"load {info['load_average_1m']:.2f}  GPUs {info['gpus'] or 'none'}")
    print(f"# BAMSProd kernel: {'available' if kernel['available'] else 'UNAVAILABLE'}"
          f"{'' if kernel['available'] else ' (' + str(kernel['error'])[:200] + ')'}")
    print(f"# NumPy copy bandwidth: {info['bandwidth_Bps']['best'] / 1e9:.1f} GB/s; "
          f"command: {' '.join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])])}")
    results = []
    for name, optimizers in plan.items():
        print(f"# {name}: {len(optimizers)} optimizers x {args.rounds} rounds ...",
              flush=True)
        results.append(bench_model(name, optimizers, args.rounds, args.warmup, args.seed,
                                   args.with_constraints))
    info["load_average_1m_end"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    print()
    print_table(results)
    if args.output:
        path = Path(args.output)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "command": " ".join([sys.executable, *sys.argv]),
            "machine": info,
            "kernel": kernel,
            "rounds": args.rounds,
            "with_constraints": args.with_constraints,
            "results": results,
        }
        with contextlib.suppress(TypeError):
            path.write_text(json.dumps(payload, indent=1))
        print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
