"""Per-(optimizer, seed) results aggregated into one row per optimizer.

The rules (time to target, speed-up, paired intervals, verdicts) are in
:mod:`larq_bamsprod.harness.reports.stats`.
"""

from __future__ import annotations

import math
import statistics

from larq_bamsprod.harness import metrics
from larq_bamsprod.harness.reports import stats


def mean_std(values: list[float]) -> tuple[float, float]:
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return float("nan"), float("nan")
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return statistics.fmean(values), std


GIVEN = "given in advance (the workload's or --target)"
WORST_MEAN = "the worst of the compared optimizers' mean final validation scores"


def default_target(results: dict[tuple[str, int], dict],
                   metric: metrics.Metric = metrics.ACCURACY) -> float | None:
    """The worst of the compared optimizers' mean final validation scores: the lowest mean
    accuracy (the highest mean perplexity, when lower is better).

    Symmetric in the optimizers: no competitor owns it (the reference's own worst seed, the
    earlier rule, let the reference reach it on every seed, late, by construction), and it
    does not depend on which optimizer is the reference or on their order.
    """
    means = [statistics.fmean(v) for v in _final_scores(results, metric).values()]
    if not means:
        return None
    return min(means) if metric.higher_is_better else max(means)


def reference_target(results: dict[tuple[str, int], dict], reference: str,
                     metric: metrics.Metric = metrics.ACCURACY) -> float | None:
    """The earlier rule, kept for a sensitivity row: the worst of ``reference``'s final
    validation scores over its seeds (so the reference reaches it on every seed)."""
    finals = _final_scores(results, metric).get(reference)
    if not finals:
        return None
    return min(finals) if metric.higher_is_better else max(finals)


def _final_scores(results, metric) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for (opt, _), r in results.items():
        out.setdefault(opt, []).append(r["final"][metric.val_key])
    return out


def ladder(results: dict[tuple[str, int], dict], target: float,
           metric: metrics.Metric = metrics.ACCURACY) -> list[float]:
    """:data:`stats.LADDER`'s targets from the median first-evaluation score over every run
    (every optimizer and seed) to ``target``."""
    firsts = [r["history"][0][metric.val_key] for r in results.values() if r["history"]]
    start = statistics.median(firsts) if firsts else target
    return stats.target_ladder(start, target)


def summarize(results: dict[tuple[str, int], dict], reference: str = "bop",
              target: float | None = None, metric: metrics.Metric = metrics.ACCURACY) -> dict:
    """Aggregate per-(optimizer, seed) results (``training.run_one``'s) per optimizer.

    ``target`` defaults to :func:`default_target`; ``targets`` is its ladder
    (:func:`ladder`), and each row's ``steps_to_targets`` / ``seconds_to_targets`` hold, per
    level, the per-seed steps / seconds (None: never reached). Every difference is paired by
    seed against ``reference``. With ``metric=metrics.PERPLEXITY`` every ``accuracy`` key reads
    ``perplexity``, the target is reached at or below it, and "better" is below 0.
    """
    name, higher = metric.name, metric.higher_is_better
    rule = GIVEN if target is not None else WORST_MEAN
    if target is None:
        target = default_target(results, metric)
    targets = ladder(results, target, metric) if target is not None else []
    optimizers = list(dict.fromkeys(opt for opt, _ in results))
    seeds = sorted({seed for _, seed in results})

    def per_seed(opt, get):
        return {s: get(results[(opt, s)]) for s in seeds if (opt, s) in results}

    def to_target(opt):
        if target is None:
            return {}
        return per_seed(opt, lambda r: stats.time_to_target(r["history"], target,
                                                            metric.val_key, higher))

    ref_test = per_seed(reference, lambda r: r["final"][metric.test_key])
    ref_val = per_seed(reference, lambda r: r["final"][metric.val_key])
    ref_reach = to_target(reference)
    rows = []
    for opt in optimizers:
        test = per_seed(opt, lambda r: r["final"][metric.test_key])
        val = per_seed(opt, lambda r: r["final"][metric.val_key])
        row = {"optimizer": opt, "seeds": len(test)}
        for key, values in (
            (f"final_val_{name}", val),
            (f"final_test_{name}", test),
            (f"best_val_test_{name}", per_seed(opt, lambda r: r["best"][metric.test_key])),
            ("final_train_loss", per_seed(opt, lambda r: r["history"][-1]["train_loss"])),
            ("final_test_top5", per_seed(opt, lambda r: r["final"].get("test_top5"))),
            ("train_seconds", per_seed(opt, lambda r: r["train_seconds"])),
            ("eval_seconds", per_seed(opt, lambda r: r["eval_seconds"])),
        ):
            if any(v is not None for v in values.values()):
                row[key + "_mean"], row[key + "_std"] = mean_std(list(values.values()))
        step_times = [r["step_seconds_median"] for (o, _), res in results.items() if o == opt
                      for r in res["history"] if r.get("step_seconds_median")]
        row["step_ms_median"] = 1000 * statistics.median(step_times) if step_times else None
        if targets:
            ladder_reach = [per_seed(opt, lambda r, t=t: stats.time_to_target(
                r["history"], t, metric.val_key, higher)) for t in targets]
            row["steps_to_targets"] = [[v[0] for _, v in sorted(level.items())]
                                       for level in ladder_reach]
            row["seconds_to_targets"] = [[v[1] for _, v in sorted(level.items())]
                                         for level in ladder_reach]
        reach = to_target(opt)
        if reach:
            steps = {s: v[0] for s, v in reach.items()}
            ref_steps = {s: v[0] for s, v in ref_reach.items()}
            row["steps_to_target"] = [steps[s] for s in sorted(steps)]
            row["seconds_to_target"] = [reach[s][1] for s in sorted(reach)]
            row["target_reached"] = f"{sum(v is not None for v in steps.values())}/{len(steps)}"
            speed = [stats.speedup(ref_steps.get(s), steps[s]) for s in sorted(steps)
                     if s in ref_steps]
            row["speedup_per_seed"] = speed
            row["speedup_median"] = stats.median_speedup(speed)
            row["diff_steps_to_target"] = stats.paired_test(
                stats.paired_differences(steps, ref_steps))
            row["speedup_interval"] = stats.ratio_interval(speed)
            if opt != reference:
                row["speed_verdict"] = stats.speed_verdict(
                    row["speedup_interval"], sum(v is not None for v in steps.values()),
                    sum(ref_steps.get(s) is not None for s in steps), len(steps))
        row[f"diff_final_test_{name}"] = stats.paired_test(
            stats.paired_differences(test, ref_test))
        row[f"diff_final_val_{name}"] = stats.paired_test(
            stats.paired_differences(val, ref_val))
        row["verdict"] = ("reference" if opt == reference
                          else stats.verdict(row[f"diff_final_test_{name}"], higher))
        row["comparison"] = ("reference" if opt == reference else "primary"
                             if opt in stats.PRIMARY_FAMILY else "secondary")
        rows.append(row)
    out = {"reference": reference, "target": target, "target_rule": rule,
           "targets": targets, "seeds": seeds, "rows": rows}
    if metric is not metrics.ACCURACY:  # classification summaries keep their original keys
        out["metric"] = name
    return out
