"""One (optimizer, seed) run of a comparison: data, model, training loop, checkpoints.

Fair by construction: every optimizer of a seed starts from the same saved initial weights
and sees the same batches in the same order (epoch ``e`` of seed ``s`` is shuffled with
:func:`epoch_seed`), whether or not the run was resumed.
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np
import tensorflow as tf

from larq_bamsprod.harness import metrics
from larq_bamsprod.harness.catalogue import registry
from larq_bamsprod.harness.files import read_json, write_json_atomic
from larq_bamsprod.harness.runner.distribute import is_chief
from larq_bamsprod.harness.runner.progress import Progress
from larq_bamsprod.harness.words import plural
from larq_bamsprod.harness.workload import Data, Workload


class ResumeError(RuntimeError):
    """A run folder's files cannot be resumed (missing or foreign checkpoint)."""


class RunSettings(Protocol):
    """What one run needs besides its workload (a comparison's settings provide it)."""

    epochs: int
    schedule: str  # "constant", "cosine" or "step" (schedule_shape)
    eval_every: int | None
    verbose: int | None
    hparams: dict[str, dict[str, Any]]  # per optimizer: overrides of its defaults


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


EVALUATION_SHARE = 0.3
"""Default spacing: evaluations x validation batches <= this share of the training steps.

An evaluation batch cost 0.29-0.51 of a training step in the committed tuned runs
(``eval_seconds / train_seconds / (evaluations x validation batches / steps)`` over the 88
``docs/results/tuned/*/runs/*/done.json``: BinaryCNN 0.33-0.47, BinaryResNet34 0.29-0.39,
BinaryMobileNetV2 0.30-0.45, BinaryResNetE18 0.33-0.48, BinaryLSTM 0.40-0.51), so 0.3 keeps
evaluation at most about 15% of training time."""


def evaluation_steps(total_steps: int, eval_every: int | None,
                     validation_batches: int = 0) -> list[int]:
    """Steps after which the model is evaluated on the validation set.

    Every ``eval_every`` steps and after the last step. ``eval_every=None``: about 20
    evaluations per run (``round(total_steps / 20)`` steps apart), fewer if the
    validation set is large: at least ``validation_batches / EVALUATION_SHARE`` steps apart.
    """
    every = eval_every or default_spacing(total_steps, validation_batches)
    return sorted(set(range(every, total_steps + 1, every)) | {total_steps})


def default_spacing(total_steps: int, validation_batches: int = 0) -> int:
    """Steps between evaluations when none is given: ``round(total_steps / 20)``, at least
    ``validation_batches / EVALUATION_SHARE`` and 1 (more than ``total_steps`` means one
    evaluation, after the last step)."""
    return max(1, round(total_steps / 20), math.ceil(validation_batches / EVALUATION_SHARE))


def validation_batches(data_: Data, batch_size: int) -> int:
    """Batches of one evaluation on ``data_``'s validation set."""
    return math.ceil(data_.validation_size / batch_size)


def _build(workload: Workload, settings: RunSettings, data_: Data, strategy,
           optimizer_name: str | None, seed: int, total_steps: int):
    with strategy.scope():
        model = workload.build_model(seed)
        if optimizer_name is None:
            return model, None
        optimizer = registry.make_optimizer(
            optimizer_name,
            settings.hparams.get(optimizer_name),
            schedule_shape(settings.schedule, total_steps),
        )
        model.compile(optimizer=optimizer, **workload.compile_arguments(data_.num_classes))
    return model, optimizer


def _init_weights(workload: Workload, settings: RunSettings, data_: Data, strategy, seed: int,
                  out: Path) -> Path:
    """Build the model once for ``seed`` and save the weights every optimizer starts from."""
    folder = out / "init" if is_chief(strategy) else out / ".scratch" / f"init-{os.getpid()}"
    path = folder / f"seed{seed}.weights.h5"
    if not path.exists():
        model, _ = _build(workload, settings, data_, strategy, None, seed, 1)
        # Per process (keeps the .weights.h5 format): two processes starting the same seed
        # of one --output (e.g. final runs split over processes) would otherwise write one
        # HDF5 file at once: h5py refused the second (BlockingIOError) and the first one's
        # file was left corrupted (zero batch-norm scales; its runs stayed at chance). Both
        # write the same seeded weights, so whichever os.replace lands last is right.
        tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
        path.parent.mkdir(parents=True, exist_ok=True)
        model.save_weights(str(tmp))
        os.replace(tmp, path)
    return path


# The layers' weights as arrays: a compiled model's .weights.h5 also holds its metrics'
# variables, which cannot be assigned from a file under a tf.distribute strategy.
BEST_WEIGHTS = "best.weights.npz"


def _rate(optimizer, name: str) -> float | None:
    """Hyperparameter ``name`` of ``optimizer`` at its current step (a schedule is
    evaluated), or None if it has none."""
    rate = getattr(optimizer, name, None)
    if rate is None:
        return None
    if isinstance(rate, tf.keras.optimizers.schedules.LearningRateSchedule):
        rate = rate(optimizer.iterations)
    try:
        return float(tf.keras.backend.get_value(rate))
    except (TypeError, ValueError):
        return None


def learning_rates(optimizer) -> dict[str, float]:
    """The rates ``optimizer`` applies at its current step, by name.

    ``learning_rate``: the optimizer's; for Larq's ``CaseOptimizer`` (Bop's layout), that of
    its default optimizer, which trains the real-valued weights. The other optimizers of a
    ``CaseOptimizer`` add theirs as ``<class>_<name>``: Bop's ``bop_gamma`` (its
    adaptivity rate, scaled by the schedule like every base rate).
    """
    inner = list(getattr(optimizer, "optimizers", []))  # CaseOptimizer's, default last
    default = inner[-1] if inner else optimizer
    rates = {"learning_rate": _rate(default, "learning_rate")}
    for other in inner[:-1]:
        for name in ("learning_rate", "gamma"):
            rates[f"{type(other).__name__.lower()}_{name}"] = _rate(other, name)
    return {name: rate for name, rate in rates.items() if rate is not None}


class _Evaluator(tf.keras.callbacks.Callback):
    """Evaluates on the validation set at the steps in ``points``, inside ``model.fit``.

    Keeps training time and evaluation time apart: ``train_seconds`` and ``eval_seconds``
    are totals over the run. Every step is charged to training once, the same way whether
    the run was interrupted or not: the first step of each ``fit`` call (each epoch) holds
    one-off work besides the step (in a new process: tracing and graph building; in every
    epoch: the input pipeline's first fill), so it is charged the run's typical step (the
    median of the other steps timed in this process) and the rest of it goes to
    ``startup_seconds``. (With one step per epoch there is no other step: the first step of
    a process goes to startup and every later one to training, as it is.) ``model.evaluate``
    resets the compiled metrics, so the training loss and accuracy logged at a point are
    means over the steps since the previous point.
    """

    def __init__(self, run: _Run):
        super().__init__()
        self.run = run
        self._mark = 0.0
        self._batch_start = 0.0
        self._first_of_fit = True
        self._first_of_process = True
        self._timed: list[float] = []  # every step timed in this process, for the median
        self._uncharged: list[float] = []  # first steps of fits, not yet charged

    def on_epoch_begin(self, epoch, logs=None):
        self._mark = time.perf_counter()
        self._first_of_fit = True

    def on_train_batch_begin(self, batch, logs=None):
        self._batch_start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        run = self.run
        now = time.perf_counter()
        if self._first_of_fit and (run.data.steps_per_epoch > 1 or self._first_of_process):
            run.startup_seconds += now - self._mark
            self._uncharged.append(now - self._mark)
            self._mark = now
        else:
            run.step_times.append(now - self._batch_start)
            self._timed.append(now - self._batch_start)
            self._charge_first_steps()
        self._first_of_fit = self._first_of_process = False
        run.step += 1
        run.progress.step()
        if run.step in run.points:
            run.train_seconds += now - self._mark
            run.evaluate(self.model, logs or {})
            self._mark = time.perf_counter()

    def _charge_first_steps(self) -> None:
        """Move the typical step's time of each first step from startup to training."""
        if not self._uncharged or self.run.data.steps_per_epoch == 1:
            return
        typical = statistics.median(self._timed[-100:])
        for seconds in self._uncharged:
            charge = min(seconds, typical)
            self.run.train_seconds += charge
            self.run.startup_seconds -= charge
        self._uncharged = []

    def on_epoch_end(self, epoch, logs=None):
        self.run.train_seconds += time.perf_counter() - self._mark


@dataclasses.dataclass
class _Run:
    """The state of one (optimizer, seed) run that the evaluator and the loop share."""

    name: str
    seed: int
    data: Data
    optimizer: tf.keras.optimizers.Optimizer
    points: list[int]
    rows: list[dict]
    run_dir: Path
    writer: object
    chief: bool
    progress: Progress
    step: int = 0
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    startup_seconds: float = 0.0
    step_times: list[float] = dataclasses.field(default_factory=list)
    best_value: float = -1.0  # the best validation score so far (see run_one)
    best_path: Path = Path(BEST_WEIGHTS)

    def evaluate(self, model, train_logs: dict) -> None:
        metric = self.data.metric
        start = time.perf_counter()
        val = model.evaluate(self.data.validation, verbose=0, return_dict=True)
        self.eval_seconds += time.perf_counter() - start
        times = self.step_times
        row = {
            "step": self.step,
            "epoch": self.step / self.data.steps_per_epoch,
            "train_loss": float(train_logs.get("loss", float("nan"))),
            metric.train_key: float(train_logs.get(metric.name, float("nan"))),
            "val_loss": float(val["loss"]),
            metric.val_key: float(val[metric.name]),
            **learning_rates(self.optimizer),
            "train_seconds": self.train_seconds,
            "eval_seconds": self.eval_seconds,
            "step_seconds_median": statistics.median(times) if times else None,
        }
        if "top5" in val:
            row["val_top5"] = float(val["top5"])
        self.step_times = []
        self.rows.append(row)
        if self.chief:
            log_row(self.writer, row, metric)
        if metric.improves(row[metric.val_key], self.best_value):
            self.best_value = row[metric.val_key]
            _save_weights_atomic(model, self.best_path)
        self.progress.evaluated(
            self.step, self.points.index(self.step) + 1,
            f"val {_short(metric)} {row[metric.val_key]:.4f}, "
            f"train loss {row['train_loss']:.4f}")


def log_row(writer, row: dict, metric: metrics.Metric) -> None:
    """One evaluation point's scalars in TensorBoard, at its step."""
    with writer.as_default(step=row["step"]):
        for key, value in row.items():
            if key in _NOT_LOGGED or value is None:
                continue
            tf.summary.scalar(key, value)
    writer.flush()


# Row entries that are not curves: the point itself, and a median kept for the report.
_NOT_LOGGED = ("step", "epoch", "step_seconds_median")


def _tensorboard_writer(out: Path, run_dir: Path, rows: list[dict], metric: metrics.Metric,
                        chief: bool):
    """The run's TensorBoard writer; for the chief, its log rebuilt from ``rows``.

    A run killed after an evaluation point and before its epoch was saved logged points
    that its resumed run logs again (with other seconds): TensorBoard would show those
    steps twice and the seconds running backwards. So the chief starts the log afresh
    from the saved history, which is what a resumed run continues from.
    """
    folder = out / "tensorboard" / run_dir.name
    if chief:
        shutil.rmtree(folder, ignore_errors=True)
    writer = tf.summary.create_file_writer(str(folder))
    if chief:
        for row in rows:
            log_row(writer, row, metric)
    return writer


def _short(metric: metrics.Metric) -> str:
    return "acc" if metric is metrics.ACCURACY else "ppl"


def _save_weights_atomic(model, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{path.name}")  # ends in .npz, so numpy adds no suffix
    with open(tmp, "wb") as handle:
        np.savez(handle, *model.get_weights())
    os.replace(tmp, path)


def _load_weights(model, path: Path) -> None:
    with np.load(path) as arrays:
        model.set_weights([arrays[f"arr_{i}"] for i in range(len(arrays.files))])


def _evaluate_test(model, data_: Data) -> dict:
    test = model.evaluate(data_.test, verbose=0, return_dict=True)
    metric = data_.metric
    result = {"test_loss": float(test["loss"]), metric.test_key: float(test[metric.name])}
    if "top5" in test:
        result["test_top5"] = float(test["top5"])
    return result


def _read_history(run_dir: Path) -> dict:
    state = read_json(run_dir / "history.json")
    if state is None:
        return {"epochs_done": 0, "rows": [], "train_seconds": 0.0, "eval_seconds": 0.0}
    if not isinstance(state, dict) or "rows" not in state:
        raise ResumeError(
            f"{run_dir}: history.json was written by an older version of the harness (one "
            "row per epoch, test accuracy only); delete this run folder to start it again"
        )
    return state


def run_one(
    workload: Workload,
    settings: RunSettings,
    optimizer_name: str,
    seed: int,
    data_: Data,
    strategy: tf.distribute.Strategy,
    out: Path,
    log: Callable[[str], None] = print,
    progress: Progress | None = None,
    evaluate_test: bool = True,
) -> dict:
    """Train one (optimizer, seed) run to ``settings.epochs``, resuming if possible.

    Returns what ``done.json`` holds: ``history`` (one row per evaluation point: step,
    validation loss and accuracy, training loss and accuracy since the previous point,
    learning rate, cumulative training and evaluation seconds), ``final`` and ``best``
    (test metrics of the final weights and of the weights with the best validation
    accuracy; test never chooses anything) and ``hyperparameters``. ``evaluate_test=False``
    (tuning trials) leaves the test set unread. For a language model (``data_.metric`` is
    perplexity) every ``accuracy`` above is ``perplexity`` and the best is the lowest.
    """
    run_dir = out / "runs" / f"{optimizer_name}-seed{seed}"
    label = f"{optimizer_name} seed {seed}"
    total_steps = settings.epochs * data_.steps_per_epoch
    points = evaluation_steps(total_steps, settings.eval_every,
                              validation_batches(data_, workload.batch_size))
    progress = progress or Progress(1, total_steps, log, settings.verbose)
    hparams = registry.describe(optimizer_name, settings.hparams.get(optimizer_name))
    done = _finished_run(run_dir, hparams, settings.epochs)
    if done is not None:
        progress.skip_run(label)
        return done
    state = _read_history(run_dir)
    init_path = _init_weights(workload, settings, data_, strategy, seed, out)
    model, optimizer = _build(workload, settings, data_, strategy, optimizer_name, seed,
                              total_steps)
    model.load_weights(str(init_path))
    chief = is_chief(strategy)
    ckpt_dir = run_dir / "ckpt" if chief else out / ".scratch" / f"{os.getpid()}-{seed}"
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer)
    manager = tf.train.CheckpointManager(checkpoint, str(ckpt_dir), max_to_keep=2)
    epochs_done = state["epochs_done"]
    if epochs_done:
        _restore(checkpoint, ckpt_dir, run_dir, epochs_done)
        log(f"{label}: resumed after epoch {epochs_done}")
    writer = _tensorboard_writer(out, run_dir, state["rows"], data_.metric, chief)
    run = _Run(optimizer_name, seed, data_, optimizer, points, list(state["rows"]), run_dir,
               writer, chief, progress, step=epochs_done * data_.steps_per_epoch,
               train_seconds=state["train_seconds"], eval_seconds=state["eval_seconds"])
    metric = data_.metric
    run.best_value = (metric.best_row(run.rows)[metric.val_key] if run.rows
                      else -1.0 if metric.higher_is_better else math.inf)
    # Other workers keep their copy apart (as their checkpoints), not in the run folder.
    run.best_path = (run_dir if chief else ckpt_dir) / BEST_WEIGHTS
    progress.start_run(label, run.step, len(points))
    _warm_evaluation(model, data_, run)
    evaluator = _Evaluator(run)
    for epoch in range(epochs_done, settings.epochs):
        tf.keras.utils.set_random_seed(epoch_seed(seed, epoch))
        model.fit(data_.train(epoch_seed(seed, epoch)), epochs=epoch + 1, initial_epoch=epoch,
                  steps_per_epoch=data_.steps_per_epoch, callbacks=[evaluator], verbose=0)
        # Checkpoint first, then history: a kill in between leaves the older history,
        # whose matching checkpoint is still kept (max_to_keep=2).
        manager.save(checkpoint_number=epoch + 1)
        if chief:
            write_json_atomic(run_dir / "history.json", {
                "epochs_done": epoch + 1, "rows": run.rows,
                "train_seconds": run.train_seconds, "eval_seconds": run.eval_seconds,
            })
    result = _result(model, run, settings.epochs, hparams, evaluate_test)
    if chief:
        _log_hparams(writer, optimizer_name, seed, hparams, result["final"], result["best"],
                     total_steps, metric)
        write_json_atomic(run_dir / "done.json", result)
    _report_end(progress, run, result, evaluate_test)
    return result


def _finished_run(run_dir: Path, hparams: dict, epochs: int) -> dict | None:
    """``done.json`` of ``run_dir`` if it finished ``epochs``; None if there is more to
    train (none yet, or more epochs with the constant schedule: config.py)."""
    done = read_json(run_dir / "done.json")
    if done is None:
        return None
    recorded = done.get("hyperparameters", hparams)
    if recorded != hparams:
        raise ResumeError(
            f"{run_dir} finished with hyperparameters {recorded}, not {hparams}; use "
            "another --output"
        )
    return done if done.get("epochs", epochs) >= epochs else None


def _restore(checkpoint, ckpt_dir: Path, run_dir: Path, epochs_done: int) -> None:
    """Restore the checkpoint of epoch ``epochs_done`` (ResumeError if it cannot be)."""
    wanted = str(ckpt_dir / f"ckpt-{epochs_done}")
    if not tf.io.gfile.exists(wanted + ".index"):
        raise ResumeError(
            f"{run_dir}: history.json has {epochs_done} {plural(epochs_done, 'epoch')} but "
            f"checkpoint {wanted} is missing; delete this run folder to start the run again"
        )
    try:
        checkpoint.restore(wanted).assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as error:
        raise ResumeError(
            f"{run_dir}: checkpoint {wanted} does not fit this run's model and optimizer "
            f"({str(error).splitlines()[0]}); delete this run folder to start it again"
        ) from error


def _warm_evaluation(model, data_: Data, run: _Run) -> None:
    """Evaluate once on the whole validation set, untimed, before the first timed evaluation.

    The first evaluation in a process holds one-off work: tracing (about 20 s for
    BinaryResNetE18), a retrace for a smaller last batch, the input pipeline's first pass.
    Charged to the first evaluation, it made whichever optimizer a process runs first, or
    resumes, look slow to evaluate (BinaryCNN, 2 steps: 7.1 s against 0.2 s when warmed on
    one batch only). It is startup time; the pass costs one evaluation per run.
    """
    start = time.perf_counter()
    model.evaluate(data_.validation, verbose=0)
    run.startup_seconds += time.perf_counter() - start


def _result(model, run: _Run, epochs: int, hparams: dict, evaluate_test: bool) -> dict:
    """What ``done.json`` holds (:func:`run_one`): test metrics of the final weights and of
    the best validation weights (read back from ``run.best_path``)."""
    data_, metric = run.data, run.data.metric
    start = time.perf_counter()
    final = _evaluate_test(model, data_) if evaluate_test else {}
    best_row = metric.best_row(run.rows)  # first of equal ones
    best = {"step": best_row["step"], metric.val_key: best_row[metric.val_key]}
    if evaluate_test:
        _load_weights(model, run.best_path)
        best.update(_evaluate_test(model, data_))
    test_seconds = time.perf_counter() - start
    final = {"step": run.rows[-1]["step"], metric.val_key: run.rows[-1][metric.val_key],
             "val_loss": run.rows[-1]["val_loss"], **final}
    return {
        "epochs": epochs,
        "history": run.rows,
        "final": final,
        "best": best,
        "hyperparameters": hparams,
        "train_seconds": run.train_seconds,
        "eval_seconds": run.eval_seconds,
        "test_seconds": test_seconds,
        "startup_seconds": run.startup_seconds,
        "train_size": data_.train_size,
        "validation_size": data_.validation_size,
    }


def _report_end(progress: Progress, run: _Run, result: dict, evaluate_test: bool) -> None:
    metric, final = run.data.metric, result["final"]
    short = _short(metric)
    test_text = f", test {short} {final[metric.test_key]:.4f}" if evaluate_test else ""
    progress.end_run(
        f"final val {short} {final[metric.val_key]:.4f}{test_text}; "
        f"train {run.train_seconds:.1f} s, eval {run.eval_seconds:.1f} s")


def _log_hparams(writer, name: str, seed: int, hparams: dict, final: dict, best: dict,
                 step: int, metric: metrics.Metric = metrics.ACCURACY) -> None:
    """One entry of TensorBoard's HParams dashboard: the run's settings and results."""
    from tensorboard.plugins.hparams import api as hp

    # Named per optimizer: BAMSProd's gamma and Bop's are different hyperparameters, and
    # a None (not used) is left out rather than turning its column into text.
    values = {"optimizer": name, "seed": seed}
    for key, value in hparams.items():
        if value is not None:
            values[f"{name}.{key}"] = (value if isinstance(value, (bool, int, float, str))
                                       else str(value))
    with writer.as_default(step=step):
        hp.hparams(values, trial_id=f"{name}-seed{seed}")
        for prefix, metrics in (("final", final), ("best", best)):
            for key in (metric.val_key, metric.test_key, "test_loss"):
                if key in metrics:
                    tf.summary.scalar(f"{prefix}_{key}", metrics[key])
    writer.flush()
