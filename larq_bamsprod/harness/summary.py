"""Per-(optimizer, seed) histories aggregated into one row per optimizer."""

from __future__ import annotations

import math
import statistics


def mean_std(values: list[float]) -> tuple[float, float]:
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return float("nan"), float("nan")
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return statistics.fmean(values), std


def first_epoch_reaching(history: list[dict], target: float, key="test_accuracy"):
    """First epoch (1-based) whose ``key`` is at least ``target``, or None."""
    for row in history:
        if row[key] >= target:
            return row["epoch"]
    return None


def summarize(histories: dict[tuple[str, int], list[dict]], reference: str = "bop") -> dict:
    """Aggregate per-(optimizer, seed) histories into one row per optimizer.

    Per seed, ``reference`` (Bop) reaches its best test accuracy ``b`` first at epoch
    ``E_ref``; each optimizer's ``epochs_to_ref_best`` is the first epoch at which it
    reaches ``b`` and ``speedup_vs_ref = E_ref / epochs_to_ref_best`` (> 1: faster than
    Bop; missing when it never reaches ``b``). Means are over the seeds where defined.
    """
    optimizers = list(dict.fromkeys(opt for opt, _ in histories))
    seeds = sorted({seed for _, seed in histories})
    rows = []
    for opt in optimizers:
        finals, bests, top5, step_times, reach, speed, losses = [], [], [], [], [], [], []
        for seed in seeds:
            hist = histories.get((opt, seed))
            if not hist:
                continue
            finals.append(hist[-1]["test_accuracy"])
            bests.append(max(r["test_accuracy"] for r in hist))
            losses.append(hist[-1]["train_loss"])
            if "test_top5" in hist[-1]:
                top5.append(hist[-1]["test_top5"])
            times = [r["step_seconds_median"] for r in hist if r.get("step_seconds_median")]
            if times:
                step_times.append(statistics.median(times))
            ref = histories.get((reference, seed))
            if ref:
                ref_best = max(r["test_accuracy"] for r in ref)
                ref_epoch = first_epoch_reaching(ref, ref_best)
                epoch = first_epoch_reaching(hist, ref_best)
                reach.append(epoch)
                if epoch is not None:
                    speed.append(ref_epoch / epoch)
        row = {"optimizer": opt, "seeds": len(finals)}
        for key, values in (
            ("final_test_accuracy", finals),
            ("best_test_accuracy", bests),
            ("final_train_loss", losses),
            ("final_test_top5", top5),
        ):
            if values:
                row[key + "_mean"], row[key + "_std"] = mean_std(values)
        row["step_ms_median"] = 1000 * statistics.median(step_times) if step_times else None
        if reach:
            row["epochs_to_ref_best"] = reach
            row["ref_best_reached"] = f"{sum(e is not None for e in reach)}/{len(reach)}"
            row["speedup_vs_ref_mean"] = statistics.fmean(speed) if speed else None
        rows.append(row)
    return {"reference": reference, "seeds": seeds, "rows": rows}
