"""What a graph is trained for and scored by, and which way its score improves.

Two tasks, told apart by the dataset:

* **Image classification** (every TFDS dataset of :mod:`larq_bamsprod.harness.data`):
  scored by top-1 accuracy, *higher* is better. History rows carry ``val_accuracy``.
* **Language modelling** (``ptb``): scored by perplexity, ``exp`` of the mean
  cross-entropy per predicted token, *lower* is better. History rows carry
  ``val_perplexity``; ``done.json`` carries ``test_perplexity`` for the final and the
  best-validation weights.

Everything that chooses or compares reads the score through :class:`Metric`, so that one
rule serves both directions: the target is reached at the first evaluation whose validation
score is at least (accuracy) or at most (perplexity) the target; the best checkpoint is the
highest accuracy or the lowest perplexity; a paired difference (optimizer minus reference)
is "better" when its whole interval is above 0 for accuracy and below 0 for perplexity; the
tuning study maximizes accuracy and minimizes perplexity.

Models say which inputs they take (:data:`MODEL_TASKS`); :func:`check_model_fits_dataset`
refuses an image model on a text corpus and the other way round.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "ACCURACY",
    "CLASSIFICATION",
    "LANGUAGE_MODELLING",
    "MODEL_TASKS",
    "PERPLEXITY",
    "Metric",
    "check_model_fits_dataset",
    "dataset_task",
    "metric_named",
    "metric_of",
    "model_task",
]

CLASSIFICATION = "classification"
LANGUAGE_MODELLING = "language_modelling"

MODEL_TASKS = {"BinaryLSTM": LANGUAGE_MODELLING}
"""Models that are not image classifiers, by their name in ``models.MODELS``."""


@dataclass(frozen=True)
class Metric:
    """A score of evaluation rows: its name and the direction in which it improves.

    Attributes:
        name: Row key suffix: ``val_<name>``, ``test_<name>``, ``train_<name>``.
        higher_is_better: Whether a larger value is the better one.
        label: How tables and plots name it.
        percent: Whether tables show it times 100 (accuracy as %).
    """

    name: str
    higher_is_better: bool
    label: str
    percent: bool

    @property
    def val_key(self) -> str:
        return f"val_{self.name}"

    @property
    def test_key(self) -> str:
        return f"test_{self.name}"

    @property
    def train_key(self) -> str:
        return f"train_{self.name}"

    @property
    def direction(self) -> str:
        """Optuna's study direction for this score."""
        return "maximize" if self.higher_is_better else "minimize"

    @property
    def worst(self) -> float:
        """A value every real score beats (a diverged run's score)."""
        return -math.inf if self.higher_is_better else math.inf

    def reaches(self, value: float, target: float) -> bool:
        """Whether ``value`` is at the target or beyond it in the better direction."""
        return value >= target if self.higher_is_better else value <= target

    def improves(self, value: float, best: float) -> bool:
        """Whether ``value`` is strictly better than ``best`` (NaN never is)."""
        return value > best if self.higher_is_better else value < best

    def best_row(self, rows: list[dict]) -> dict:
        """The row with the best validation score, the first of equal ones."""
        if self.higher_is_better:
            return max(rows, key=lambda r: r[self.val_key])
        return min(rows, key=lambda r: r[self.val_key])


ACCURACY = Metric("accuracy", True, "top-1", percent=True)
PERPLEXITY = Metric("perplexity", False, "perplexity", percent=False)

_METRICS = {CLASSIFICATION: ACCURACY, LANGUAGE_MODELLING: PERPLEXITY}


def metric_named(name: str) -> Metric:
    """The metric called ``name`` (``"accuracy"`` or ``"perplexity"``)."""
    return {m.name: m for m in _METRICS.values()}[name]


def dataset_task(dataset: str) -> str | None:
    """The task of ``dataset``, or None for a name that is not registered."""
    from larq_bamsprod.harness import data

    info = data.DATASETS.get(dataset)
    return None if info is None else info.task


def model_task(model: str) -> str:
    """The task of model ``model`` (a key of ``models.MODELS``)."""
    return MODEL_TASKS.get(model, CLASSIFICATION)


def metric_of(dataset: str) -> Metric:
    """The score of ``dataset``'s task (accuracy for a name that is not registered)."""
    return _METRICS[dataset_task(dataset) or CLASSIFICATION]


def check_model_fits_dataset(model: str, dataset: str, image_size=None,
                             augment: bool = False) -> None:
    """Raise a ValueError naming the flags when ``model`` cannot train on ``dataset``.

    An unknown dataset passes (the dataset's own check lists the valid names later).
    """
    from larq_bamsprod.harness import data, models

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
