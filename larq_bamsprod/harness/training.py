"""One (optimizer, seed) run of a comparison: data, model, training loop, checkpoints.

Fair by construction: every optimizer of a seed starts from the same saved initial weights
and sees the same batches in the same order (epoch ``e`` of seed ``s`` is shuffled with
:func:`epoch_seed`), whether or not the run was resumed.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import tensorflow as tf

from larq_bamsprod.harness import registry
from larq_bamsprod.harness.config import CompareConfig, ResumeError, describe_hparams
from larq_bamsprod.harness.distribute import is_chief, shard_by_data
from larq_bamsprod.harness.files import read_json, write_json_atomic


def schedule_shape(name: str, total_steps: int):
    """A schedule with value 1 at step 0 that every optimizer's base rate is scaled by.

    ``constant``: 1. ``cosine``: cosine decay to 0 over the run. ``step``: x0.1 at 50% and
    75% of the run (the CIFAR ResNet convention).
    """
    if name == "constant":
        return None
    if name == "cosine":
        return tf.keras.optimizers.schedules.CosineDecay(1.0, decay_steps=max(total_steps, 1))
    boundaries = [max(int(total_steps * 0.5), 1), max(int(total_steps * 0.75), 2)]
    return tf.keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, [1.0, 0.1, 0.01])


def epoch_seed(seed: int, epoch: int) -> int:
    return seed * 100_003 + epoch


class _StepTimer(tf.keras.callbacks.Callback):
    """Wall time of each training batch (the first two of an epoch are skipped)."""

    def __init__(self):
        super().__init__()
        self.times: list[float] = []
        self._start = 0.0
        self._batch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.times, self._batch = [], 0

    def on_train_batch_begin(self, batch, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self._batch += 1
        if self._batch > 2:
            self.times.append(time.perf_counter() - self._start)


@dataclasses.dataclass
class Data:
    num_classes: int
    input_shape: tuple[int, int, int]
    train: Callable[[int], tf.data.Dataset]  # epoch seed -> dataset
    test: tf.data.Dataset
    steps_per_epoch: int


def load_data(cfg: CompareConfig, global_batch: int) -> Data:
    from larq_bamsprod.harness import data

    info = data.get_info(cfg.dataset)
    shape = tuple(info.image_shape)
    if cfg.image_size is not None:
        shape = (cfg.image_size, cfg.image_size, shape[2])
    n_train = data.cardinality(cfg.dataset, info.train_split, cfg.train_subset,
                               data_dir=cfg.data_dir)
    steps = cfg.steps_per_epoch or max(n_train // global_batch, 1)

    def train(seed: int) -> tf.data.Dataset:
        ds = data.load(
            cfg.dataset,
            info.train_split,
            batch_size=global_batch,
            shuffle=True,
            seed=seed,
            subset=cfg.train_subset,
            data_dir=cfg.data_dir,
            image_size=cfg.image_size,
            augment=cfg.augment,
            drop_remainder=True,
        )
        return shard_by_data(ds.repeat().take(steps))

    test = data.load(
        cfg.dataset,
        info.test_split,
        batch_size=global_batch,
        shuffle=False,
        subset=cfg.test_subset,
        data_dir=cfg.data_dir,
        image_size=cfg.image_size,
    )
    return Data(info.num_classes, shape, train, shard_by_data(test), steps)


def _build(cfg, data_: Data, strategy, optimizer_name: str | None, seed: int, total_steps):
    from larq_bamsprod.harness import models

    with strategy.scope():
        tf.keras.utils.set_random_seed(seed)
        model = models.build_model(cfg.model, data_.input_shape, data_.num_classes,
                                   **cfg.model_args)
        if optimizer_name is None:
            return model, None
        optimizer = registry.make_optimizer(
            optimizer_name,
            cfg.hparams.get(optimizer_name),
            schedule_shape(cfg.schedule, total_steps),
        )
        metrics = [tf.keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
        if data_.num_classes > 10:
            metrics.append(tf.keras.metrics.SparseTopKCategoricalAccuracy(5, name="top5"))
        model.compile(
            optimizer=optimizer,
            # Every registered model ends in a float32 softmax (models.build_model).
            loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=False),
            metrics=metrics,
        )
    return model, optimizer


def _init_weights(cfg, data_, strategy, seed: int, out: Path) -> Path:
    """Build the model once for ``seed`` and save the weights every optimizer starts from."""
    folder = out / "init" if is_chief(strategy) else out / ".scratch" / f"init-{os.getpid()}"
    path = folder / f"seed{seed}.weights.h5"
    if not path.exists():
        model, _ = _build(cfg, data_, strategy, None, seed, 1)
        tmp = path.with_name(f".tmp-{path.name}")  # keeps the .weights.h5 format
        path.parent.mkdir(parents=True, exist_ok=True)
        model.save_weights(str(tmp))
        os.replace(tmp, path)
    return path


def run_one(
    cfg: CompareConfig,
    optimizer_name: str,
    seed: int,
    data_: Data,
    strategy: tf.distribute.Strategy,
    out: Path,
    log: Callable[[str], None] = print,
) -> list[dict]:
    """Train one (optimizer, seed) run to ``cfg.epochs``, resuming if possible."""
    run_dir = out / "runs" / f"{optimizer_name}-seed{seed}"
    chief = is_chief(strategy)
    done = read_json(run_dir / "done.json")
    if done is not None:
        recorded = done.get("hyperparameters", describe_hparams(cfg, optimizer_name))
        if recorded != describe_hparams(cfg, optimizer_name):
            raise ResumeError(
                f"{run_dir} finished with hyperparameters {recorded}, not "
                f"{describe_hparams(cfg, optimizer_name)}; use another --output"
            )
        if len(done["history"]) >= cfg.epochs:
            log(f"{optimizer_name} seed {seed}: finished earlier, skipped")
            return done["history"]
        # More epochs with the constant schedule (config.py): continue from the checkpoint.
    history: list[dict] = read_json(run_dir / "history.json", []) or []
    total_steps = cfg.epochs * data_.steps_per_epoch
    init_path = _init_weights(cfg, data_, strategy, seed, out)
    model, optimizer = _build(cfg, data_, strategy, optimizer_name, seed, total_steps)
    model.load_weights(str(init_path))

    ckpt_dir = run_dir / "ckpt" if chief else out / ".scratch" / f"{os.getpid()}-{seed}"
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer)
    manager = tf.train.CheckpointManager(checkpoint, str(ckpt_dir), max_to_keep=2)
    if history:
        wanted = str(ckpt_dir / f"ckpt-{len(history)}")
        if not tf.io.gfile.exists(wanted + ".index"):
            raise ResumeError(
                f"{run_dir}: history.json has {len(history)} epochs but checkpoint {wanted} is "
                "missing; delete this run folder to start the run again"
            )
        try:
            checkpoint.restore(wanted).assert_existing_objects_matched()
        except (AssertionError, ValueError, tf.errors.OpError) as error:
            raise ResumeError(
                f"{run_dir}: checkpoint {wanted} does not fit this run's model and optimizer "
                f"({str(error).splitlines()[0]}); delete this run folder to start it again"
            ) from error
        log(f"{optimizer_name} seed {seed}: resumed after epoch {len(history)}")

    writer = tf.summary.create_file_writer(str(out / "tensorboard" / run_dir.name))
    timer = _StepTimer()
    verbose = cfg.verbose if cfg.verbose is not None else (1 if sys.stdout.isatty() else 2)
    for epoch in range(len(history), cfg.epochs):
        tf.keras.utils.set_random_seed(epoch_seed(seed, epoch))
        start = time.perf_counter()
        fit = model.fit(
            data_.train(epoch_seed(seed, epoch)),
            epochs=epoch + 1,
            initial_epoch=epoch,
            steps_per_epoch=data_.steps_per_epoch,
            callbacks=[timer],
            verbose=verbose,
        )
        train_seconds = time.perf_counter() - start
        test = model.evaluate(data_.test, verbose=0, return_dict=True)
        row = {
            "epoch": epoch + 1,
            "train_loss": float(fit.history["loss"][-1]),
            "train_accuracy": float(fit.history["accuracy"][-1]),
            "test_loss": float(test["loss"]),
            "test_accuracy": float(test["accuracy"]),
            "train_seconds": train_seconds,
            "step_seconds_median": statistics.median(timer.times) if timer.times else None,
            "steps": data_.steps_per_epoch,
        }
        if "top5" in test:
            row["test_top5"] = float(test["top5"])
        # Checkpoint first, then history: a kill in between leaves the older history,
        # whose matching checkpoint is still kept (max_to_keep=2).
        manager.save(checkpoint_number=epoch + 1)
        history.append(row)
        if chief:
            write_json_atomic(run_dir / "history.json", history)
            with writer.as_default(step=epoch + 1):
                for key, value in row.items():
                    if isinstance(value, float) and key != "epoch":
                        tf.summary.scalar(key, value)
            writer.flush()
        log(
            f"{optimizer_name} seed {seed}: epoch {epoch + 1}/{cfg.epochs} "
            f"train loss {row['train_loss']:.4f} test acc {row['test_accuracy']:.4f} "
            f"({train_seconds:.1f} s)"
        )
    if chief:
        write_json_atomic(
            run_dir / "done.json",
            {"history": history, "hyperparameters": describe_hparams(cfg, optimizer_name)},
        )
    return history
