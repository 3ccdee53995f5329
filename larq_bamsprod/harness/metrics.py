"""What a workload is scored by, and which way its score improves (:class:`Metric`).

Two scores are built in:

* :data:`ACCURACY`: top-1 accuracy, *higher* is better (image classification, and the
  default of a user's :class:`~larq_bamsprod.harness.Workload`). History rows carry
  ``val_accuracy``.
* :data:`PERPLEXITY`: ``exp`` of the mean cross-entropy per predicted token, *lower* is
  better (language modelling). History rows carry ``val_perplexity``; ``done.json`` carries
  ``test_perplexity`` for the final and the best-validation weights.

Everything that chooses or compares reads the score through :class:`Metric`, so that one
rule serves both directions: the target is reached at the first evaluation whose validation
score is at least (accuracy) or at most (perplexity) the target; the best checkpoint is the
highest accuracy or the lowest perplexity; a paired difference (optimizer minus reference)
is "better" when its whole interval is above 0 for accuracy and below 0 for perplexity; the
tuning study maximizes accuracy and minimizes perplexity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["ACCURACY", "PERPLEXITY", "Metric", "metric_named"]

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



def metric_named(name: str) -> Metric:
    """The metric called ``name`` (``"accuracy"`` or ``"perplexity"``)."""
    known = {m.name: m for m in (ACCURACY, PERPLEXITY)}
    if name not in known:
        raise ValueError(f"metric must be one of {', '.join(known)}, received metric={name!r}")
    return known[name]
