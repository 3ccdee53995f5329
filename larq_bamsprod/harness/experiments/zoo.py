"""Larq-zoo's own training recipes, run with BAMSProd, Bop, or the recipe's optimizer.

Every zookeeper task of ``larq_zoo.training.basic_experiments`` and
``larq_zoo.training.sota_experiments`` (``TrainQuickNet``, ``TrainBinaryResNetE18``,
``TrainBiRealNet``, ...) gets a subclass here that keeps the recipe's model, loss, metrics,
epochs, batch size, learning-rate schedule, callbacks and larq-zoo's own ``run()`` (checkpoint,
resume, TensorBoard, saved model), and changes four things:

* ``optimizer``: built by :func:`larq_bamsprod.harness.catalogue.registry.make_optimizer` for the
name in
  ``optimizer_name`` (``"bamsprod"``, ``"bop"``, ...), its base rates multiplied by the
  recipe's schedule divided by the recipe's peak rate (:func:`recipe_schedule_shape`), so that
  BAMSProd keeps its own rate and the recipe's shape (warm-up, decay). ``"recipe"`` is the
  recipe's own optimizer rebuilt as a ``tf.keras.optimizers.legacy`` one: larq-zoo's
  ``TrainQuickNet`` passes new-API ``Adam``/``SGD`` to ``CaseOptimizer``, which refuses them on
  TensorFlow >= 2.11.
* ``dataset``: :class:`TFDSImageDataset`, any TFDS image classification dataset by name;
  the offline ``fashion_mnist`` and the other datasets of
  :mod:`larq_bamsprod.harness.catalogue.data` are
  prepared through :func:`larq_bamsprod.harness.catalogue.data.prepare`.
* ``preprocessing``: :class:`ResizeToInput` maps any image to the model's input
  (``input_shape``, 224x224x3 unless configured): grey to RGB, bilinear resize, and the
  ImageNet mean/std normalisation of larq-zoo's own preprocessing.
* ``steps_per_epoch``/``validation_steps`` caps for quick runs (:class:`TFDSImageDataset`'s
  ``max_train_examples``/``max_validation_examples``).

Example:
    >>> from larq_bamsprod import zoo
    >>> task = zoo.make_recipe("TrainQuickNet", optimizer="bamsprod",
    ...                        dataset="fashion_mnist", epochs=1, batch_size=16,
    ...                        steps_per_epoch=5, output="runs/quicknet")
    >>> task.run()

Note:
    larq-zoo's ``run()`` trains ``ceil(n / batch_size)`` batches per epoch, where ``n`` is the
    number of training examples the dataset reports, from a repeated dataset. A cap is
    therefore a smaller reported ``n``: epochs stop after ``steps_per_epoch`` batches and the
    next epoch continues where the last one stopped, through the whole split.
"""

# No `from __future__ import annotations`: zookeeper reads field annotations at runtime.
import ast
import importlib
import inspect
import math
import os
from pathlib import Path
from typing import Any, Optional, Union

import tensorflow as tf
from zookeeper import ComponentField, Field, component, configure
from zookeeper.tf import Dataset, Preprocessing, TFDSDataset

from larq_bamsprod import schedules
from larq_bamsprod.compat import LearningRateSchedule, LegacyOptimizer
from larq_bamsprod.harness.catalogue import models, registry
from larq_bamsprod.harness.files import as_json
from larq_bamsprod.harness.words import error_summary
from larq_bamsprod.schedules import ScaledSchedule

__all__ = [
    "OPTIMIZER_CHOICES",
    "RECIPE_MODULES",
    "RECIPES",
    "ResizeToInput",
    "TFDSImageDataset",
    "canonical_recipe",
    "check_resumable",
    "input_notes",
    "make_recipe",
    "parse_config",
    "recipe_class",
    "recipe_identity",
    "recipe_schedule_shape",
    "to_legacy",
]

RECIPE_MODULES = (
    "larq_zoo.training.basic_experiments",
    "larq_zoo.training.sota_experiments",
)
"""Modules whose zookeeper tasks are wrapped. The multi-stage (knowledge distillation)
recipes of ``larq_zoo.training.multi_stage_experiments`` are not: each stage needs the
weights the previous stage saved on ImageNet."""

OPTIMIZER_CHOICES = ("recipe", *registry.OPTIMIZER_NAMES)
"""``"recipe"``: the recipe's own optimizer (made legacy); others: see ``registry``."""

SCHEDULES = ("recipe", "constant")
"""``"recipe"``: the recipe's schedule shape scales every base rate; ``"constant"``: not."""

_IMAGENET_MEAN_RGB = (0.485 * 255, 0.456 * 255, 0.406 * 255)
_IMAGENET_STDDEV_RGB = (0.229 * 255, 0.224 * 255, 0.225 * 255)


# --------------------------------------------------------------------------- data


@component
class TFDSImageDataset(TFDSDataset):
    """A TFDS image classification dataset chosen by name, optionally capped per pass.

    ``name`` may carry a version (``"cifar10:3.*.*"``). The names of
    :data:`larq_bamsprod.harness.catalogue.data.DATASETS` (``fashion_mnist`` offline from Debian's
    files,
    ``cifar10``, ...) are prepared by :func:`larq_bamsprod.harness.catalogue.data.prepare`, which
    says how to
    get a dataset it cannot prepare; other names go to TFDS as they are (``download``).
    ``validation_split`` defaults to ``"validation"`` when the dataset has one, else
    ``"test"``.
    """

    name: str = Field()
    download: bool = Field(True)
    train_split: str = Field("train")

    @Field
    def validation_split(self) -> Optional[str]:
        splits = self.info.splits
        for split in ("validation", "test"):
            if split in splits:
                return split
        return None

    # Report at most this many examples per pass (see the module's Note).
    max_train_examples: Optional[int] = Field(None)
    max_validation_examples: Optional[int] = Field(None)

    @property
    def info(self):
        if not hasattr(self, "_info"):
            self._info = self.prepare().info
        return self._info

    def prepare(self):
        """Prepare the dataset in ``data_dir`` if it is not yet; return its TFDS builder."""
        from larq_bamsprod.harness.catalogue import data

        if self.name in data.DATASETS:
            return data.prepare(self.name, data_dir=self.data_dir, download=self.download)
        return data.prepare_other(self.name, data_dir=self.data_dir, download=self.download)

    def num_examples(self, split) -> int:
        n = super().num_examples(split)
        if split == self.train_split and self.max_train_examples is not None:
            return min(n, self.max_train_examples)
        if split == self.validation_split and self.max_validation_examples is not None:
            return min(n, self.max_validation_examples)
        return n

    def load(self, split, decoders, shuffle) -> tf.data.Dataset:
        self.prepare()
        return super().load(split, decoders=decoders, shuffle=shuffle)


@component
class ResizeToInput(Preprocessing):
    """Any image to the model's input: grey to RGB, resize, ImageNet mean/std scaling.

    Larq-zoo's models were trained on ImageNet images normalised per channel with the
    ImageNet mean and standard deviation (``larq_zoo.training.data``); this applies the same
    scaling after a bilinear resize to ``input_shape`` (no crop, no augmentation). For
    ImageNet itself larq-zoo's ``preprocessing=Default`` (random crops, flips) remains usable.
    """

    input_shape: tuple[int, int, int] = Field()

    def input(self, data, training):
        height, width, channels = self.input_shape
        image = tf.cast(data["image"], tf.float32)
        if image.shape[-1] == 1 and channels == 3:
            image = tf.image.grayscale_to_rgb(image)
        image = tf.image.resize(image, (height, width))
        if channels == 3:
            return (image - _IMAGENET_MEAN_RGB) / _IMAGENET_STDDEV_RGB
        return image / 127.5 - 1.0

    def output(self, data, training):
        return data["label"]


# ---------------------------------------------------------------------- optimizers


def to_legacy(optimizer) -> LegacyOptimizer:
    """A ``tf.keras.optimizers.legacy`` copy of a new-API Keras optimizer (same settings).

    Legacy optimizers are returned unchanged. Raises ``ValueError`` for settings the legacy
    classes lack (``weight_decay``, ``use_ema``) and ``TypeError`` for an optimizer without a
    legacy counterpart.
    """
    if isinstance(optimizer, LegacyOptimizer):
        return optimizer
    legacy_cls = getattr(tf.keras.optimizers.legacy, type(optimizer).__name__, None)
    if not isinstance(optimizer, tf.keras.optimizers.Optimizer) or legacy_cls is None:
        raise TypeError(
            "expected a Keras optimizer with a tf.keras.optimizers.legacy counterpart, "
            f"received {type(optimizer).__name__}"
        )
    config = optimizer.get_config()
    if config.get("weight_decay") or config.get("use_ema"):
        raise ValueError(
            f"{type(optimizer).__name__} uses weight_decay={config.get('weight_decay')} / "
            f"use_ema={config.get('use_ema')}, which legacy optimizers do not have"
        )
    accepted = set(inspect.signature(legacy_cls.__init__).parameters)
    accepted |= {"clipnorm", "clipvalue", "global_clipnorm"}
    kwargs = {k: v for k, v in config.items() if k in accepted and v is not None}
    if isinstance(kwargs.get("learning_rate"), dict):
        kwargs["learning_rate"] = schedules.deserialize(kwargs["learning_rate"])
    return legacy_cls(**kwargs)


def _peak(schedule: LearningRateSchedule, total_steps: int) -> float:
    config = schedule.get_config()
    for key in ("max_learning_rate", "initial_learning_rate"):
        if isinstance(config.get(key), (int, float)):
            return float(config[key])
    if isinstance(config.get("values"), (list, tuple)):
        return float(max(config["values"]))
    # Unknown schedule: its largest value on a grid over the run.
    steps = sorted({0, *range(0, max(total_steps, 1), max(total_steps // 200, 1))})
    return max(float(schedule(tf.constant(s, tf.int64))) for s in steps)


def recipe_schedule_shape(task) -> Optional[LearningRateSchedule]:
    """The recipe's learning-rate schedule divided by its peak (``None`` when constant).

    Recipes schedule their rate in one of two ways: a ``learning_rate_schedule(epoch)``
    method that larq-zoo applies with a ``LearningRateScheduler`` callback (ResNetE,
    DenseNet, XNOR-Net, DoReFa-Net, AlexNet), or a ``LearningRateSchedule`` given to the
    optimizer (QuickNet, Bi-Real Net). The first becomes a per-step piecewise-constant
    schedule over ``task.epochs`` epochs of ``task.steps_per_epoch`` steps, relative to epoch
    0; the second is divided by its peak: ``max_learning_rate`` or ``initial_learning_rate``
    of its config, the largest of ``values``, else its largest value on a grid of steps.
    """
    if hasattr(task, "learning_rate_schedule"):
        rates = [float(task.learning_rate_schedule(e)) for e in range(task.epochs)]
        if all(r == rates[0] for r in rates):
            return None
        boundaries, values = [], [1.0]
        for epoch in range(1, len(rates)):
            value = rates[epoch] / rates[0]
            if value != values[-1]:
                # The update of step s (0-based) reads the rate at s: epoch e starts at
                # e * steps_per_epoch, and PiecewiseConstantDecay switches after a boundary.
                boundaries.append(epoch * task.steps_per_epoch - 1)
                values.append(value)
        return tf.keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)
    optimizer = task.recipe_optimizer()
    if hasattr(optimizer, "pred_opt_pairs"):  # CaseOptimizer: the binary weights' optimizer
        optimizer = optimizer.pred_opt_pairs[0][1]
    schedule = optimizer.learning_rate
    if not isinstance(schedule, LearningRateSchedule):
        return None
    return ScaledSchedule(1.0 / _peak(schedule, task.epochs * task.steps_per_epoch), schedule)


def _legacy_quicknet_optimizer(task):
    """``TrainQuickNet.optimizer`` with legacy Adam and SGD (same schedules)."""
    import larq as lq
    from larq_zoo.training.learning_schedules import CosineDecayWithWarmup

    def schedule(peak):
        return CosineDecayWithWarmup(
            max_learning_rate=peak,
            warmup_steps=task.steps_per_epoch * 5,
            decay_steps=task.steps_per_epoch * task.epochs,
        )

    legacy = tf.keras.optimizers.legacy
    return lq.optimizers.CaseOptimizer(
        (lq.optimizers.Bop.is_binary_variable, legacy.Adam(learning_rate=schedule(1e-2))),
        default_optimizer=legacy.SGD(learning_rate=schedule(0.1), momentum=0.9),
    )


# -------------------------------------------------------------------------- tasks


class _RecipeOverrides:
    """Fields and methods put in front of a larq-zoo recipe (see the module docstring)."""

    dataset: Dataset = ComponentField(TFDSImageDataset)
    preprocessing: Preprocessing = ComponentField(ResizeToInput)
    input_shape: tuple[int, int, int] = Field((224, 224, 3))

    optimizer_name: str = Field("bamsprod")
    optimizer_hparams: dict[str, Any] = Field(lambda: {})
    schedule: str = Field("recipe")
    # The configuration given on top of the recipe (``--set``), recorded in recipe.json.
    config_overrides: dict[str, Any] = Field(lambda: {})
    # larq-zoo's final <model>.h5, <model>_weights.h5 and <model>.json repeat what the
    # checkpoint holds and are the bulk of the output (hundreds of MB): off unless asked.
    save_weights: bool = Field(False)

    @property
    def steps_per_epoch(self) -> int:
        # As larq-zoo's run() counts them (its property floors and always reads "train").
        split = getattr(self.dataset, "train_split", "train")
        return math.ceil(self.dataset.num_examples(split) / self.batch_size)

    def recipe_optimizer(self):
        """The recipe's own optimizer, as a ``tf.keras.optimizers.legacy`` optimizer."""
        from larq_zoo.training.sota_experiments import TrainQuickNet

        if isinstance(self, TrainQuickNet):
            return _legacy_quicknet_optimizer(self)
        field = self._recipe_class.__component_fields__["optimizer"]
        return to_legacy(field.get_default(self))

    @Field
    def optimizer(self) -> LegacyOptimizer:
        name = self.optimizer_name
        if name == "recipe":
            return self.recipe_optimizer()
        shape = recipe_schedule_shape(self) if self.schedule == "recipe" else None
        return registry.make_optimizer(name, self.optimizer_hparams, shape)

    @Field
    def callbacks(self) -> list:
        callbacks = self._recipe_class.__component_fields__["callbacks"].get_default(self)
        if self.optimizer_name != "recipe":
            # The recipe's per-epoch rates are already in the optimizer's schedule.
            callbacks = [c for c in callbacks
                         if not isinstance(c, tf.keras.callbacks.LearningRateScheduler)]
        return [_EpochRecord(self), *callbacks]  # before the checkpoint of the epoch

    def __post_configure__(self):
        if self.optimizer_name not in OPTIMIZER_CHOICES:
            raise ValueError(
                f"unknown optimizer_name={self.optimizer_name!r}; valid: "
                f"{', '.join(OPTIMIZER_CHOICES)}"
            )
        if self.schedule not in SCHEDULES:
            raise ValueError(
                f"schedule must be one of {', '.join(SCHEDULES)}, received "
                f"schedule={self.schedule!r}"
            )
        if self.optimizer_name != "recipe":
            registry.hyperparameters(self.optimizer_name, self.optimizer_hparams)

    def run(self):
        from larq_bamsprod.harness.files import write_json_atomic

        # What this folder's checkpoint is a run of, before the first step (check_resumable).
        write_json_atomic(Path(self.output_dir) / "recipe.json", recipe_identity(self))
        self.record_epoch(0, {})  # history.json from the start (its epochs, if resumed)
        super().run()

    def record_epoch(self, epoch: int, logs: dict) -> None:
        """Record epoch ``epoch``'s metrics (0-based) in ``history.json``, a plain record of
        the run: what trained and each epoch's metrics, kept across a resumed run.

        Written at every epoch's end, before larq-zoo's checkpoint of it, at the epoch's
        own index: a run killed in between trains that epoch again and its record replaces
        the first one, so a killed run loses no epoch's record and repeats none."""
        from larq_bamsprod.harness.files import read_json, write_json_atomic

        path = Path(self.output_dir) / "history.json"
        history = (read_json(path) or {}).get("history", {})
        for key, value in logs.items():
            history[key] = history.get(key, [])[:epoch] + [float(value)]
        write_json_atomic(path, {
            "recipe": self._recipe_class.__name__,
            "optimizer": self.optimizer_name,
            "optimizer_classes": _optimizer_classes(self.optimizer),
            "dataset": getattr(self.dataset, "name", type(self.dataset).__name__),
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "steps_per_epoch": self.steps_per_epoch,
            "input_shape": list(self.input_shape),
            "history": history,
        })


class _EpochRecord(tf.keras.callbacks.Callback):
    """Calls ``task.record_epoch`` with each epoch's metrics (before larq-zoo's checkpoint
    of that epoch: the callback comes first)."""

    def __init__(self, task):
        super().__init__()
        self.task = task

    def on_epoch_end(self, epoch, logs=None):
        self.task.record_epoch(epoch, logs or {})


def recipe_identity(task) -> dict[str, Any]:
    """Every setting of ``task`` that changes what its run computes, JSON-clean."""
    hyperparameters = None
    if task.optimizer_name != "recipe":
        hyperparameters = {
            k: (v if isinstance(v, (int, float, str, bool, type(None))) else repr(v))
            for k, v in registry.hyperparameters(task.optimizer_name,
                                                 task.optimizer_hparams).items()
        }
    identity = {
        "recipe": task._recipe_class.__name__,
        "optimizer": task.optimizer_name,
        "hyperparameters": hyperparameters,
        "schedule": task.schedule,
        "dataset": getattr(task.dataset, "name", type(task.dataset).__name__),
        "epochs": task.epochs,
        "batch_size": task.batch_size,
        "steps_per_epoch": task.steps_per_epoch,
        "input_shape": list(task.input_shape),
        "config": dict(task.config_overrides),
    }
    return as_json(identity)


_IDENTITY_IN_HISTORY = ("recipe", "optimizer", "dataset", "epochs", "batch_size",
                        "steps_per_epoch", "input_shape")


def check_resumable(task) -> bool:
    """Whether ``task``'s output folder holds its finished run; a ValueError listing the
    differences if it holds another run (another optimizer, its hyperparameters, dataset,
    epochs, ... :func:`recipe_identity`). Nothing is written."""
    from larq_bamsprod.harness.experiments.config import identity_differences
    from larq_bamsprod.harness.files import read_json

    out = Path(task.output_dir)
    recorded = read_json(out / "recipe.json")
    history = read_json(out / "history.json")
    if recorded is None and history is not None:  # written before recipe.json existed
        recorded = {k: history[k] for k in _IDENTITY_IN_HISTORY if k in history}
    if recorded is None:
        if (out / "stats.json").exists() or (out / "model.index").exists():
            raise ValueError(
                f"{out} holds a larq-zoo checkpoint without a record of what it trained; "
                "use another --output, or delete the folder to start again"
            )
        return False
    now = recipe_identity(task)
    if recorded.get("optimizer", now["optimizer"]) != now["optimizer"]:
        now.pop("hyperparameters")  # another optimizer: its settings say nothing more
    differences = identity_differences(recorded, now)
    if differences:
        raise ValueError(
            f"{out} holds a run of other settings ({'; '.join(differences)}); resuming it "
            "would continue those weights under these settings. Use another --output, or "
            "delete the folder to start again"
        )
    epochs_done = len(((history or {}).get("history") or {}).get("loss", []))
    return epochs_done >= task.epochs


def check_model(task) -> None:
    """Build ``task``'s model now (zookeeper keeps it for the run): an input it cannot take
    (``--image-size 8``) is a ValueError naming the flag, before anything is written."""
    try:
        task.model  # noqa: B018
    except Exception as err:  # e.g. a pooling layer with nothing left to pool
        size = "x".join(str(d) for d in task.input_shape)
        recipe = task._recipe_class.__name__
        side = models.ZOO_MIN_INPUT.get(recipe.removeprefix("Train"))  # TrainQuickNet
        larger = f"{side} or more" if side else "a larger one, e.g. the recipes' own 224"
        raise ValueError(
            f"--image-size {task.input_shape[0]}: recipe {recipe}'s model cannot be built "
            f"for inputs of {size} ({error_summary(err)}); give --image-size {larger}"
        ) from None


def input_notes(task) -> list[str]:
    """What is done to the dataset's images to fit the model's input, in words."""
    info = task.dataset.info.features["image"]
    shape = tuple(info.shape)
    target = tuple(task.input_shape)
    if shape == target or None in shape:
        return []
    name = getattr(task.dataset, "name", "the dataset")
    size = "x".join(str(d) for d in shape)
    return [f"{name}'s {size} images are resized to {'x'.join(map(str, target))}, the "
            "model's input (set it with --image-size)"]


def _optimizer_classes(optimizer) -> list[str]:
    """``["BAMSProd"]``, or ``["CaseOptimizer", "Bop", "Adam"]`` for a CaseOptimizer."""
    inner = getattr(optimizer, "optimizers", [])  # CaseOptimizer's, default last
    return [type(o).__name__ for o in (optimizer, *inner)]


def _discover() -> dict[str, type]:
    from larq_zoo.training.train import TrainLarqZooModel

    found = {}
    for module_name in RECIPE_MODULES:
        module = importlib.import_module(module_name)
        for name, obj in vars(module).items():
            if (
                isinstance(obj, type)
                and issubclass(obj, TrainLarqZooModel)
                and obj.__module__ == module.__name__
            ):
                found[name] = obj
    return dict(sorted(found.items()))


RECIPES: dict[str, type] = _discover()
"""larq-zoo recipe name -> larq-zoo's task class."""

_WRAPPED: dict[str, type] = {}


def parse_config(items: list[str]) -> dict[str, Any]:
    """Parse zookeeper ``KEY=VALUE`` items (values as Python literals, else strings)."""
    config = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip() or not all(
            part.isidentifier() for part in key.strip().split(".")
        ):
            raise ValueError(
                f"configuration {item!r} must look like KEY=VALUE with a dotted KEY, e.g. "
                "model.section_filters=[32,64,256,512]"
            )
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            value = raw
        config[key.strip()] = value
    return config


def canonical_recipe(name: str) -> str:
    """The recipe called ``name`` (case-insensitive), or a ValueError listing them all."""
    for recipe in RECIPES:
        if recipe.lower() == str(name).strip().lower():
            return recipe
    raise ValueError(f"unknown recipe {name!r}; valid recipes: {', '.join(RECIPES)}")


def recipe_class(name: str) -> type:
    """The zookeeper component that runs larq-zoo's recipe ``name`` with our overrides."""
    name = canonical_recipe(name)
    if name not in _WRAPPED:
        base = RECIPES[name]
        cls = type(name, (_RecipeOverrides, base), {
            "__module__": __name__,
            "__qualname__": name,
            "__doc__": f"larq-zoo's ``{base.__module__}.{name}`` with the overrides of "
            f"``{__name__}``.",
            "_recipe_class": base,
        })
        _WRAPPED[name] = component(cls)
    return _WRAPPED[name]


def make_recipe(
    name: str,
    *,
    optimizer: str = "bamsprod",
    dataset: str = "fashion_mnist",
    data_dir: Optional[Union[str, os.PathLike]] = None,
    epochs: Optional[int] = None,
    batch_size: Optional[int] = None,
    steps_per_epoch: Optional[int] = None,
    validation_steps: Optional[int] = None,
    image_size: Optional[int] = None,
    output: Optional[Union[str, os.PathLike]] = None,
    hparams: Optional[dict[str, Any]] = None,
    schedule: str = "recipe",
    overrides: Optional[dict[str, Any]] = None,
):
    """A configured task running larq-zoo's recipe ``name``; call ``.run()`` to train.

    Args:
      name: A key of :data:`RECIPES` (case-insensitive).
      optimizer: One of :data:`OPTIMIZER_CHOICES`. Defaults to `"bamsprod"`.
      dataset: TFDS dataset name. Defaults to `"fashion_mnist"`.
      data_dir: TFDS data directory. Defaults to `None` (TFDS' default).
      epochs: Defaults to `None` (the recipe's).
      batch_size: Defaults to `None` (the recipe's).
      steps_per_epoch: Train at most this many batches per epoch. Defaults to `None` (the
        whole training split).
      validation_steps: Validate on at most this many batches. Defaults to `None`
        (``steps_per_epoch`` if given, else the whole validation split).
      image_size: Model input ``image_size x image_size x 3``. Defaults to `None` (224, the
        recipes' ImageNet size).
      output: Output directory (larq-zoo's ``output_dir``). Defaults to `None` (larq-zoo's
        ``~/zookeeper-logs/...``).
      hparams: Hyperparameter overrides for ``optimizer`` (see
        :func:`larq_bamsprod.harness.catalogue.registry.hyperparameters`). Defaults to `None`.
      schedule: ``"recipe"`` scales the optimizer's base rates by the recipe's schedule
        shape; ``"constant"`` does not. Ignored for ``optimizer="recipe"``. Defaults to
        `"recipe"`.
      overrides: Further zookeeper ``{key: value}`` configuration, applied last (e.g.
        ``{"model.section_filters": (16, 32, 64, 128)}``). Defaults to `None`.
    """
    cls = recipe_class(name)
    optimizer = str(optimizer).strip().lower()
    if optimizer not in OPTIMIZER_CHOICES:
        raise ValueError(
            f"unknown optimizer {optimizer!r}; valid optimizers: {', '.join(OPTIMIZER_CHOICES)}"
        )
    for arg, value in (("epochs", epochs), ("batch_size", batch_size),
                       ("steps_per_epoch", steps_per_epoch),
                       ("validation_steps", validation_steps), ("image_size", image_size)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                  or value < 1):
            raise ValueError(f"{arg} must be a positive int, received {arg}={value!r}")
    conf: dict[str, Any] = {
        "config_overrides": dict(overrides or {}),
        "optimizer_name": optimizer,
        "optimizer_hparams": dict(hparams or {}),
        "schedule": schedule,
        "dataset.name": dataset,
        "input_shape": (image_size or 224, image_size or 224, 3),
    }
    if data_dir is not None:
        conf["dataset.data_dir"] = str(data_dir)
    if epochs is not None:
        conf["epochs"] = epochs
    if batch_size is not None:
        conf["batch_size"] = batch_size
    if output is not None:
        conf["output_dir"] = Path(output)
    conf.update(overrides or {})
    if isinstance(conf.get("output_dir"), str):
        conf["output_dir"] = Path(conf["output_dir"])  # larq-zoo's run() calls .mkdir()
    if steps_per_epoch is not None or validation_steps is not None:
        size = conf.get("batch_size", cls().batch_size)
        if steps_per_epoch is not None:
            conf["dataset.max_train_examples"] = steps_per_epoch * size
        conf["dataset.max_validation_examples"] = (validation_steps or steps_per_epoch) * size
    task = cls()
    configure(task, conf)
    if isinstance(task.dataset, TFDSImageDataset):
        task.dataset.prepare()  # fail now, not after building the model
    return task
