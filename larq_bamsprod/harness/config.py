"""What one comparison runs (:class:`CompareConfig`), and which of it a resumed run must match."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from larq_bamsprod.harness import registry
from larq_bamsprod.harness.files import read_json

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
        default_factory=lambda: list(registry.COMPARED_BY_DEFAULT)
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
        self.optimizers = [registry.canonical_name(o) for o in self.optimizers]
        if not self.optimizers:
            raise ValueError(
                f"optimizers is empty; choose from: {', '.join(registry.OPTIMIZER_NAMES)}"
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
            registry.hyperparameters(opt, values)
        from larq_bamsprod.harness import models

        models.check_model_args(self.model, self.model_args)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


class ResumeError(RuntimeError):
    """A run folder's files cannot be resumed (missing or foreign checkpoint)."""


def _positive(name: str, value) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, received {name}={value!r}")


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


def describe_hparams(cfg: CompareConfig, name: str) -> dict:
    return {
        k: (v if isinstance(v, (int, float, str, bool, type(None))) else repr(v))
        for k, v in registry.hyperparameters(name, cfg.hparams.get(name)).items()
    }
