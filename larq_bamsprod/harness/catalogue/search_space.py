"""Search spaces of the tuning studies: each optimizer's own (its registry entry's
``space``, the same for every graph), ``--space`` entries, and the edge rule.

A space maps a hyperparameter to ``("log", low, high)`` (log-uniform) or
``("choice", values)``. :func:`at_edge` flags a chosen value in the outer
:data:`EDGE_FRACTION` (log scale) of its range: the optimum may lie outside it.
"""

from __future__ import annotations

import math
from typing import Any

from larq_bamsprod.harness.catalogue import registry


def space_of(optimizer: str, overrides: dict[str, dict[str, tuple]] | None = None,
             ablations: dict[str, list[str]] | None = None) -> dict[str, tuple]:
    """The search space of ``optimizer`` (a variant ``opt@label`` uses ``opt``'s), with the
    entries of its named ablations ``ablations[optimizer]`` (``--ablation``) added, then
    those of ``overrides[optimizer]`` (``--space``) replacing or adding to it."""
    entry = registry.entry(optimizer)
    space = dict(entry.space)
    for name in (ablations or {}).get(optimizer, []):
        space.update(entry.ablations[name])
    space.update((overrides or {}).get(optimizer, {}))
    return space


def parse_ablations(items: list[str]) -> dict[str, list[str]]:
    """``["bamsprod.lr_decay"]`` -> ``{"bamsprod": ["lr_decay"]}``; refuses an ablation the
    optimizer's registry entry does not name."""
    out: dict[str, list[str]] = {}
    for item in items or []:
        opt, dot, name = item.rpartition(".")
        if not dot or not opt or not name:
            raise ValueError(f"--ablation {item!r} must look like OPTIMIZER.NAME, e.g. "
                             "bamsprod.lr_decay")
        opt = registry.canonical_name(opt)
        named = registry.entry(opt).ablations
        if name not in named:
            raise ValueError(f"--ablation {item!r}: {opt} has no ablation {name!r}; valid: "
                             f"{', '.join(f'{opt}.{n}' for n in named) or 'none'}")
        out.setdefault(opt, []).append(name)
    return out


def decades(spec: tuple) -> float | None:
    """Width of a log-uniform entry in decades, ``log10(high / low)``; None for a choice."""
    return math.log10(spec[2] / spec[1]) if spec[0] == "log" else None


def describe(spec: tuple) -> str:
    """``log-uniform [0.0001, 1]`` or ``one of 'sqrt', None``."""
    if spec[0] == "log":
        return f"log-uniform [{spec[1]:g}, {spec[2]:g}]"
    return "one of " + ", ".join(repr(v) for v in spec[1])


def widths_table() -> str:
    """Markdown: every built-in optimizer's search space (and named ablations), with each
    range's width in decades."""
    lines = ["| optimizer | hyperparameter | searched | width (decades) |", "|---|---|---|---|"]
    for name in registry.OPTIMIZER_NAMES:
        entry = registry.entry(name)
        rows = [(hp, spec, "") for hp, spec in entry.space.items()]
        rows += [(hp, spec, f" (only with --ablation {name}.{label})")
                 for label, extra in entry.ablations.items() for hp, spec in extra.items()]
        for hp, spec, note in rows:
            width = decades(spec)
            lines.append(f"| {name} | {hp}{note} | {describe(spec)} | "
                         f"{'-' if width is None else f'{width:g}'} |")
    return "\n".join(lines) + "\n"

EDGE_FRACTION = 0.1
"""A chosen log-uniform value within this fraction of its range's width (in log scale) of
either end is "at the edge": the optimum may lie outside the range."""


def at_edge(space: dict[str, tuple], params: dict, optimizer: str = "OPT") -> list[str]:
    """Where ``params`` sit at the edge of ``space``: one sentence per such hyperparameter,
    naming the value, the range, the ``--space`` that widens it by a decade on that side and
    the ``--keep-edge`` that keeps it.
    """
    found = []
    for name, spec in space.items():
        if spec[0] != "log" or not isinstance(params.get(name), (int, float)):
            continue
        low, high, value = spec[1], spec[2], params[name]
        position = (math.log(value) - math.log(low)) / (math.log(high) - math.log(low))
        if EDGE_FRACTION <= position <= 1 - EDGE_FRACTION:
            continue
        top = position > 0.5
        wider = (low, high * 10) if top else (low / 10, high)
        found.append(f"{name}={value:.3g} is in the {'top' if top else 'bottom'} "
                     f"{EDGE_FRACTION:.0%} of [{low:g}, {high:g}] (log scale); widen it "
                     f"(e.g. --space {optimizer}.{name}=log:{wider[0]:g}:{wider[1]:g}) and tune "
                     "again into a new --output, or state why it stays: --keep-edge "
                     f"{optimizer}=REASON")
    return found


def parse_keep_edge(items: list[str]) -> dict[str, str]:
    """``["bop=the threshold's range is the paper's"]`` -> ``{"bop": "the ..."}``."""
    out: dict[str, str] = {}
    for item in items or []:
        opt, sep, reason = item.partition("=")
        if not sep or not opt.strip() or not reason.strip():
            raise ValueError(f"--keep-edge {item!r} must look like OPTIMIZER=REASON, e.g. "
                             "--keep-edge 'bop=gamma 1e-2 is the largest the paper tried'")
        out[registry.canonical_name(opt.strip())] = reason.strip()
    return out


def check_entry(optimizer: str, name: str, spec: tuple) -> None:
    """Raise a ValueError naming what is wrong with one search-space entry."""
    valid = registry.hyperparameters(optimizer)  # also checks the optimizer's name
    where = f"search space entry {optimizer}.{name}"
    if name not in valid:
        raise ValueError(f"{where}: {optimizer!r} has no hyperparameter {name!r}; valid: "
                         f"{', '.join(sorted(valid))}")
    kind = spec[0] if spec else None
    if kind == "log":
        low, high = spec[1], spec[2]
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in (low, high)):
            raise ValueError(f"{where}: bounds must be numbers, received {low!r}, {high!r}")
        if not 0 < low < high:
            raise ValueError(f"{where}: log-uniform bounds need 0 < low < high, received "
                             f"low={low!r}, high={high!r}")
    elif kind == "choice":
        if len(spec) != 2 or len(spec[1]) < 1:
            raise ValueError(f"{where}: a choice needs at least one value")
    else:
        raise ValueError(f"{where}: kind must be 'log' or 'choice', received {kind!r}")


def parse_space(items: list[str]) -> dict[str, dict[str, tuple]]:
    """``["bop.gamma=log:1e-6:1e-3", "bamsprod.lr_decay=choice:sqrt,none"]`` -> entries."""
    out: dict[str, dict[str, tuple]] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        opt, dot, name = key.rpartition(".")
        kind, colon, rest = raw.partition(":")
        if not sep or not dot or not name or not colon:
            raise ValueError(f"--space {item!r} must look like OPTIMIZER.NAME=log:LOW:HIGH or "
                             "OPTIMIZER.NAME=choice:A,B (e.g. bop.gamma=log:1e-6:1e-3)")
        opt = registry.canonical_name(opt)
        if kind == "log":
            bounds = rest.split(":")
            try:
                low, high = (float(b) for b in bounds)
            except ValueError:
                raise ValueError(f"--space {item!r}: log needs two numbers, LOW:HIGH") from None
            spec: tuple = ("log", low, high)
        elif kind == "choice":
            spec = ("choice", tuple(registry.parse_value(v) for v in rest.split(",")))
        else:
            raise ValueError(f"--space {item!r}: kind must be log or choice, received {kind!r}")
        check_entry(opt, name, spec)
        out.setdefault(opt, {})[name] = spec
    return out


def suggest(trial, space: dict[str, tuple]) -> dict[str, Any]:
    params = {}
    for name, spec in space.items():
        if spec[0] == "log":
            params[name] = trial.suggest_float(name, spec[1], spec[2], log=True)
        else:
            params[name] = trial.suggest_categorical(name, list(spec[1]))
    return params


def quasi_random_points(space: dict[str, tuple], n: int, seed: int) -> list[dict[str, Any]]:
    """The first ``n`` points of a scrambled Sobol' sequence (``scipy.stats.qmc.Sobol``, the
    generator inside Optuna's ``QMCSampler``) seeded by ``seed``, one dimension per entry of
    ``space`` in its order: a log-uniform entry takes ``low * (high / low) ** u``, a choice
    the ``floor(u * len(values))``-th value."""
    import warnings

    from scipy.stats import qmc

    names = list(space)
    if not names:
        return [{} for _ in range(n)]
    with warnings.catch_warnings():  # n need not be a power of 2: the first n points
        warnings.simplefilter("ignore", UserWarning)
        unit = qmc.Sobol(len(names), scramble=True, seed=seed).random(n)
    points = []
    for row in unit:
        point: dict[str, Any] = {}
        for name, u in zip(names, row):
            spec = space[name]
            if spec[0] == "log":
                low, high = spec[1], spec[2]
                value = math.exp(math.log(low) + u * (math.log(high) - math.log(low)))
                point[name] = min(max(float(value), low), high)  # no rounding past an end
            else:
                values = list(spec[1])
                point[name] = values[min(int(u * len(values)), len(values) - 1)]
        points.append(point)
    return points
