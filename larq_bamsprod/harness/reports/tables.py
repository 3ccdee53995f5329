"""A comparison's report: the Markdown and CSV tables and the curves plot."""

from __future__ import annotations

import csv
import io
import math

from larq_bamsprod.harness import metrics
from larq_bamsprod.harness.experiments.config import CompareConfig
from larq_bamsprod.harness.reports import stats
from larq_bamsprod.harness.reports.layout import layout_text
from larq_bamsprod.harness.words import plural


def _fmt(mean, std, pct=True):
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "-"
    scale = 100 if pct else 1
    return f"{mean * scale:.2f} ± {std * scale:.2f}"


def interval_text(iv: dict | None, scale: float = 100, digits: int = 2) -> str:
    """``mean [low, high]`` of a paired difference (times ``scale``), signed; "-" if none."""
    if not iv or iv.get("mean") is None:
        return "-"
    text = f"{iv['mean'] * scale:+.{digits}f}"
    if iv.get("low") is not None:
        text += f" [{iv['low'] * scale:+.{digits}f}, {iv['high'] * scale:+.{digits}f}]"
    return text


def p_text(iv: dict | None) -> str:
    """``t / sign-flip`` p-values of a paired difference; "-" where there is none."""
    if not iv or (iv.get("p_t") is None and iv.get("p_sign_flip") is None):
        return "-"
    return " / ".join("-" if iv.get(k) is None else f"{iv[k]:.3g}"
                      for k in ("p_t", "p_sign_flip"))


def _speed(value) -> str:
    if value is None:
        return "-"
    return "inf" if math.isinf(value) else f"{value:.2f}x"


def ratio_text(iv: dict | None) -> str:
    """``mean x [low, high] (n=N)`` of a speed-up interval; "-" if none."""
    if not iv or iv.get("mean") is None:
        return "-"
    text = f"{iv['mean']:.2f}x"
    if iv.get("low") is not None:
        text += f" [{iv['low']:.2f}, {iv['high']:.2f}]"
    return text + f" (n={iv['n']})"


def results_markdown(summary: dict, cfg: CompareConfig | None = None) -> str:
    rows = summary["rows"]
    ref = summary["reference"]
    metric = metrics.metric_named(summary.get("metric", "accuracy"))
    name, pct = metric.name, metric.percent
    has_top5 = any("final_test_top5_mean" in r for r in rows)
    if pct:
        head = ["optimizer", "seeds", "final val top-1 (%)", "final test top-1 (%)",
                "test top-1 at best val (%)"]
        diff_head = f"test diff vs {ref} (pp) [95% CI]"
    else:
        head = ["optimizer", "seeds", f"final val {name}", f"final test {name}",
                f"test {name} at best val"]
        diff_head = f"test {name} diff vs {ref} [95% CI] (lower is better)"
    if has_top5:
        head.append("final test top-5 (%)")
    head += [diff_head, "p (t / sign-flip)", "verdict", "comparison", "steps to target",
             f"speed-up vs {ref} (median)", f"speed-up vs {ref} (geo. mean) [95% CI]",
             "speed verdict", f"steps diff vs {ref} [95% CI]",
             "final train loss", "train s", "eval s", "ms / step"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [
            r["optimizer"],
            str(r["seeds"]),
            _fmt(r.get(f"final_val_{name}_mean"), r.get(f"final_val_{name}_std"), pct),
            _fmt(r.get(f"final_test_{name}_mean"), r.get(f"final_test_{name}_std"), pct),
            _fmt(r.get(f"best_val_test_{name}_mean"), r.get(f"best_val_test_{name}_std"), pct),
        ]
        if has_top5:
            cells.append(_fmt(r.get("final_test_top5_mean"), r.get("final_test_top5_std")))
        reach = r.get("steps_to_target")
        diff_steps = r.get("diff_steps_to_target")
        cells += [
            "-" if r["optimizer"] == ref else interval_text(r.get(f"diff_final_test_{name}"),
                                                        scale=100 if pct else 1),
            "-" if r["optimizer"] == ref else p_text(r.get(f"diff_final_test_{name}")),
            r.get("verdict", "-"),
            r.get("comparison", "-"),
            "-" if reach is None else ", ".join("never" if e is None else str(e) for e in reach),
            _speed(r.get("speedup_median")),
            "-" if r["optimizer"] == ref else ratio_text(r.get("speedup_interval")),
            "reference" if r["optimizer"] == ref else r.get("speed_verdict", "-"),
            "-" if r["optimizer"] == ref or not diff_steps or diff_steps["n"] == 0
            else interval_text(diff_steps, scale=1, digits=0) + f" (n={diff_steps['n']})",
            _fmt(r.get("final_train_loss_mean"), r.get("final_train_loss_std"), pct=False),
            "-" if r.get("train_seconds_mean") is None else f"{r['train_seconds_mean']:.1f}",
            "-" if r.get("eval_seconds_mean") is None else f"{r['eval_seconds_mean']:.1f}",
            "-" if r["step_ms_median"] is None else f"{r['step_ms_median']:.1f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    if summary.get("targets"):
        text += "\n" + ladder_markdown(summary, metric)
    if summary.get("layout"):
        text += "\n" + layout_text(summary["layout"],
                                   list(summary["layout"].get("trained_by", {}).values())) + "\n"
    if summary.get("target") is not None:
        text += "\n" + stats.rules_text(ref, summary["target"], metric,
                                        summary.get("target_rule"),
                                        summary.get("targets")) + "\n"
    if cfg is not None:
        workload = cfg.workload
        # The folder's seeds: a rerun may name only some (compare._with_earlier_runs).
        seeds = summary.get("config", {}).get("seeds", cfg.seeds)
        text = (
            _workload_text(workload)
            + f", {cfg.epochs} {plural(cfg.epochs, 'epoch')}, batch "
            f"{workload.batch_size}, seeds {seeds}, schedule `{cfg.schedule}`"
            + (f", train subset {workload.train_subset}" if workload.train_subset else "")
            + (f", {cfg.steps_per_epoch} steps/epoch" if cfg.steps_per_epoch else "")
            + (f", test subset {workload.test_subset}" if workload.test_subset else "")
            + (f"; {summary['train_size']} training and {summary['validation_size']} "
               + ("held-out validation examples" if pct else
                  "validation windows (the corpus' own validation split)")
               if summary.get("validation_size") else "")
            + ". Mean ± std over seeds; 'steps to target' lists one entry per seed; "
            "train s / eval s: seconds spent training / evaluating on validation, mean "
            "per run.\n\n"
            + "".join(f"Note: {note}.\n\n" for note in summary.get("notes", []))
            + text
        )
    return text


def ladder_markdown(summary: dict, metric: metrics.Metric = metrics.ACCURACY) -> str:
    """Every optimizer's median steps and training seconds to each level of the ladder, with
    how many seeds reached it (a miss counts as infinite in the median)."""
    targets = summary["targets"]
    head = ["optimizer"] + [f"to {stats.score_text(t, metric)}" for t in targets]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in summary["rows"]:
        cells = [r["optimizer"]]
        for steps, seconds in zip(r["steps_to_targets"], r["seconds_to_targets"]):
            reached = f"({sum(s is not None for s in steps)}/{len(steps)})"
            median = stats.median_steps(steps)
            cells.append(f"never {reached}" if math.isinf(median) else
                         f"{median:.0f} / {stats.median_steps(seconds):.1f} s {reached}")
        lines.append("| " + " | ".join(cells) + " |")
    return ("Median over seeds of the steps / training seconds to each level of the ladder "
            "(a miss counts as infinite: 'never' once half the seeds miss), with the seeds "
            "that reached it:\n\n" + "\n".join(lines) + "\n")


def _workload_text(workload) -> str:
    if not workload.builtin:
        return f"Workload `{workload.name}`"
    args = ", ".join(f"{k}={v!r}" for k, v in workload.model_args.items())
    return (f"Model `{workload.model_name}`" + (f"({args})" if args else "")
            + f" on `{workload.dataset}`")


# Row entries with one value per seed (summary.summarize), in the order of the seeds.
_PER_SEED = ("steps_to_target", "seconds_to_target", "speedup_per_seed")


def results_csv(summary: dict) -> str:
    """One row per optimizer, one plain value per cell: a nested entry is spread over
    columns named by its path (``diff_final_test_accuracy.low``; ``steps_to_target.seed0``
    for a per-seed list when the optimizer ran every seed of ``summary["seeds"]``, else
    ``steps_to_target.0``, ...)."""
    rows = []
    for row in summary["rows"]:
        flat = {}
        for key, value in row.items():
            seeds = summary.get("seeds", [])
            per_seed = key in _PER_SEED and len(value or []) == len(seeds)
            flat.update(_flat(value, key, [f"seed{s}" for s in seeds] if per_seed else None))
        rows.append(flat)
    keys = ["optimizer"] + sorted({k for row in rows for k in row} - {"optimizer"})
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys)
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def _flat(value, prefix: str, labels: list[str] | None = None) -> dict:
    """``value`` under ``prefix`` as plain cells: ``{"b": 1}`` -> ``{"prefix.b": 1}``,
    ``[2, 3]`` -> ``{"prefix.0": 2, "prefix.1": 3}`` (``labels`` instead of 0, 1, ...)."""
    if isinstance(value, dict):
        items = [(str(k), v) for k, v in value.items()]
    elif isinstance(value, (list, tuple)):
        items = list(zip(labels or [str(i) for i in range(len(value))], value))
    else:
        return {prefix: value}
    flat = {}
    for key, item in items:
        flat.update(_flat(item, f"{prefix}.{key}"))
    return flat
