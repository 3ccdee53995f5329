"""The comparison harness: several optimizers on one binary graph, fair by construction.

For each seed, every optimizer starts from the same initial weights (built once per seed
and saved under ``OUTPUT/init/``) and sees the same batches in the same order (epoch ``e``
of seed ``s`` is shuffled with a seed derived from ``(s, e)``, so the order does not
depend on which optimizer runs or on whether the run was resumed). Every optimizer trains
the same graph with the same loss, schedule shape and epoch budget; per-optimizer
hyperparameters come from :data:`larq_bamsprod.harness.registry.DEFAULT_HPARAMS`.

Nothing is lost on interruption: each (optimizer, seed) run saves a
``tf.train.CheckpointManager`` checkpoint (model, optimizer slots, step counters) after
every epoch and then its history, both atomically. Running the same command again skips
finished runs and resumes unfinished ones from their last finished epoch; a run killed
with SIGKILL loses at most the epoch in progress.

Output folder::

    config.json                      what was compared, per-optimizer hyperparameters
                                     included (a rerun must match it: config.py)
    init/seed<S>.weights.h5          the shared initial weights of seed S
    runs/<opt>-seed<S>/history.json  one row per finished epoch
    runs/<opt>-seed<S>/ckpt/         checkpoints (the last two epochs)
    runs/<opt>-seed<S>/done.json     written when the run has finished
    tensorboard/<opt>-seed<S>/       TensorBoard scalars per epoch
    results.{md,csv,json}            the table (mean +- std over seeds)
    curves.png                       training loss and test accuracy per epoch
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import tensorflow as tf

from larq_bamsprod.harness.config import (
    CompareConfig,
    ResumeError,
    check_resumable,
    recorded_hyperparameters,
    resolved_hyperparameters,
)
from larq_bamsprod.harness.distribute import is_chief, make_strategy
from larq_bamsprod.harness.files import read_json, write_json_atomic, write_text_atomic
from larq_bamsprod.harness.models import input_note
from larq_bamsprod.harness.report import plot_curves, results_csv, results_markdown
from larq_bamsprod.harness.summary import summarize
from larq_bamsprod.harness.training import load_data, run_one

__all__ = ["CompareConfig", "ResumeError", "check_resumable", "run_comparison"]


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
            f"{strategy.num_replicas_in_sync} replicas in sync, global batch {cfg.batch_size}")
    if chief:
        merged = cfg.to_json()
        previous = read_json(out / "config.json") or {}
        merged["optimizers"] = list(dict.fromkeys(previous.get("optimizers", []) + cfg.optimizers))
        merged["seeds"] = sorted(set(previous.get("seeds", [])) | set(cfg.seeds))
        # What each optimizer's runs train with: a rerun must match it (check_resumable).
        merged["hyperparameters"] = {**recorded_hyperparameters(out, previous),
                                     **resolved_hyperparameters(cfg)}
        write_json_atomic(out / "config.json", merged)
    global_batch = cfg.batch_size
    data_ = load_data(cfg, global_batch)
    notes = [note for note in (input_note(cfg.model, data_.input_shape),) if note]
    for note in notes:
        log(f"Note: {note}.")
    histories: dict[tuple[str, int], list[dict]] = {}
    total = len(cfg.optimizers) * len(cfg.seeds)
    started = time.perf_counter()
    index = 0
    for seed in cfg.seeds:
        for name in cfg.optimizers:
            index += 1
            elapsed = time.perf_counter() - started
            log(f"[{index}/{total}] {name} seed {seed} ({elapsed:.0f} s elapsed)")
            histories[(name, seed)] = run_one(cfg, name, seed, data_, strategy, out, log)
            tf.keras.backend.clear_session()
    summary = summarize(histories)
    summary["config"] = cfg.to_json()
    summary["notes"] = notes
    summary["wall_seconds"] = time.perf_counter() - started
    if chief:
        write_json_atomic(out / "results.json", summary)
        write_text_atomic(out / "results.md", results_markdown(summary, cfg))
        write_text_atomic(out / "results.csv", results_csv(summary))
        plot_curves(histories, out / "curves.png", f"{cfg.model} on {cfg.dataset}")
        log(f"\n{results_markdown(summary, cfg)}\nwritten to {out}/results.md, curves.png")
    return summary
