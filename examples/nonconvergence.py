"""Adam's non-convergence on Reddi's online problem and on the paper's binary form.

Reproduces section 3 (Theorems 1-2) of Liu et al. (CVPR 2020 workshops) with the real
optimizer classes: Keras' legacy ``SGD``, ``Adam``, ``Adam(amsgrad=True)``,
``larq_bamsprod.legacy.BAMSProd`` and
``larq_bamsprod.harness.catalogue.adabound.AdaBound``/``AMSBound``, all
with ``beta_1 = 0``, the problem's ``beta_2`` and step ``0.1 / sqrt(t)``, each on one scalar
``tf.Variable`` projected onto ``[-1, 1]`` after every step. The problems, the settings
and why they are what they are: :mod:`larq_bamsprod.harness.experiments.convex`.

Examples::

    python examples/nonconvergence.py --quick --output /tmp/nc      # seconds
    python examples/nonconvergence.py --output docs/results/nonconvergence

Prints one line per (problem, optimizer) and, with ``--output``, writes
``nonconvergence.json`` (final iterate, R_T/T, R_t/t at T/10, wall time, optimizer
configuration, per run) and ``nonconvergence.png`` (the iterate and R_t/t against t, log
x-axis, one column per problem).
"""

from __future__ import annotations  # noqa: I001  (larq_bamsprod must precede tensorflow)

import argparse
import datetime
import os
import platform
import sys
import time
from pathlib import Path

import larq_bamsprod  # noqa: F401  (before TensorFlow: selects Keras 2)
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from larq_bamsprod.harness.experiments import convex
from larq_bamsprod.harness.files import write_json_atomic

PROBLEMS = {"reddi": convex.reddi_problem, "binary": convex.binary_problem}
OPTIMIZERS = ("sgd", "adam", "amsgrad", "bamsprod", "bamsprod_c1", "adabound", "amsbound")
LABELS = {
    "sgd": "SGD",
    "adam": "Adam",
    "amsgrad": "AMSGrad",
    "bamsprod": 'BAMSProd (bound_target="mean")',
    "bamsprod_c1": "BAMSProd (bound_target=1.0)",
    "adabound": "AdaBound",
    "amsbound": "AMSBound",
}
# Curves that coincide (BAMSProd "mean" is AMSGrad on a scalar) stay visible when dashed.
LINESTYLES = {"bamsprod": "--", "bamsprod_c1": "-.", "adabound": ":", "amsbound": ":"}
PLOT_POINTS = 2000


def _choices(kind: str, valid) -> callable:
    def parse(text: str) -> list[str]:
        names = [name.strip() for name in text.split(",") if name.strip()]
        unknown = [name for name in names if name not in valid]
        if unknown or not names:
            raise argparse.ArgumentTypeError(
                f"unknown {kind} {unknown or text!r}; choose from {', '.join(valid)}"
            )
        return names

    return parse


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"{convex.QUICK_STEPS} steps, no XLA: seconds (used by the tests)")
    parser.add_argument("--steps", type=int, default=None,
                        help=f"steps T per run (default {convex.FULL_STEPS}, "
                             f"or {convex.QUICK_STEPS} with --quick)")
    parser.add_argument("--problems", type=_choices("problem", tuple(PROBLEMS)),
                        default=list(PROBLEMS), help=f"comma list of {', '.join(PROBLEMS)}")
    parser.add_argument("--optimizers", type=_choices("optimizer", OPTIMIZERS),
                        default=list(OPTIMIZERS), help=f"comma list of {', '.join(OPTIMIZERS)}")
    parser.add_argument("--no-jit", action="store_true",
                        help="do not compile the loop with XLA (the full mode does)")
    parser.add_argument("--output", type=Path, default=None,
                        help="folder for nonconvergence.json and nonconvergence.png")
    args = parser.parse_args(argv)
    if args.steps is None:
        args.steps = convex.QUICK_STEPS if args.quick else convex.FULL_STEPS
    if args.steps < 1:
        parser.error(f"--steps must be >= 1, received {args.steps}")
    return args


def summarize(result: convex.RunResult) -> dict:
    average = result.average_regret()
    steps = result.steps
    tail = result.played[steps - max(1, steps // 10):]
    return {
        "final_iterate": result.final_iterate,
        "final_latent": result.final_latent,
        "average_regret_T": float(average[-1]),
        "average_regret_T_over_10": float(average[max(0, steps // 10 - 1)]),
        "mean_played_last_10pct": float(np.mean(tail)),
        "seconds": round(result.seconds, 2),
        "xla": result.jit_compiled,
        "notes": result.notes,
        "optimizer": result.optimizer_config,
    }


def plot(curves: dict, problems: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(problems), figsize=(6.5 * len(problems), 7.5),
                             squeeze=False, sharex="col")
    for column, (name, problem) in enumerate(problems.items()):
        top, bottom = axes[0, column], axes[1, column]
        for optimizer, (t, latent, average) in curves[name].items():
            style = {"label": LABELS[optimizer], "lw": 1.4, "ls": LINESTYLES.get(optimizer, "-")}
            top.plot(t, latent, **style)
            bottom.plot(t, average, **style)
        top.set_title(f"({'ab'[column] if column < 2 else column}) {problem.description}",
                      fontsize=9)
        top.set_ylabel("latent w_t (plays alpha*sign(w_t))" if problem.binary else "x_t")
        top.axhline(problem.optimum, color="k", ls=":", lw=0.8)
        top.set_ylim(-1.05, 1.05)
        bottom.set_ylabel("average regret R_t / t (symlog)")
        # Adam's R_t/t stays at the dotted line; the others fall by decades.
        bottom.set_yscale("symlog", linthresh=1e-5)
        lowest = min(float(np.min(average)) for _, _, average in curves[name].values())
        bottom.set_ylim(bottom=min(0.0, lowest))
        bottom.axhline(problem.worst_point_average_regret, color="k", ls=":", lw=0.8)
        bottom.set_xlabel("t")
        for axis in (top, bottom):
            axis.set_xscale("log")  # set after symlog: sharex would otherwise reset it
            axis.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    args = parse_args(argv)
    tf.get_logger().setLevel("ERROR")  # one tf.function per run: retracing is expected
    jit = not (args.quick or args.no_jit)
    problems = {name: PROBLEMS[name]() for name in args.problems}
    index = np.unique(np.geomspace(1, args.steps, PLOT_POINTS).astype(np.int64)) - 1
    results: dict = {}
    curves: dict = {}
    start = time.perf_counter()
    for name, problem in problems.items():
        factories = convex.default_optimizers(beta_2=problem.beta_2)
        results[name] = {
            "description": problem.description,
            "beta_2": problem.beta_2,
            "coefficients": list(problem.coefficients),
            "optimum": problem.optimum,
            "worst_point_average_regret": problem.worst_point_average_regret,
            "optimizers": {},
        }
        curves[name] = {}
        for optimizer in args.optimizers:
            bar = None
            if not args.quick:
                bar = tqdm(total=args.steps, desc=f"{name}/{optimizer}", unit="step",
                           unit_scale=True, leave=False)
            done = [0]

            def progress(steps_done, bar=bar, done=done):
                if bar is not None:
                    bar.update(steps_done - done[0])
                    done[0] = steps_done

            result = convex.run(problem, factories[optimizer], args.steps,
                                jit_compile=jit, progress=progress)
            if bar is not None:
                bar.close()
            summary = summarize(result)
            results[name]["optimizers"][optimizer] = summary
            curves[name][optimizer] = (index + 1, result.latent[index],
                                       result.average_regret()[index])
            print(f"{name:7s} {LABELS[optimizer]:32s} final iterate {summary['final_iterate']:+.4f}"
                  f"  R_T/T {summary['average_regret_T']:.5f}"
                  f"  (R_t/t at T/10 {summary['average_regret_T_over_10']:.5f})"
                  f"  {summary['seconds']:.1f}s{'' if summary['xla'] else ' no XLA'}",
                  flush=True)
    wall = time.perf_counter() - start
    print(f"T = {args.steps} steps per run; wall time {wall:.1f}s")
    if args.output is not None:
        args.output.mkdir(parents=True, exist_ok=True)
        write_json_atomic(args.output / "nonconvergence.json", {
            "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
            "date": datetime.datetime.now().isoformat(timespec="seconds"),
            "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                        "tensorflow": tf.__version__},
            "steps": args.steps,
            "learning_rate": "0.1 / sqrt(t) for every optimizer, beta_1 = 0",
            "wall_seconds": round(wall, 1),
            "problems": results,
        })
        plot(curves, problems, args.output / "nonconvergence.png")
        print(f"wrote {args.output / 'nonconvergence.json'} and "
              f"{args.output / 'nonconvergence.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
