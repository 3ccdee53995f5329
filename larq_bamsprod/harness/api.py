"""The Python API: the command line's ``compare`` and ``tune``, on any workload.

The same code as ``larq-bamsprod compare`` / ``tune`` (every input checked before anything
is written, the same files, the same resume rules), called with a
:class:`~larq_bamsprod.harness.Workload` instead of command-line flags::

    from larq_bamsprod import harness

    rows = harness.compare(workload, optimizers=["bamsprod", "bop", "adam"], seeds=[0, 1, 2],
                           epochs=5, output="runs/my-bnn")

An optimizer list may name a user's own optimizer beside the built-in ones, as
``(name, builder)``: ``builder()`` returns a new ``tf.keras`` optimizer, or
``builder(schedule)`` one whose base rate is multiplied by ``schedule`` (the comparison's
schedule shape, value 1 at step 0; None with ``schedule="constant"``), so that it decays
as every built-in optimizer does. A zero-argument builder keeps its own rate: with a
non-constant ``schedule`` its row is not trained on the same schedule, and a line says so.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Callable, Union

from larq_bamsprod.harness.catalogue import registry
from larq_bamsprod.harness.catalogue.registry import OptimizerEntry
from larq_bamsprod.harness.workload import Workload, takes_argument

__all__ = ["OptimizerEntry", "compare", "tune"]

OptimizerSpec = Union[str, tuple, OptimizerEntry]


def _optimizer_names(optimizers: Iterable[OptimizerSpec] | None, schedule: str,
                     log: Callable[[str], None]) -> list[str]:
    """Canonical names; a user's ``(name, builder)`` or entry is registered first."""
    if optimizers is None:
        return list(registry.COMPARED_BY_DEFAULT)
    if isinstance(optimizers, (str, tuple)):
        optimizers = [optimizers]
    names = []
    for spec in optimizers:
        if isinstance(spec, tuple):
            if len(spec) != 2 or not isinstance(spec[0], str) or not callable(spec[1]):
                raise TypeError(f"an optimizer given as a tuple must be (name, builder), "
                                f"received {spec!r}")
            spec = _user_entry(*spec, schedule=schedule, log=log)
        if isinstance(spec, OptimizerEntry):
            known = registry.REGISTRY.get(spec.name)
            if known is not spec:
                registry.register(spec)
            spec = spec.name
        if not isinstance(spec, str):
            raise TypeError(f"optimizers takes names, (name, builder) pairs or "
                            f"OptimizerEntry objects, received {spec!r}")
        names.append(registry.canonical_name(spec))
    return names


def _user_entry(name: str, builder: Callable, schedule: str,
                log: Callable[[str], None]) -> OptimizerEntry:
    with_schedule = takes_argument(builder)
    if not with_schedule and schedule != "constant":
        log(f"Note: optimizer {name}: its builder takes no schedule, so it keeps its own "
            f"rate instead of the comparison's {schedule} schedule (give it one argument, "
            "the schedule shape, to share it).")

    def build(params: dict, shape):
        optimizer = builder(shape) if with_schedule else builder()
        if not hasattr(optimizer, "apply_gradients"):
            raise TypeError(f"the builder of optimizer {name!r} must return a tf.keras "
                            f"optimizer, returned {type(optimizer).__name__}")
        return optimizer

    existing = registry.REGISTRY.get(name)
    entry = OptimizerEntry(name, build, {}, layout="every variable",
                           source="the user's own", compared_by_default=False)
    if existing is not None and existing.source == "the user's own":
        registry.REGISTRY.pop(name)  # a new builder under the same name, e.g. a rerun
    return entry


def _config(workload: Workload, optimizers, seeds, epochs, output, log, **settings):
    from larq_bamsprod.harness.experiments.config import CompareConfig

    if not isinstance(workload, Workload):
        raise TypeError(f"workload must be a larq_bamsprod.harness.Workload, received "
                        f"{type(workload).__name__}; build one with Workload(name=..., "
                        "model=..., train=..., test=...)")
    schedule = settings.get("schedule", "cosine")
    return CompareConfig(workload=workload,
                         optimizers=_optimizer_names(optimizers, schedule, log),
                         seeds=list(seeds), epochs=epochs, output=str(output), **settings)


def compare(workload: Workload, optimizers: Iterable[OptimizerSpec] | None = None,
            seeds: Iterable[int] = (0,), epochs: int = 5, output: str = "runs/compare", *,
            hparams: dict[str, dict[str, Any]] | None = None, schedule: str = "cosine",
            steps_per_epoch: int | None = None, eval_every: int | None = None,
            reference: str | None = None, target: float | None = None,
            mixed_precision: bool = False, distribute: str | None = None,
            deterministic: bool = True, verbose: int | None = None,
            log: Callable[[str], None] = print) -> list[dict]:
    """Compare ``optimizers`` on ``workload``: what ``larq-bamsprod compare`` does.

    Args:
        workload: The graph (:class:`~larq_bamsprod.harness.Workload`).
        optimizers: Names (``"bamsprod"``, ``"bop"``, ...; variants ``"bamsprod@x"``),
            ``(name, builder)`` pairs or registry entries. Defaults to `None` (the seven
            compared by default).
        seeds: One run per optimizer and seed. Defaults to `(0,)`.
        epochs: Epochs per run. Defaults to `5`.
        output: The output folder (a rerun resumes it). Defaults to `"runs/compare"`.
        hparams: ``{optimizer: {name: value}}`` overrides. Defaults to `None`.
        schedule, steps_per_epoch, eval_every, reference, target, mixed_precision,
            distribute, deterministic, verbose: as the command's flags.
        log: Where progress lines go. Defaults to `print`.

    Returns:
        One row per optimizer, as ``results.json``'s ``rows``.

    Raises:
        ValueError, TypeError: a bad input, before anything is written.
    """
    from larq_bamsprod.harness.experiments import compare as experiment

    cfg = _config(workload, optimizers, seeds, epochs, output, log, hparams=hparams or {},
                  schedule=schedule, steps_per_epoch=steps_per_epoch, eval_every=eval_every,
                  reference=reference, target=target, mixed_precision=mixed_precision,
                  distribute=distribute, deterministic=deterministic, verbose=verbose)
    experiment.check(cfg)
    return experiment.run_comparison(cfg, log)["rows"]


def tune(workload: Workload, optimizers: Iterable[OptimizerSpec] | None = None,
         trials: int = 20, seeds: Iterable[int] = (0,), epochs: int = 5,
         output: str = "runs/tune", *, studies: int = 1, storage: str | None = None,
         space: dict[str, dict[str, tuple]] | None = None, ablations: Iterable[str] = (),
         keep_edge: dict[str, str] | None = None, sampler_seed: int = 0,
         stale_after: float | None = None, rerun: bool = True,
         hparams: dict[str, dict[str, Any]] | None = None, schedule: str = "cosine",
         steps_per_epoch: int | None = None, eval_every: int | None = None,
         reference: str | None = None, target: float | None = None,
         deterministic: bool = True, verbose: int | None = None,
         log: Callable[[str], None] = print) -> dict:
    """Tune every optimizer with ``trials`` trials, then compare the best over ``seeds``:
    what ``larq-bamsprod tune`` does.

    Args:
        workload, optimizers, seeds, epochs, output, hparams, schedule, ...: as
            :func:`compare`. A user's optimizer is tuned only as an
            :class:`OptimizerEntry` whose ``build(params, schedule)`` takes the
            hyperparameters of its ``defaults`` and ``space``.
        trials: Trials per study (the same for every optimizer). Defaults to `20`.
        studies: Independent studies per optimizer; the final configuration is the best
            trial over all of them. Defaults to `1`.
        storage: An Optuna storage URL or ``journal:PATH``. Defaults to `None`
            (``journal:OUTPUT/optuna.journal``).
        space: ``{optimizer: {name: ("log", low, high) | ("choice", values)}}`` entries
            replacing or adding to the optimizers' own spaces. Defaults to `None`.
        ablations: Named ablations added to the spaces, ``"OPT.NAME"`` (e.g.
            ``"bamsprod.lr_decay"``). Defaults to `()`.
        keep_edge: ``{optimizer: reason}`` why a chosen value at the edge of its range
            stays (tune.json's ``edge_kept_because``). Defaults to `None`.
        sampler_seed: Seed of the studies' quasi-random points. Defaults to `0`.
        stale_after: Seconds after which a RUNNING trial without heartbeat is run again.
            Defaults to `None` (120).
        rerun: Whether to run the final comparison. Defaults to `True`.

    Returns:
        ``{"tune": tune.json's content, "rows": results.json's rows}`` (no ``rows`` with
        ``rerun=False``).
    """
    from larq_bamsprod.harness.catalogue.search_space import (
        parse_ablations,
        parse_keep_edge,
        space_of,
    )
    from larq_bamsprod.harness.experiments import compare as experiment
    from larq_bamsprod.harness.experiments import tune as tuning

    cfg = _config(workload, optimizers, seeds, epochs, output, log, hparams=hparams or {},
                  schedule=schedule, steps_per_epoch=steps_per_epoch, eval_every=eval_every,
                  reference=reference, target=target, deterministic=deterministic,
                  verbose=verbose)
    space = {registry.canonical_name(k): dict(v) for k, v in (space or {}).items()}
    for opt in cfg.optimizers:
        if not space_of(opt, space):
            raise ValueError(
                f"optimizer {opt!r} has nothing to tune: give it as an OptimizerEntry whose "
                "build(params, schedule) takes its hyperparameters, with defaults= and "
                "space= (e.g. space={'learning_rate': ('log', 1e-4, 1e-1)})")
    config = tuning.TuneConfig(compare=cfg, trials=trials, studies=studies, storage=storage,
                               space=space, sampler_seed=sampler_seed,
                               ablations=parse_ablations(list(ablations)),
                               keep_edge=parse_keep_edge([f"{k}={v}" for k, v in
                                                          (keep_edge or {}).items()]),
                               stale_after=(tuning.DEFAULT_STALE_AFTER if stale_after is None
                                            else stale_after),
                               rerun=rerun)
    experiment.check(cfg, hyperparameters=False)
    result = tuning.run_tune(config, log)
    if "compare" in result:
        result["rows"] = result.pop("compare")["rows"]
    return result
