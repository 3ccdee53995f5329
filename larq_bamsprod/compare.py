"""The comparison harness: several optimizers on one binary graph, fair by construction.

For each seed, every optimizer starts from the same initial weights (built once per seed
and saved under ``OUTPUT/init/``) and sees the same batches in the same order (epoch ``e``
of seed ``s`` is shuffled with a seed derived from ``(s, e)``, so the order does not
depend on which optimizer runs or on whether the run was resumed). Every optimizer trains
the same graph with the same loss, schedule shape and epoch budget; per-optimizer
hyperparameters come from :data:`larq_bamsprod.baselines.DEFAULT_HPARAMS`.

Nothing is lost on interruption: each (optimizer, seed) run saves a
``tf.train.CheckpointManager`` checkpoint (model, optimizer slots, step counters) after
every epoch and then its history, both atomically. Running the same command again skips
finished runs and resumes unfinished ones from their last finished epoch; a run killed
with SIGKILL loses at most the epoch in progress.

Output folder::

    config.json                      what was compared (a resumed run must match it)
    init/seed<S>.weights.h5          the shared initial weights of seed S
    runs/<opt>-seed<S>/history.json  one row per finished epoch
    runs/<opt>-seed<S>/ckpt/         checkpoints (the last two epochs)
    runs/<opt>-seed<S>/done.json     written when the run has finished
    tensorboard/<opt>-seed<S>/       TensorBoard scalars per epoch
    results.{md,csv,json}            the table (mean +- std over seeds)
    curves.png                       training loss and test accuracy per epoch
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import tensorflow as tf

from larq_bamsprod import baselines
from larq_bamsprod._io import read_json, write_json_atomic, write_text_atomic

SCHEDULES = ("constant", "cosine", "step")
DISTRIBUTE = (None, "mirrored", "multiworker")

# Fields that must match for a resumed comparison to stay fair; optimizers and seeds may
# be added to an existing output folder.
_FAIRNESS_FIELDS = (
    "model",
    "model_args",
    "dataset",
    "epochs",
    "batch_size",
    "steps_per_epoch",
    "train_subset",
    "test_subset",
    "schedule",
    "image_size",
    "augment",
    "mixed_precision",
)


@dataclasses.dataclass
class CompareConfig:
    """What one comparison runs; the command line maps onto it one to one."""

    model: str = "BinaryCNN"
    model_args: dict[str, Any] = dataclasses.field(default_factory=dict)
    dataset: str = "fashion_mnist"
    optimizers: list[str] = dataclasses.field(
        default_factory=lambda: list(baselines.OPTIMIZER_NAMES)
    )
    epochs: int = 5
    batch_size: int = 128
    seeds: list[int] = dataclasses.field(default_factory=lambda: [0])
    output: str = "runs/compare"
    steps_per_epoch: int | None = None
    train_subset: int | None = None
    test_subset: int | None = None
    schedule: str = "cosine"
    hparams: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    mixed_precision: bool = False
    distribute: str | None = None
    data_dir: str | None = None
    image_size: int | None = None
    augment: bool = False
    deterministic: bool = True
    verbose: int | None = None  # Keras progress bar: None = 1 on a terminal, else 2

    def __post_init__(self):
        self.optimizers = [baselines.canonical_name(o) for o in self.optimizers]
        if not self.optimizers:
            raise ValueError(
                f"optimizers is empty; choose from: {', '.join(baselines.OPTIMIZER_NAMES)}"
            )
        _positive("epochs", self.epochs)
        _positive("batch_size", self.batch_size)
        for name in ("steps_per_epoch", "train_subset", "test_subset", "image_size"):
            if getattr(self, name) is not None:
                _positive(name, getattr(self, name))
        if not self.seeds:
            raise ValueError("seeds is empty; give at least one seed, e.g. --seeds 0")
        for seed in self.seeds:
            if not isinstance(seed, int) or seed < 0:
                raise ValueError(f"seeds must be integers >= 0, received seed={seed!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(
                f"schedule must be one of {', '.join(SCHEDULES)}, received "
                f"schedule={self.schedule!r}"
            )
        if self.distribute not in DISTRIBUTE:
            raise ValueError(
                "distribute must be one of mirrored, multiworker (or unset), received "
                f"distribute={self.distribute!r}"
            )
        for opt, values in self.hparams.items():
            baselines.hyperparameters(opt, values)
        from larq_bamsprod import models

        models.check_model_args(self.model, self.model_args)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


class ResumeError(RuntimeError):
    """A run folder's files cannot be resumed (missing or foreign checkpoint)."""


def _positive(name: str, value) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, received {name}={value!r}")


# --------------------------------------------------------------------------- schedules
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


# --------------------------------------------------------------------------- strategy
def make_strategy(distribute: str | None) -> tf.distribute.Strategy:
    """The ``tf.distribute`` strategy for ``--distribute`` (default: the default one)."""
    if distribute == "mirrored":
        if tf.config.list_logical_devices("GPU"):
            return tf.distribute.MirroredStrategy()  # every local GPU
        # No GPU: every logical CPU device (one, unless virtual CPUs were configured, as
        # the tests do); NCCL is GPU-only, so reduce on one device.
        cpus = [device.name for device in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(
            cpus, cross_device_ops=tf.distribute.ReductionToOneDevice())
    if distribute == "multiworker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError(
                "--distribute multiworker needs the TF_CONFIG environment variable on every "
                "worker (see README, 'Beyond one machine')"
            )
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return True
    return resolver.task_type == "chief" or (
        resolver.task_type == "worker" and resolver.task_id == 0
    )


# --------------------------------------------------------------------------- one run
def _epoch_seed(seed: int, epoch: int) -> int:
    return seed * 100_003 + epoch


def model_name(name: str) -> str:
    """The registered spelling of a model name (case-insensitive), or a ValueError."""
    from larq_bamsprod import models

    by_lower = {key.lower(): key for key in models.MODELS}
    if str(name).lower() not in by_lower:
        raise ValueError(f"unknown model {name!r}; valid models: {', '.join(models.MODELS)}")
    return by_lower[str(name).lower()]


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
class _Data:
    num_classes: int
    input_shape: tuple[int, int, int]
    train: Callable[[int], tf.data.Dataset]  # epoch seed -> dataset
    test: tf.data.Dataset
    steps_per_epoch: int


def _shard_by_data(ds: tf.data.Dataset) -> tf.data.Dataset:
    # Under MultiWorkerMirroredStrategy, tf.data shards by file by default, which fails on
    # TFDS datasets stored in fewer files than workers (Fashion-MNIST has one per split):
    # shard by element instead. Ignored when nothing is distributed.
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA)
    return ds.with_options(options)


def _load_data(cfg: CompareConfig, global_batch: int) -> _Data:
    from larq_bamsprod import data

    info = data.get_info(cfg.dataset)
    shape = tuple(info.image_shape)
    if cfg.image_size is not None:
        shape = (cfg.image_size, cfg.image_size, shape[2])
    n_train = data.cardinality(cfg.dataset, info.train_split, cfg.train_subset)
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
        return _shard_by_data(ds.repeat().take(steps))

    test = data.load(
        cfg.dataset,
        info.test_split,
        batch_size=global_batch,
        shuffle=False,
        subset=cfg.test_subset,
        data_dir=cfg.data_dir,
        image_size=cfg.image_size,
    )
    return _Data(info.num_classes, shape, train, _shard_by_data(test), steps)


def _build(cfg, data_: _Data, strategy, optimizer_name: str | None, seed: int, total_steps):
    from larq_bamsprod import models

    with strategy.scope():
        tf.keras.utils.set_random_seed(seed)
        model = models.build_model(cfg.model, data_.input_shape, data_.num_classes,
                                   **cfg.model_args)
        if optimizer_name is None:
            return model, None
        optimizer = baselines.make_optimizer(
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
    data_: _Data,
    strategy: tf.distribute.Strategy,
    out: Path,
    log: Callable[[str], None] = print,
) -> list[dict]:
    """Train one (optimizer, seed) run to ``cfg.epochs``, resuming if possible."""
    run_dir = out / "runs" / f"{optimizer_name}-seed{seed}"
    chief = is_chief(strategy)
    done = read_json(run_dir / "done.json")
    if done is not None:
        log(f"{optimizer_name} seed {seed}: finished earlier, skipped")
        return done["history"]
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
        tf.keras.utils.set_random_seed(_epoch_seed(seed, epoch))
        start = time.perf_counter()
        fit = model.fit(
            data_.train(_epoch_seed(seed, epoch)),
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
            {"history": history, "hyperparameters": _describe_hparams(cfg, optimizer_name)},
        )
    return history


def _describe_hparams(cfg: CompareConfig, name: str) -> dict:
    return {
        k: (v if isinstance(v, (int, float, str, bool, type(None))) else repr(v))
        for k, v in baselines.hyperparameters(name, cfg.hparams.get(name)).items()
    }


# --------------------------------------------------------------------------- summary
def _mean_std(values: list[float]) -> tuple[float, float]:
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return float("nan"), float("nan")
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return statistics.fmean(values), std


def first_epoch_reaching(history: list[dict], target: float, key="test_accuracy"):
    """First epoch (1-based) whose ``key`` is at least ``target``, or None."""
    for row in history:
        if row[key] >= target:
            return row["epoch"]
    return None


def summarize(histories: dict[tuple[str, int], list[dict]], reference: str = "bop") -> dict:
    """Aggregate per-(optimizer, seed) histories into one row per optimizer.

    Per seed, ``reference`` (Bop) reaches its best test accuracy ``b`` first at epoch
    ``E_ref``; each optimizer's ``epochs_to_ref_best`` is the first epoch at which it
    reaches ``b`` and ``speedup_vs_ref = E_ref / epochs_to_ref_best`` (> 1: faster than
    Bop; missing when it never reaches ``b``). Means are over the seeds where defined.
    """
    optimizers = list(dict.fromkeys(opt for opt, _ in histories))
    seeds = sorted({seed for _, seed in histories})
    rows = []
    for opt in optimizers:
        finals, bests, top5, step_times, reach, speed, losses = [], [], [], [], [], [], []
        for seed in seeds:
            hist = histories.get((opt, seed))
            if not hist:
                continue
            finals.append(hist[-1]["test_accuracy"])
            bests.append(max(r["test_accuracy"] for r in hist))
            losses.append(hist[-1]["train_loss"])
            if "test_top5" in hist[-1]:
                top5.append(hist[-1]["test_top5"])
            times = [r["step_seconds_median"] for r in hist if r.get("step_seconds_median")]
            if times:
                step_times.append(statistics.median(times))
            ref = histories.get((reference, seed))
            if ref:
                ref_best = max(r["test_accuracy"] for r in ref)
                ref_epoch = first_epoch_reaching(ref, ref_best)
                epoch = first_epoch_reaching(hist, ref_best)
                reach.append(epoch)
                if epoch is not None:
                    speed.append(ref_epoch / epoch)
        row = {"optimizer": opt, "seeds": len(finals)}
        for key, values in (
            ("final_test_accuracy", finals),
            ("best_test_accuracy", bests),
            ("final_train_loss", losses),
            ("final_test_top5", top5),
        ):
            if values:
                row[key + "_mean"], row[key + "_std"] = _mean_std(values)
        row["step_ms_median"] = 1000 * statistics.median(step_times) if step_times else None
        if reach:
            row["epochs_to_ref_best"] = reach
            row["ref_best_reached"] = f"{sum(e is not None for e in reach)}/{len(reach)}"
            row["speedup_vs_ref_mean"] = statistics.fmean(speed) if speed else None
        rows.append(row)
    return {"reference": reference, "seeds": seeds, "rows": rows}


def _fmt(mean, std, pct=True):
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "-"
    scale = 100 if pct else 1
    return f"{mean * scale:.2f} ± {std * scale:.2f}"


def results_markdown(summary: dict, cfg: CompareConfig | None = None) -> str:
    rows = summary["rows"]
    has_top5 = any("final_test_top5_mean" in r for r in rows)
    head = ["optimizer", "seeds", "final test top-1 (%)", "best test top-1 (%)"]
    if has_top5:
        head.append("final test top-5 (%)")
    head += ["final train loss", f"epoch reaching {summary['reference']}'s best",
             f"speed-up vs {summary['reference']}", "ms / step"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [
            r["optimizer"],
            str(r["seeds"]),
            _fmt(r.get("final_test_accuracy_mean"), r.get("final_test_accuracy_std")),
            _fmt(r.get("best_test_accuracy_mean"), r.get("best_test_accuracy_std")),
        ]
        if has_top5:
            cells.append(_fmt(r.get("final_test_top5_mean"), r.get("final_test_top5_std")))
        reach = r.get("epochs_to_ref_best")
        speed = r.get("speedup_vs_ref_mean")
        cells += [
            _fmt(r.get("final_train_loss_mean"), r.get("final_train_loss_std"), pct=False),
            "-" if reach is None else ", ".join("never" if e is None else str(e) for e in reach),
            "-" if speed is None else f"{speed:.2f}x",
            "-" if r["step_ms_median"] is None else f"{r['step_ms_median']:.1f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    if cfg is not None:
        text = (
            f"Model `{cfg.model}`"
            + ("(" + ", ".join(f"{k}={v!r}" for k, v in cfg.model_args.items()) + ")"
               if cfg.model_args else "")
            + f" on `{cfg.dataset}`, {cfg.epochs} epochs, batch "
            f"{cfg.batch_size}, seeds {cfg.seeds}, schedule `{cfg.schedule}`"
            + (f", train subset {cfg.train_subset}" if cfg.train_subset else "")
            + (f", {cfg.steps_per_epoch} steps/epoch" if cfg.steps_per_epoch else "")
            + (f", test subset {cfg.test_subset}" if cfg.test_subset else "")
            + ". Mean ± std over seeds; 'epoch reaching' lists one entry per seed.\n\n"
            + text
        )
    return text


def results_csv(summary: dict) -> str:
    keys = sorted({k for r in summary["rows"] for k in r})
    keys.remove("optimizer")
    keys = ["optimizer"] + keys
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys)
    writer.writeheader()
    for row in summary["rows"]:
        writer.writerow({k: json.dumps(v) if isinstance(v, list) else v for k, v in row.items()})
    return buf.getvalue()


def plot_curves(histories: dict[tuple[str, int], list[dict]], path: str | os.PathLike,
                title: str = "") -> None:
    """Training loss and test accuracy per epoch (mean, shaded min-max over seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    optimizers = list(dict.fromkeys(opt for opt, _ in histories))
    fig, axes = plt.subplots(2, 1, figsize=(7, 7), sharex=True)
    for opt in optimizers:
        runs = [h for (o, _), h in histories.items() if o == opt and h]
        if not runs:
            continue
        length = min(len(h) for h in runs)
        epochs = np.arange(1, length + 1)
        for ax, key in zip(axes, ("train_loss", "test_accuracy")):
            values = np.array([[r[key] for r in h[:length]] for h in runs])
            mean = values.mean(axis=0)
            (line,) = ax.plot(epochs, mean, marker="o", ms=3, label=opt,
                              lw=2.5 if opt == "bamsprod" else 1.5)
            if len(runs) > 1:
                ax.fill_between(epochs, values.min(0), values.max(0),
                                color=line.get_color(), alpha=0.15)
    axes[0].set_ylabel("training loss")
    axes[0].set_yscale("log")
    axes[1].set_ylabel("test top-1 accuracy")
    axes[1].set_xlabel("epoch")
    axes[1].xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    axes[0].legend(ncol=2, fontsize=8)
    for ax in axes:
        ax.grid(alpha=0.3)
    if title:
        axes[0].set_title(title)
    fig.tight_layout()
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, path)


# --------------------------------------------------------------------------- driver
def check_resumable(cfg: CompareConfig) -> None:
    """Raise a ValueError if ``cfg.output`` holds a comparison with other settings."""
    out = Path(cfg.output)
    previous = read_json(out / "config.json")
    if previous is None:
        return
    # A field missing from an older config.json had its default value then.
    defaults = CompareConfig().to_json()
    changed = [k for k in _FAIRNESS_FIELDS if previous.get(k, defaults[k]) != getattr(cfg, k)]
    if changed:
        details = ", ".join(f"{k}: {previous.get(k, defaults[k])!r} -> {getattr(cfg, k)!r}"
                            for k in changed)
        raise ValueError(
            f"{out} holds a comparison with different settings ({details}); results would "
            "not be comparable. Use another --output, or delete the folder to start again."
        )


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
        write_json_atomic(out / "config.json", merged)
    global_batch = cfg.batch_size
    data_ = _load_data(cfg, global_batch)
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
    summary["wall_seconds"] = time.perf_counter() - started
    if chief:
        write_json_atomic(out / "results.json", summary)
        write_text_atomic(out / "results.md", results_markdown(summary, cfg))
        write_text_atomic(out / "results.csv", results_csv(summary))
        plot_curves(histories, out / "curves.png", f"{cfg.model} on {cfg.dataset}")
        log(f"\n{results_markdown(summary, cfg)}\nwritten to {out}/results.md, curves.png")
    return summary
