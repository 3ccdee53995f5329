"""The comparison harness: several optimizers on one binary graph, fair by construction.

Held out: ``--validation-size`` examples of the training split (default 10%, at most
5,000, picked by a fixed seeded permutation, the same for every seed and optimizer) are
never trained on. Every ``--eval-every`` steps (default: about 20 points per run, fewer for
a large validation set: :func:`~larq_bamsprod.harness.runner.training.evaluation_steps`) the
model is evaluated on them; the best checkpoint and the time to a target validation
accuracy are chosen on validation only. Test accuracy is measured once at the end, for the
final weights and for the best-validation weights, and never chooses anything. On a text
corpus (``ptb``, with ``BinaryLSTM``) the score is perplexity, lower is better, and the
validation set is the corpus' own validation split (:mod:`larq_bamsprod.harness.metrics`).

For each seed, every optimizer starts from the same initial weights (built once per seed
and saved under ``OUTPUT/init/``) and sees the same batches in the same order (epoch ``e``
of seed ``s`` is shuffled with a seed derived from ``(s, e)``, so the order does not
depend on which optimizer runs or on whether the run was resumed). Every optimizer trains
the same graph with the same loss, schedule shape and epoch budget; per-optimizer
hyperparameters come from each optimizer's entry in
:data:`larq_bamsprod.harness.catalogue.registry.REGISTRY`.

Nothing is lost on interruption: each (optimizer, seed) run saves a
``tf.train.CheckpointManager`` checkpoint (model, optimizer slots, step counters) after
every epoch and then its history (the evaluation rows up to that epoch), both atomically.
Running the same command again skips finished runs and resumes unfinished ones from their
last finished epoch; a run killed with SIGKILL loses at most the epoch in progress.

Output folder::

    config.json                      what was compared, per-optimizer hyperparameters
                                     included (a rerun must match it: config.py)
    init/seed<S>.weights.h5          the shared initial weights of seed S
    runs/<opt>-seed<S>/history.json  one row per evaluation point of the finished epochs
    runs/<opt>-seed<S>/ckpt/         checkpoints (the last two epochs)
    runs/<opt>-seed<S>/best.weights.npz the weights with the best validation accuracy
    runs/<opt>-seed<S>/done.json     rows + final and best-validation test metrics
    tensorboard/<opt>-seed<S>/       scalars per evaluation point, learning rate, HParams
    results.{md,csv,json}            the table: means, paired 95% intervals, verdicts
    curves.png                       validation accuracy vs steps and seconds, loss
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Callable

import tensorflow as tf

from larq_bamsprod.harness.catalogue import registry
from larq_bamsprod.harness.experiments.config import (
    CompareConfig,
    ResumeError,
    check_resumable,
    recorded_hyperparameters,
    reference_of,
    resolved_hyperparameters,
)
from larq_bamsprod.harness.files import (
    check_writable_folder,
    read_json,
    write_json_atomic,
    write_text_atomic,
)
from larq_bamsprod.harness.reports import layout
from larq_bamsprod.harness.reports.plots import plot_curves
from larq_bamsprod.harness.reports.summary import summarize
from larq_bamsprod.harness.reports.tables import results_csv, results_markdown
from larq_bamsprod.harness.runner.distribute import (
    is_chief,
    make_strategy,
    shard,
)
from larq_bamsprod.harness.runner.progress import Progress
from larq_bamsprod.harness.runner.training import (
    default_spacing,
    evaluation_steps,
    run_one,
    schedule_shape,
    validation_batches,
)
from larq_bamsprod.harness.words import plural

__all__ = ["CompareConfig", "ResumeError", "check", "check_resumable", "run_comparison"]


def check(cfg: CompareConfig, hyperparameters: bool = True) -> None:
    """Check what only reading files, data and models shows, before anything is written.

    Order: the strategy of ``--distribute`` (TF_CONFIG checked; TensorFlow allows
    multiworker's only before any tensor exists); the output folder; the workload (a
    user's: its data read and its model built once; a built-in's: its model built, its
    sizes); the settings recorded in the output folder by an earlier run
    (``hyperparameters=False``: not the optimizers', for ``tune``, whose final comparison
    trains the chosen ones); a built-in's dataset (prepared now, or how to get it);
    ``--eval-every`` against the steps of a run; every optimizer, built as training will
    build it (its own checks run).
    """
    if cfg.distribute:
        make_strategy(cfg.distribute)
    check_writable_folder(cfg.output, "--output")
    workload = cfg.workload
    if workload.builtin:
        workload.check_model()
        workload.check_validation_size()
        check_resumable(cfg, hyperparameters=hyperparameters)
        workload.check()  # may build or download the dataset: after the cheap checks
    else:
        workload.check()  # reads the data and builds the model once: the identity needs it
        check_resumable(cfg, hyperparameters=hyperparameters)
    steps = cfg.steps_per_epoch or max(workload.train_examples() // workload.batch_size, 1)
    total = cfg.epochs * steps
    if cfg.eval_every is not None and cfg.eval_every > total:
        raise ValueError(
            f"--eval-every {cfg.eval_every} is more than the {total} steps of each run "
            f"({cfg.epochs} {plural(cfg.epochs, 'epoch')} of {steps} steps): no evaluation "
            f"but the last; give --eval-every {total} or less, or leave it out")
    shape = schedule_shape(cfg.schedule, total)
    for name in cfg.optimizers:
        try:
            registry.make_optimizer(name, cfg.hparams.get(name), shape)
        except (ValueError, TypeError) as err:
            raise ValueError(f"optimizer {name} (set with --hparam {name}.NAME=VALUE): "
                             f"{err}") from err


def run_comparison(cfg: CompareConfig, log: Callable[[str], None] = print) -> dict:
    """Run (or resume) every (optimizer, seed) of ``cfg``; write tables and the plot."""
    out = Path(cfg.output)
    check_resumable(cfg)
    if cfg.deterministic:
        tf.config.experimental.enable_op_determinism()
    previous_policy = tf.keras.mixed_precision.global_policy()
    if cfg.mixed_precision:
        tf.keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        return _run_all(cfg, out, log)
    finally:
        tf.keras.mixed_precision.set_global_policy(previous_policy)


def _run_all(cfg: CompareConfig, out: Path, log: Callable[[str], None]) -> dict:
    strategy = make_strategy(cfg.distribute)
    chief = is_chief(strategy)
    if cfg.distribute:
        log(f"--distribute {cfg.distribute} ({type(strategy).__name__}): "
            f"{strategy.num_replicas_in_sync} replicas in sync, global batch "
            f"{cfg.workload.batch_size}")
    if chief:
        merged = cfg.to_json()
        previous = read_json(out / "config.json") or {}
        merged["optimizers"] = list(dict.fromkeys(previous.get("optimizers", []) + cfg.optimizers))
        merged["seeds"] = sorted(set(previous.get("seeds", [])) | set(cfg.seeds))
        merged["hparams"] = {**previous.get("hparams", {}), **cfg.hparams}
        # What each optimizer's runs train with: a rerun must match it (check_resumable).
        merged["hyperparameters"] = {**recorded_hyperparameters(out, previous),
                                     **resolved_hyperparameters(cfg)}
        if "eval_spacing" in previous:  # the folder's evaluation points (eval_spacing)
            merged["eval_spacing"] = previous["eval_spacing"]
        write_json_atomic(out / "config.json", merged)
    workload = cfg.workload
    data_ = shard(workload.load(cfg.steps_per_epoch))
    notes = workload.notes(data_.input_shape)
    for note in notes:
        log(f"Note: {note}.")
    total_steps = cfg.epochs * data_.steps_per_epoch
    spacing = eval_spacing(cfg, out, total_steps, validation_batches(data_, workload.batch_size))
    if chief:
        recorded = read_json(out / "config.json") or {}
        if recorded.get("eval_spacing") != spacing:
            write_json_atomic(out / "config.json", {**recorded, "eval_spacing": spacing})
    # Every run of the folder evaluates at the same spacing (see eval_spacing).
    run_cfg = dataclasses.replace(cfg, eval_every=spacing)
    points = evaluation_steps(total_steps, spacing)
    unit = "examples" if data_.metric.percent else "windows"
    log(f"{data_.train_size} training, {data_.validation_size} validation {unit}; "
        f"{total_steps} steps per run, {len(points)} evaluation points per run")
    results: dict[tuple[str, int], dict] = {}
    progress = Progress(len(cfg.optimizers) * len(cfg.seeds), total_steps, log, cfg.verbose)
    started = time.perf_counter()
    for seed in cfg.seeds:
        for name in cfg.optimizers:
            results[(name, seed)] = run_one(workload, run_cfg, name, seed, data_, strategy,
                                            out, log, progress)
            tf.keras.backend.clear_session()
    # The report covers the folder's runs, not only this command's: measured against the
    # reference the full command would have (a rerun may name only the runs still missing).
    results = _with_earlier_runs(results, out, cfg.epochs)
    names = list(dict.fromkeys(name for name, _ in results))
    summary = summarize(results, reference_of(names, cfg.reference),
                        cfg.target if cfg.target is not None else workload.target, data_.metric)
    summary["config"] = {**cfg.to_json(), "optimizers": names,
                         "seeds": sorted({seed for _, seed in results})}
    summary["notes"] = notes
    summary["wall_seconds"] = time.perf_counter() - started
    summary["train_size"] = data_.train_size
    summary["validation_size"] = data_.validation_size
    summary["evaluation_steps"] = points
    summary["layout"] = _layout(workload, out, cfg, [row["optimizer"] for row in summary["rows"]])
    if chief:
        write_json_atomic(out / "results.json", summary)
        write_text_atomic(out / "results.md", results_markdown(summary, cfg))
        write_text_atomic(out / "results.csv", results_csv(summary))
        plot_curves({k: r["history"] for k, r in results.items()}, out / "curves.png",
                    workload.describe(), summary["target"], data_.metric)
        log(f"\n{results_markdown(summary, cfg)}\nwritten to {out}/results.md, curves.png "
            f"({summary['wall_seconds']:.0f} s)")
    return summary


def eval_spacing(cfg: CompareConfig, out: Path, total_steps: int,
                 validation_batches_: int) -> int:
    """Training steps between two evaluation points of every run in ``out``.

    ``--eval-every`` if given; else the spacing the folder's first comparison chose
    (``config.json``'s ``eval_spacing``), so a run grown by more epochs (constant schedule)
    keeps evaluating where its first part did, as one run of the new length with that
    ``--eval-every`` would; else the default for ``total_steps``
    (:func:`~larq_bamsprod.harness.runner.training.default_spacing`; more than
    ``total_steps``: one evaluation, after the last step).
    """
    if cfg.eval_every is not None:
        return cfg.eval_every
    recorded = (read_json(out / "config.json") or {}).get("eval_spacing")
    if recorded is not None:
        return recorded
    return default_spacing(total_steps, validation_batches_)


def _layout(workload, out: Path, cfg: CompareConfig, optimizers: list[str]) -> dict:
    """Binary and real trainable weights of the workload's model, and which optimizer
    trains which (:mod:`larq_bamsprod.harness.reports.layout`)."""
    counts = layout.weight_layout(workload.build_model())
    tf.keras.backend.clear_session()
    recorded = {**(read_json(out / "config.json") or {}).get("hyperparameters", {}),
                **resolved_hyperparameters(cfg)}
    return {**counts, "trained_by": {name: layout.trained_by(name, recorded.get(name, {}))
                                     for name in optimizers}}


def _with_earlier_runs(results: dict, out: Path, epochs: int) -> dict:
    """``results`` plus every other finished run this folder records, in its order.

    A rerun may add optimizers or seeds and name only the new ones: the report still covers
    every finished run of the folder (their settings were checked when they ran), so no row
    is dropped from ``results.*`` because a later command named fewer optimizers.
    """
    recorded = read_json(out / "config.json") or {}
    merged = {}
    for name in recorded.get("optimizers", []):
        for seed in recorded.get("seeds", []):
            if (name, seed) in results:
                merged[(name, seed)] = results[(name, seed)]
                continue
            done = read_json(out / "runs" / f"{name}-seed{seed}" / "done.json")
            if done is not None and done.get("epochs", epochs) == epochs:
                merged[(name, seed)] = done
    return {**merged, **results}
