"""The built-in workloads: a registered model on a registered dataset.

:class:`BuiltinWorkload` is a :class:`~larq_bamsprod.harness.workload.Workload` whose model
comes from :data:`~larq_bamsprod.harness.catalogue.models.MODELS` and whose data from
:data:`~larq_bamsprod.harness.catalogue.data.DATASETS` (``--model NAME --dataset D`` on the
command line). Two tasks, told apart by the dataset:

* **Image classification** (every TFDS dataset): scored by top-1 accuracy, higher is better.
  The validation set is ``validation_size`` examples of the training split (default 10%, at
  most 5,000), picked by a fixed seeded permutation
  (:func:`~larq_bamsprod.harness.workload.split_masks`), the same for every seed and
  optimizer; ``train_subset`` then takes the first N of the rest.
* **Language modelling** (``ptb``): windows of ``seq_len`` tokens (the model's argument),
  scored by perplexity, lower is better. Validation is the corpus' own validation split
  (``validation_size N``: its first N windows), test its test split; nothing is carved out of
  the training text.

Models say which inputs they take (:data:`~larq_bamsprod.harness.catalogue.models.MODEL_TASKS`);
:func:`check_model_fits_dataset` refuses an image model on a text corpus and the other way
round.
"""

from __future__ import annotations

import tensorflow as tf

from larq_bamsprod.harness.catalogue import data, models
from larq_bamsprod.harness.catalogue.models import CLASSIFICATION, LANGUAGE_MODELLING, model_task
from larq_bamsprod.harness.metrics import ACCURACY, PERPLEXITY, Metric
from larq_bamsprod.harness.words import error_summary
from larq_bamsprod.harness.workload import (
    Data,
    Workload,
    check_positive_int,
    default_validation_size,
    split_masks,
)

_METRICS = {CLASSIFICATION: ACCURACY, LANGUAGE_MODELLING: PERPLEXITY}

# What config.json records of a built-in workload (the keys of comparisons written before
# workloads existed, so that their folders still resume).
IDENTITY_FIELDS = ("model", "model_args", "dataset", "batch_size", "train_subset",
                   "test_subset", "image_size", "augment", "validation_size")


class BuiltinWorkload(Workload):
    """Registered model ``model`` (with ``model_args``) on registered dataset ``dataset``.

    Args:
        model: A key of ``models.MODELS``, in any letter case. Defaults to `"BinaryCNN"`.
        dataset: A key of ``data.DATASETS``. Defaults to `"fashion_mnist"`.
        model_args: Arguments of the model's builder (e.g. ``width_multiplier``).
        batch_size, validation_size, train_subset, test_subset: as for ``Workload``.
        image_size: Resize images to ``image_size x image_size``. Defaults to `None`.
        augment: CIFAR-style random crop and flip. Defaults to `False`.
        data_dir: TFDS data directory (where the data is read from: not part of the
            identity). Defaults to `None` (``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``).
    """

    builtin = True

    def __init__(self, model: str = "BinaryCNN", dataset: str = "fashion_mnist",
                 model_args: dict | None = None, *, batch_size: int = 128,
                 validation_size: int | None = None, train_subset: int | None = None,
                 test_subset: int | None = None, image_size: int | None = None,
                 augment: bool = False, data_dir: str | None = None,
                 target: float | None = None):
        self.model_name = models.registered_name(model)
        data.get_info(dataset)  # a ValueError listing the valid names
        self.dataset = dataset
        self.model_args = dict(model_args or {})
        self.image_size = image_size
        self.augment = augment
        self.data_dir = data_dir
        check_positive_int("image_size", image_size, optional=True)
        models.check_model_args(self.model_name, self.model_args)
        check_model_fits_dataset(self.model_name, dataset, image_size, augment)
        super().__init__(f"{self.model_name} on {dataset}", self._build, train=(),
                         test=(), loss=None, metric=metric_of(dataset), batch_size=batch_size,
                         validation_size=validation_size, train_subset=train_subset,
                         test_subset=test_subset, target=target)
        self.train = self.test = None
        # Every registered model ends in a float32 softmax (models.build_model).
        self.loss = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=False)

    @property
    def info(self) -> data.DatasetInfo:
        return data.get_info(self.dataset)

    @property
    def input_shape(self) -> tuple:
        info = self.info
        if info.task == LANGUAGE_MODELLING:
            return (models.model_arg(self.model_name, self.model_args, "seq_len"),)
        shape = tuple(info.image_shape)
        if self.image_size is not None:
            shape = (self.image_size, self.image_size, shape[2])
        return shape

    @property
    def num_classes(self) -> int:
        return self.info.num_classes

    def _build(self) -> tf.keras.Model:
        return models.build_model(self.model_name, self.input_shape, self.num_classes,
                                  **self.model_args)

    def describe(self) -> str:
        return f"{self.model_name} on {self.dataset}"

    def notes(self, input_shape: tuple) -> list[str]:
        note = models.input_note(self.model_name, input_shape)
        return [note] if note else []

    def identity(self) -> dict:
        return {"model": self.model_name, "model_args": self.model_args,
                "dataset": self.dataset, "batch_size": self.batch_size,
                "train_subset": self.train_subset, "test_subset": self.test_subset,
                "image_size": self.image_size, "augment": self.augment,
                "validation_size": self.validation_size}

    def fingerprint(self) -> dict:
        return {}  # a registered dataset is named by its TFDS name and version

    # --- checks ----------------------------------------------------------------------------

    def check_model(self) -> None:
        """Build the model once at its input shape: its builder checks ``model_args``, and
        an input it cannot take (``--image-size 2``) is named."""
        self._check_input_size()
        try:
            self._build()
        except (TypeError, ValueError) as err:
            flag = "--model-arg" if self.model_args else "--model"
            raise ValueError(f"{flag}: {err}") from err
        except Exception as err:  # e.g. a pooling layer with nothing left to pool
            size = "x".join(str(d) for d in self.input_shape)
            raise ValueError(
                f"model {self.model_name} cannot be built for inputs of {size} "
                f"({error_summary(err)}); give a larger --image-size"
                if self.image_size else
                f"model {self.model_name} cannot be built for {self.dataset}'s inputs of "
                f"{size} ({error_summary(err)})") from None
        finally:
            tf.keras.backend.clear_session()

    def _check_input_size(self) -> None:
        if self.info.task == LANGUAGE_MODELLING:
            return
        side, smallest = min(self.input_shape[:2]), models.smallest_input(self.model_name)
        if side >= smallest:
            return
        if self.image_size is not None:
            raise ValueError(f"--image-size {self.image_size} is too small for "
                             f"{self.model_name}, whose smallest input is "
                             f"{smallest}x{smallest}; give --image-size {smallest} or more")
        raise ValueError(f"{self.dataset}'s {side}x{side} images are too small for "
                         f"{self.model_name}, whose smallest input is {smallest}x{smallest}; "
                         f"give --image-size {smallest} or more")

    def check_validation_size(self) -> None:
        """Cheap: the published (or recorded) split size, nothing prepared."""
        if self.validation_size is None or self.info.task == LANGUAGE_MODELLING:
            return
        n = data.cardinality(self.dataset, self.info.train_split, data_dir=self.data_dir)
        if self.validation_size >= n:
            raise ValueError(f"--validation-size must be smaller than the training split of "
                             f"{self.dataset} ({n} examples), received {self.validation_size}")

    def check(self) -> None:
        """Prepare the dataset now (``DatasetUnavailableError`` says how to get it), then
        check the sizes against it."""
        self.check_model()
        self.check_validation_size()
        n_train = self.sizes()[0]
        if n_train < self.batch_size:
            raise ValueError(
                f"--train-subset {self.train_subset} is smaller than --batch-size "
                f"{self.batch_size}: no whole batch to train on; give --train-subset at "
                f"least {self.batch_size} or a smaller --batch-size" if self.train_subset
                else f"{self.dataset} has {n_train} training examples, fewer than "
                f"--batch-size {self.batch_size}; give a smaller --batch-size")

    def train_examples(self) -> int:
        return self.sizes()[0]

    def sizes(self) -> tuple[int, int]:
        """``(training, validation)`` examples (windows, for a text corpus); prepares the
        dataset."""
        info = self.info
        if info.task == LANGUAGE_MODELLING:
            data.prepare(self.dataset)
            seq_len = self.input_shape[0]
            n_train = len(data.ptb_windows(info.train_split, seq_len)[0])
            n_validation = len(data.ptb_windows(info.validation_split, seq_len)[0])
            return (min(n_train, self.train_subset or n_train),
                    min(n_validation, self.validation_size or n_validation))
        data.prepare(self.dataset, data_dir=self.data_dir)
        n_split = data.cardinality(self.dataset, info.train_split, data_dir=self.data_dir)
        validation_size = self.validation_size or default_validation_size(n_split)
        if validation_size >= n_split:
            raise ValueError(f"--validation-size must be smaller than the training split of "
                             f"{self.dataset} ({n_split} examples), received {validation_size}")
        n_train = n_split - validation_size
        return min(n_train, self.train_subset or n_train), validation_size

    # --- the data --------------------------------------------------------------------------

    def load(self, steps_per_epoch: int | None = None) -> Data:
        if self.info.task == LANGUAGE_MODELLING:
            return self._load_text(steps_per_epoch)
        info, batch = self.info, self.batch_size
        n_train, validation_size = self.sizes()
        n_split = data.cardinality(self.dataset, info.train_split, data_dir=self.data_dir)
        train_mask, validation_mask = split_masks(n_split, validation_size)
        steps = steps_per_epoch or max(n_train // batch, 1)
        common = {"batch_size": batch, "data_dir": self.data_dir,
                  "image_size": self.image_size}

        def train(seed: int) -> tf.data.Dataset:
            ds = data.load(self.dataset, info.train_split, shuffle=True, seed=seed,
                           subset=self.train_subset, augment=self.augment,
                           drop_remainder=True, select=train_mask, **common)
            return ds.repeat().take(steps)

        validation = data.load(self.dataset, info.train_split, shuffle=False,
                               select=validation_mask, **common)
        test = data.load(self.dataset, info.test_split, shuffle=False,
                         subset=self.test_subset, **common)
        # Read once into memory: evaluated ~20 times per run, from the same examples each time.
        return Data(info.num_classes, self.input_shape, train, validation.cache(), test,
                    steps, n_train, validation_size, self.metric)

    def _load_text(self, steps_per_epoch: int | None) -> Data:
        info, batch = self.info, self.batch_size
        seq_len = self.input_shape[0]
        n_train, n_validation = self.sizes()
        steps = steps_per_epoch or max(n_train // batch, 1)

        def windows(split: str, subset: int | None, **kwargs) -> tf.data.Dataset:
            return data.load_windows(self.dataset, split, seq_len=seq_len, batch_size=batch,
                                     subset=subset, **kwargs)

        def train(seed: int) -> tf.data.Dataset:
            ds = windows(info.train_split, self.train_subset, shuffle=True, seed=seed,
                         drop_remainder=True)
            return ds.repeat().take(steps)

        validation = windows(info.validation_split, self.validation_size, shuffle=False)
        test = windows(info.test_split, self.test_subset, shuffle=False)
        return Data(info.num_classes, (seq_len,), train, validation.cache(), test, steps,
                    int(n_train), int(n_validation), PERPLEXITY)

    def __repr__(self) -> str:
        args = "".join(f", {k}={v!r}" for k, v in self.model_args.items())
        return (f"BuiltinWorkload({self.model_name!r}, {self.dataset!r}{args}, "
                f"batch_size={self.batch_size})")


def registered() -> list[tuple[str, str, str]]:
    """``(model, task, inputs)`` of every built-in model, for ``larq-bamsprod list``."""
    rows = []
    for name in models.MODELS:
        if model_task(name) == LANGUAGE_MODELLING:
            rows.append((name, "language model", "windows of token ids (--dataset ptb)"))
            continue
        side = models.ZOO_MIN_INPUT.get(name)
        if side:
            inputs = f"any input size (enlarged to {side}x{side} inside the model below that)"
        else:
            side = models.smallest_input(name)
            inputs = f"min input {side}x{side}"
        rows.append((name, "image classifier", inputs))
    return rows


def dataset_task(dataset: str) -> str | None:
    """The task of ``dataset``, or None for a name that is not registered."""
    info = data.DATASETS.get(dataset)
    return None if info is None else info.task


def metric_of(dataset: str) -> Metric:
    """The score of ``dataset``'s task (accuracy for a name that is not registered)."""
    return _METRICS[dataset_task(dataset) or CLASSIFICATION]


def check_model_fits_dataset(model: str, dataset: str, image_size=None,
                             augment: bool = False) -> None:
    """Raise a ValueError naming the flags when ``model`` cannot train on ``dataset``.

    An unknown dataset passes (the dataset's own check lists the valid names later).
    """
    task = dataset_task(dataset)
    if task is None:
        return
    text = sorted(n for n, info in data.DATASETS.items() if info.task == LANGUAGE_MODELLING)
    images = sorted(n for n, info in data.DATASETS.items() if info.task == CLASSIFICATION)
    lm_models = sorted(n for n in models.MODELS if model_task(n) == LANGUAGE_MODELLING)
    image_models = [n for n in models.MODELS if model_task(n) == CLASSIFICATION]
    if model_task(model) != task:
        if task == LANGUAGE_MODELLING:
            raise ValueError(
                f"--dataset {dataset} is a text corpus for language models, but --model "
                f"{model} is an image classifier; use --model {' or '.join(lm_models)} with "
                f"--dataset {dataset}, or an image dataset ({', '.join(images)}) with "
                f"--model {model}")
        raise ValueError(
            f"--model {model} is a language model, but --dataset {dataset} is an image "
            f"dataset; use --dataset {' or '.join(text)} with --model {model}, or an image "
            f"model ({', '.join(image_models[:3])}, ...) with --dataset {dataset}")
    if task == LANGUAGE_MODELLING:
        for flag, value in (("--image-size", image_size), ("--augment", augment or None)):
            if value is not None:
                raise ValueError(f"{flag} applies to image datasets, not to --dataset "
                                 f"{dataset}; drop {flag}")
