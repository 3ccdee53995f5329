"""The one description of a graph: its model, its data, its loss and its score.

A :class:`Workload` is what every stage of the harness takes (a run, ``compare``, ``tune``,
the reports), as AlgoPerf's workloads and DeepOBS' test problems are: it is resolved and
checked once, and nothing downstream re-derives a fact of the graph. The built-in graphs
are workloads too (:mod:`larq_bamsprod.harness.catalogue.workloads`); a user's own Larq
model on their own data is one line::

    from larq_bamsprod.harness import Workload

    workload = Workload(name="my-bnn", model=build_model,   # () -> uncompiled tf.keras.Model
                        train=(x_train, y_train), test=(x_test, y_test))

Defaults a user expects: classification with integer (sparse) labels, the model ending in
a softmax, scored by top-1 accuracy; ``validation=None`` holds ``validation_size``
examples (default 10% of ``train``, at most 5,000) out of ``train`` by a fixed seeded
permutation (:func:`split_masks`, the rule of the built-in graphs too), the same for every
seed, optimizer and command.

Data is a pair ``(x, y)`` of NumPy arrays (anything ``numpy.asarray`` takes) or a
``tf.data.Dataset`` of unbatched ``(x, y)`` examples; a dataset is read into memory once
(call ``.unbatch()`` on a batched one). A comparison's runs then see, for each seed, the
same batches in the same order whichever optimizer trains.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import importlib
import importlib.util
import inspect
import numbers
import os
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np
import tensorflow as tf

from larq_bamsprod.harness.metrics import ACCURACY, PERPLEXITY, Metric, metric_named

__all__ = ["Data", "Perplexity", "VALIDATION_SEED", "Workload", "check_positive_int",
           "default_validation_size", "load_workload", "split_masks"]


def check_positive_int(name: str, value, optional: bool = False) -> None:
    """Raise a ValueError naming ``name`` unless ``value`` is an int > 0 (or None, if
    ``optional``). The one check of this kind in the harness."""
    if value is None and optional:
        return
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, received {name}={value!r}")


VALIDATION_SEED = 20_240_614
"""Seed of the permutation that picks the validation examples (fixed: every seed, every
optimizer and every command sees the same validation set)."""


def default_validation_size(n_train: int) -> int:
    """10% of the training split, at most 5,000 examples (at least 1)."""
    return max(1, min(5_000, n_train // 10))


def split_masks(n_train: int, validation_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks ``(train, validation)`` over the ``n_train`` examples of a training split.

    ``validation_size`` examples, drawn by a permutation seeded with ``VALIDATION_SEED``,
    are held out for validation; the two masks are complements, so no example is in both.
    """
    check_positive_int("validation_size", validation_size)
    if validation_size >= n_train:
        raise ValueError(f"validation_size must be smaller than the training split "
                         f"({n_train} examples), received validation_size={validation_size}.")
    order = np.random.default_rng(VALIDATION_SEED).permutation(n_train)
    validation = np.zeros(n_train, dtype=bool)
    validation[order[:validation_size]] = True
    return ~validation, validation


@dataclasses.dataclass(frozen=True)
class Data:
    """A workload's data, resolved for one global batch size: what every run reads.

    Attributes:
        num_classes: Outputs of the model (the vocabulary size of a language model).
        input_shape: One example's shape: ``(H, W, C)`` images, ``(seq_len,)`` tokens, ...
        train: ``train(epoch_seed)`` -> one epoch of ``steps_per_epoch`` batches, shuffled
            by ``epoch_seed`` (the same batches for every optimizer of a seed).
        validation: The held-out batches every evaluation point reads.
        test: The test batches, read once at the end of a run.
        steps_per_epoch: Batches per epoch.
        train_size: Training examples (after the validation hold-out and any subset).
        validation_size: Validation examples.
        metric: The score, and which way is better.
    """

    num_classes: int
    input_shape: tuple
    train: Callable[[int], tf.data.Dataset]
    validation: tf.data.Dataset
    test: tf.data.Dataset
    steps_per_epoch: int
    train_size: int
    validation_size: int
    metric: Metric = ACCURACY


class Perplexity(tf.keras.metrics.Metric):
    """``exp`` of the mean cross-entropy per predicted token, over everything seen since
    the last reset (not a mean of per-batch perplexities)."""

    def __init__(self, name: str = "perplexity", **kwargs):
        super().__init__(name=name, **kwargs)
        self.total = self.add_weight(name="total", initializer="zeros")
        self.count = self.add_weight(name="count", initializer="zeros")

    def update_state(self, y_true, y_pred, sample_weight=None):
        cross_entropy = tf.keras.losses.sparse_categorical_crossentropy(
            y_true, tf.cast(y_pred, tf.float32))
        self.total.assign_add(tf.reduce_sum(cross_entropy))
        self.count.assign_add(tf.cast(tf.size(cross_entropy), tf.float32))

    def result(self):
        return tf.exp(tf.math.divide_no_nan(self.total, self.count))


def _keras_metrics(metric: Metric, num_classes: int, custom: Callable | None) -> list:
    if custom is not None:
        return [custom()]
    if metric is PERPLEXITY:
        return [Perplexity(name="perplexity")]
    found = [tf.keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
    if num_classes > 10:
        found.append(tf.keras.metrics.SparseTopKCategoricalAccuracy(5, name="top5"))
    return found


class Workload:
    """A graph to compare optimizers on: model, data, loss, score and batch size.

    Args:
        name: What tables, plots and ``config.json`` call it.
        model: A zero-argument callable returning an uncompiled ``tf.keras.Model``; called
            afresh for every run under the run's seed (every optimizer of a seed then
            starts from the same saved initial weights).
        train: ``(x, y)`` arrays or a ``tf.data.Dataset`` of unbatched ``(x, y)``.
        test: The same, for the test scores (read once, at the end of a run).
        validation: The same, or None: ``validation_size`` examples held out of ``train``
            by the harness's fixed, seeded rule. Defaults to `None`.
        loss: What ``model.compile`` gets. Defaults to
            `"sparse_categorical_crossentropy"` (integer labels, softmax outputs).
        metric: ``"accuracy"`` (sparse top-1, higher is better), ``"perplexity"`` (lower
            is better) or a :class:`~larq_bamsprod.harness.metrics.Metric` with
            ``keras_metric``. Defaults to `"accuracy"`.
        keras_metric: For a custom ``metric``: a zero-argument callable returning the Keras
            metric named ``metric.name``. Defaults to `None`.
        batch_size: The global batch size. Defaults to `128`.
        validation_size: Examples held out of ``train`` when ``validation`` is None.
            Defaults to `None` (10% of ``train``, at most 5,000).
        train_subset: Train on the first N remaining examples only. Defaults to `None`.
        test_subset: Test on the first N test examples only. Defaults to `None`.
        target: A validation score fixed in advance (AlgoPerf's way) for time-to-target.
            Defaults to `None` (a rule over the compared runs decides).

    Raises:
        TypeError, ValueError: naming the argument, the value and the fix. :meth:`check`
            reads the data and builds the model once to find what only that shows.
    """

    builtin = False

    def __init__(self, name: str, model: Callable[[], tf.keras.Model], train, test,
                 validation=None, *, loss: Any = "sparse_categorical_crossentropy",
                 metric: str | Metric = "accuracy", keras_metric: Callable | None = None,
                 batch_size: int = 128, validation_size: int | None = None,
                 train_subset: int | None = None, test_subset: int | None = None,
                 target: float | None = None):
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"name must be a non-empty string, received name={name!r}")
        if not callable(model):
            raise TypeError(f"model must be a zero-argument callable that returns an "
                            f"uncompiled tf.keras.Model, received model={model!r}")
        if isinstance(metric, str):
            metric = metric_named(metric)
        if not isinstance(metric, Metric):
            raise TypeError(f"metric must be 'accuracy', 'perplexity' or a Metric, received "
                            f"metric={metric!r}")
        if metric not in (ACCURACY, PERPLEXITY) and keras_metric is None:
            raise ValueError(f"metric {metric.name!r} is not built in: give keras_metric=, a "
                             f"zero-argument callable returning the Keras metric named "
                             f"{metric.name!r}")
        if test is None:
            raise ValueError("test is required: a comparison reports test scores once, at "
                             "the end of every run; give test=(x_test, y_test)")
        self.name = name.strip()
        self.model = model
        self.train, self.test, self.validation = train, test, validation
        self.loss = loss
        self.metric = metric
        self.keras_metric = keras_metric
        self.batch_size = batch_size
        self.validation_size = validation_size
        self.train_subset = train_subset
        self.test_subset = test_subset
        self.target = target
        self._arrays: dict | None = None
        self._given: dict | None = None
        self._checked_model: dict | None = None
        self._check_settings()

    # --- settings --------------------------------------------------------------------------

    def _check_settings(self) -> None:
        check_positive_int("batch_size", self.batch_size)
        for name in ("validation_size", "train_subset", "test_subset"):
            check_positive_int(name, getattr(self, name), optional=True)
        if self.validation is not None and self.validation_size is not None:
            raise ValueError("validation_size applies when validation=None (examples held "
                             "out of train); give one of validation= and validation_size=")
        if self.target is not None and not (
                isinstance(self.target, numbers.Real) and np.isfinite(self.target)):
            raise ValueError(f"target must be a finite validation {self.metric.name}, "
                             f"received target={self.target!r}")

    def replace(self, **settings) -> Workload:
        """A copy with some of ``batch_size``, ``validation_size``, ``train_subset``,
        ``test_subset``, ``target`` changed (None leaves a setting as it is)."""
        allowed = {"batch_size", "validation_size", "train_subset", "test_subset", "target"}
        unknown = sorted(set(settings) - allowed)
        if unknown:
            raise TypeError(f"replace() takes {', '.join(sorted(allowed))}; received "
                            f"{', '.join(unknown)}")
        new = copy.copy(self)
        for key, value in settings.items():
            if value is not None:
                setattr(new, key, value)
        new._check_settings()
        if "validation_size" in settings or "train_subset" in settings:
            new._arrays = None
        return new

    # --- the data --------------------------------------------------------------------------

    def _read(self, data, what: str) -> tuple[np.ndarray, np.ndarray]:
        if isinstance(data, tf.data.Dataset):
            xs, ys = [], []
            for example in data.as_numpy_iterator():
                if not isinstance(example, tuple) or len(example) != 2:
                    raise ValueError(f"{what} must yield (x, y) pairs; its elements are "
                                     f"{type(example).__name__}: map it to (x, y)")
                xs.append(example[0])
                ys.append(example[1])
            if not xs:
                raise ValueError(f"{what} is empty; give at least one example")
            try:
                return np.stack(xs), np.stack(ys)
            except ValueError as error:
                raise ValueError(f"{what}'s examples differ in shape ({error}); is it "
                                 "batched? call .unbatch() on it") from None
        if not isinstance(data, (tuple, list)) or len(data) != 2:
            raise TypeError(f"{what} must be (x, y) arrays or a tf.data.Dataset of (x, y) "
                            f"examples, received {type(data).__name__}")
        try:
            x, y = np.asarray(data[0]), np.asarray(data[1])
        except (TypeError, ValueError) as error:
            raise TypeError(f"{what} cannot be read as arrays ({error})") from None
        if x.ndim == 0 or y.ndim == 0:
            raise ValueError(f"{what}: x and y need one entry per example (received shapes "
                             f"{x.shape} and {y.shape})")
        if len(x) != len(y):
            raise ValueError(f"{what}: x has {len(x)} examples but y has {len(y)}; give one "
                             "label per example")
        if len(x) == 0:
            raise ValueError(f"{what} is empty; give at least one example")
        return x, y

    def arrays(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """``{"train", "validation", "test"}`` -> ``(x, y)`` as training reads them: the
        validation hold-out and the subsets applied."""
        if self._arrays is not None:
            return self._arrays
        self.fingerprint()  # reads each split once
        x, y = self._given["train"]
        if self.validation is None:
            size = self.validation_size or default_validation_size(len(x))
            if size >= len(x):
                raise ValueError(f"validation_size must be smaller than train ({len(x)} "
                                 f"examples), received validation_size={size}")
            keep, held = split_masks(len(x), size)
            validation = (x[held], y[held])
            x, y = x[keep], y[keep]
        else:
            validation = self._given["validation"]
        if self.train_subset is not None:
            x, y = x[:self.train_subset], y[:self.train_subset]
        test = self._given["test"]
        if self.test_subset is not None:
            test = (test[0][:self.test_subset], test[1][:self.test_subset])
        self._arrays = {"train": (x, y), "validation": validation, "test": test}
        return self._arrays

    def train_examples(self) -> int:
        """Training examples after the validation hold-out and the subset."""
        return len(self.arrays()["train"][0])

    def load(self, steps_per_epoch: int | None = None) -> Data:
        """The data at this workload's batch size (every epoch ``steps_per_epoch`` batches,
        default: as many whole batches as ``train`` holds)."""
        arrays = self.arrays()
        x, y = arrays["train"]
        steps = steps_per_epoch or max(len(x) // self.batch_size, 1)
        batch = self.batch_size

        def train(seed: int) -> tf.data.Dataset:
            ds = tf.data.Dataset.from_tensor_slices((x, y))
            ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
            return ds.batch(batch, drop_remainder=True).repeat().take(steps)

        def batches(split: str) -> tf.data.Dataset:
            return tf.data.Dataset.from_tensor_slices(arrays[split]).batch(batch).cache()

        return Data(self.num_classes, tuple(x.shape[1:]), train, batches("validation"),
                    batches("test"), steps, len(x), len(arrays["validation"][0]),
                    self.metric)

    # --- the model -------------------------------------------------------------------------

    def build_model(self, seed: int | None = None) -> tf.keras.Model:
        """A new model: ``model()`` under ``tf.keras.utils.set_random_seed(seed)``."""
        if seed is not None:
            tf.keras.utils.set_random_seed(seed)
        model = self.model()
        if not isinstance(model, tf.keras.Model):
            raise TypeError(f"model of workload {self.name!r} must return an uncompiled "
                            f"tf.keras.Model, returned {type(model).__name__}; make it build "
                            "and return the model")
        return model

    def compile_arguments(self, num_classes: int) -> dict:
        """What ``model.compile`` gets besides the optimizer: the loss and the metrics."""
        return {"loss": self.loss,
                "metrics": _keras_metrics(self.metric, num_classes, self.keras_metric)}

    @property
    def num_classes(self) -> int:
        """Outputs of the model (from :meth:`check`'s one build)."""
        return self._model_facts()["num_classes"]

    def _model_facts(self) -> dict:
        if self._checked_model is None:
            self.check()
        return self._checked_model

    # --- checks and identity ---------------------------------------------------------------

    def check(self) -> None:
        """Read the data and build the model once: raise a ValueError or TypeError naming
        the problem and the fix if they do not fit. Cheap for CPU-sized workloads."""
        arrays = self.arrays()
        x, y = arrays["train"]
        if len(x) < self.batch_size:
            raise ValueError(f"train has {len(x)} examples after the validation hold-out and "
                             f"subset, fewer than batch_size={self.batch_size}; lower the "
                             "batch size or give more examples")
        try:
            model = self.build_model(seed=0)
        except TypeError:
            raise
        except Exception as error:
            raise ValueError(f"model of workload {self.name!r} failed to build: "
                             f"{type(error).__name__}: {_first_line(error)}") from None
        try:
            sample = model(x[:2], training=False)
        except Exception as error:
            raise ValueError(
                f"train's x (examples of shape {x.shape[1:]}, dtype {x.dtype}) does not fit "
                f"model {model.name!r} (input {getattr(model, 'input_shape', '?')}): "
                f"{type(error).__name__}: {_first_line(error)}; give data of the model's "
                "input shape") from None
        num_classes = int(sample.shape[-1]) if sample.shape.rank else 1
        if self.metric is ACCURACY and self.loss == "sparse_categorical_crossentropy":
            for split, (_, labels) in arrays.items():
                _check_labels(split, labels, num_classes)
        self._checked_model = {"num_classes": num_classes,
                               "parameters": int(model.count_params()),
                               "model_name": model.name}
        tf.keras.backend.clear_session()

    def fingerprint(self) -> dict:
        """Per split as given (before the validation hold-out and the subsets): examples,
        shapes, dtypes and a SHA-256 of the examples and labels."""
        if self._given is None:
            given = {"train": self._read(self.train, "train")}
            if self.validation is not None:
                given["validation"] = self._read(self.validation, "validation")
            given["test"] = self._read(self.test, "test")
            self._given = given
        found = {}
        for split, (x, y) in self._given.items():
            digest = hashlib.sha256()
            for array in (x, y):
                array = np.ascontiguousarray(array)
                digest.update(f"{array.dtype.str}{array.shape}".encode())
                digest.update(array.tobytes())
            found[split] = {"examples": len(x), "x": f"{x.dtype}{list(x.shape[1:])}",
                            "y": f"{y.dtype}{list(y.shape[1:])}",
                            "sha256": digest.hexdigest()[:16]}
        return found

    def identity(self) -> dict:
        """What ``config.json`` records of the workload; a rerun into the same output must
        match it (a changed example changes ``data``)."""
        facts = self._model_facts()
        return {
            "workload": self.name,
            "data": self.fingerprint(),
            "model": {"name": facts["model_name"], "parameters": facts["parameters"]},
            "loss": self.loss if isinstance(self.loss, str) else repr(self.loss),
            "metric": self.metric.name,
            "batch_size": self.batch_size,
            "validation_size": self.validation_size,
            "train_subset": self.train_subset,
            "test_subset": self.test_subset,
        }

    def describe(self) -> str:
        """A title for tables and plots."""
        return self.name

    def notes(self, input_shape: tuple) -> list[str]:
        """Notes a report should carry about how the graph was built (none here)."""
        return []

    def __repr__(self) -> str:
        return f"Workload(name={self.name!r}, batch_size={self.batch_size})"


def _check_labels(split: str, labels: np.ndarray, num_classes: int) -> None:
    if not np.issubdtype(labels.dtype, np.integer):
        if not np.all(np.mod(labels, 1) == 0):
            raise ValueError(f"{split}'s labels must be class indices (integers) for the "
                             f"default sparse loss and accuracy; give integer labels, or set "
                             "loss= and metric=")
    low, high = labels.min(), labels.max()
    if low < 0 or high >= num_classes:
        raise ValueError(f"{split}'s labels run from {low} to {high}, outside the model's "
                         f"{num_classes} classes (0 to {num_classes - 1}); give the model "
                         f"{int(high) + 1} outputs or fix the labels")


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def takes_argument(function: Callable) -> bool:
    """Whether ``function`` can be called with one positional argument."""
    try:
        params = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
               for p in params)


def load_workload(spec: str, flag: str = "workload") -> Workload:
    """The workload ``spec`` names: ``MODULE:NAME`` (``MODULE`` importable from the current
    folder or ``PYTHONPATH``) or ``path/to/file.py:NAME``, where ``NAME`` is a
    :class:`Workload` or a zero-argument callable returning one.

    Raises:
        ValueError: one line naming the problem and the fix (no such module, file or name;
            not a workload; the module failed to import).
    """
    where, sep, name = str(spec).rpartition(":")
    if not sep or not where or not name.isidentifier():
        raise ValueError(f"{flag} takes MODULE:NAME or path/to/file.py:NAME, received "
                         f"{spec!r} (e.g. {flag} my_workloads:fmnist)")
    if where.endswith(".py") or os.sep in where or "/" in where:
        path = Path(where)
        if not path.is_file():
            raise ValueError(f"{flag} {spec}: no file {where!r}; give the path of a Python "
                             "file that defines the workload")
        module_name = f"_larq_bamsprod_workload_{abs(hash(str(path.resolve())))}"
        loader = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(loader)
        sys.modules[module_name] = module  # dataclasses and pickling look modules up here
        try:
            loader.loader.exec_module(module)
        except Exception as error:
            del sys.modules[module_name]
            raise ValueError(f"{flag} {spec}: running {where} failed: "
                             f"{type(error).__name__}: {_first_line(error)}") from None
        what = f"file {where}"
    else:
        if os.getcwd() not in sys.path and "" not in sys.path:
            sys.path.insert(0, os.getcwd())
        try:
            module = importlib.import_module(where)
        except ModuleNotFoundError as error:
            if error.name and where.split(".")[0] == error.name.split(".")[0]:
                raise ValueError(f"{flag} {spec}: no module named {where!r} in the current "
                                 "folder or on PYTHONPATH; check the name, or give the file: "
                                 f"{flag} path/to/file.py:{name}") from None
            raise ValueError(f"{flag} {spec}: importing {where} failed: ModuleNotFoundError: "
                             f"{_first_line(error)}") from None
        except Exception as error:
            raise ValueError(f"{flag} {spec}: importing {where} failed: "
                             f"{type(error).__name__}: {_first_line(error)}") from None
        what = f"module {where}"
    if not hasattr(module, name):
        found = sorted(k for k, v in vars(module).items()
                       if isinstance(v, Workload) and not k.startswith("_"))
        raise ValueError(f"{flag} {spec}: {what} has no {name!r}"
                         + (f"; its workloads: {', '.join(found)}" if found else
                            "; define a Workload (or a function returning one) there"))
    value = getattr(module, name)
    if not isinstance(value, Workload):
        if not callable(value) or isinstance(value, type):
            raise ValueError(f"{flag} {spec}: {name} is a {type(value).__name__}, not a "
                             "larq_bamsprod.harness.Workload or a zero-argument function "
                             "returning one")
        try:
            value = value()
        except (TypeError, ValueError) as error:
            raise ValueError(f"{flag} {spec}: calling {name}() failed: "
                             f"{type(error).__name__}: {_first_line(error)}") from None
        if not isinstance(value, Workload):
            raise ValueError(f"{flag} {spec}: {name}() returned a {type(value).__name__}, "
                             "not a larq_bamsprod.harness.Workload")
    return value
