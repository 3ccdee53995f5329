"""A comparison's report: the Markdown and CSV tables and the curves plot."""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path

import numpy as np

from larq_bamsprod.harness.config import CompareConfig


def _fmt(mean, std, pct=True):
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "-"
    scale = 100 if pct else 1
    return f"{mean * scale:.2f} ± {std * scale:.2f}"


def results_markdown(summary: dict, cfg: CompareConfig | None = None) -> str:
    rows = summary["rows"]
    has_top5 = any("final_test_top5_mean" in r for r in rows)
    head = ["optimizer", "seeds", "final test top-1 (%)", "best test top-1 (%)"]
    if has_top5:
        head.append("final test top-5 (%)")
    head += ["final train loss", f"epoch reaching {summary['reference']}'s best",
             f"speed-up vs {summary['reference']}", "ms / step"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [
            r["optimizer"],
            str(r["seeds"]),
            _fmt(r.get("final_test_accuracy_mean"), r.get("final_test_accuracy_std")),
            _fmt(r.get("best_test_accuracy_mean"), r.get("best_test_accuracy_std")),
        ]
        if has_top5:
            cells.append(_fmt(r.get("final_test_top5_mean"), r.get("final_test_top5_std")))
        reach = r.get("epochs_to_ref_best")
        speed = r.get("speedup_vs_ref_mean")
        cells += [
            _fmt(r.get("final_train_loss_mean"), r.get("final_train_loss_std"), pct=False),
            "-" if reach is None else ", ".join("never" if e is None else str(e) for e in reach),
            "-" if speed is None else f"{speed:.2f}x",
            "-" if r["step_ms_median"] is None else f"{r['step_ms_median']:.1f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    if cfg is not None:
        text = (
            f"Model `{cfg.model}`"
            + ("(" + ", ".join(f"{k}={v!r}" for k, v in cfg.model_args.items()) + ")"
               if cfg.model_args else "")
            + f" on `{cfg.dataset}`, {cfg.epochs} epochs, batch "
            f"{cfg.batch_size}, seeds {cfg.seeds}, schedule `{cfg.schedule}`"
            + (f", train subset {cfg.train_subset}" if cfg.train_subset else "")
            + (f", {cfg.steps_per_epoch} steps/epoch" if cfg.steps_per_epoch else "")
            + (f", test subset {cfg.test_subset}" if cfg.test_subset else "")
            + ". Mean ± std over seeds; 'epoch reaching' lists one entry per seed.\n\n"
            + "".join(f"Note: {note}.\n\n" for note in summary.get("notes", []))
            + text
        )
    return text


def results_csv(summary: dict) -> str:
    keys = sorted({k for r in summary["rows"] for k in r})
    keys.remove("optimizer")
    keys = ["optimizer"] + keys
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys)
    writer.writeheader()
    for row in summary["rows"]:
        writer.writerow({k: json.dumps(v) if isinstance(v, list) else v for k, v in row.items()})
    return buf.getvalue()


def plot_curves(histories: dict[tuple[str, int], list[dict]], path: str | os.PathLike,
                title: str = "") -> None:
    """Training loss and test accuracy per epoch (mean, shaded min-max over seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    optimizers = list(dict.fromkeys(opt for opt, _ in histories))
    fig, axes = plt.subplots(2, 1, figsize=(7, 7), sharex=True)
    for opt in optimizers:
        runs = [h for (o, _), h in histories.items() if o == opt and h]
        if not runs:
            continue
        length = min(len(h) for h in runs)
        epochs = np.arange(1, length + 1)
        for ax, key in zip(axes, ("train_loss", "test_accuracy")):
            values = np.array([[r[key] for r in h[:length]] for h in runs])
            mean = values.mean(axis=0)
            (line,) = ax.plot(epochs, mean, marker="o", ms=3, label=opt,
                              lw=2.5 if opt == "bamsprod" else 1.5)
            if len(runs) > 1:
                ax.fill_between(epochs, values.min(0), values.max(0),
                                color=line.get_color(), alpha=0.15)
    axes[0].set_ylabel("training loss")
    axes[0].set_yscale("log")
    axes[1].set_ylabel("test top-1 accuracy")
    axes[1].set_xlabel("epoch")
    axes[1].xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    axes[0].legend(ncol=2, fontsize=8)
    for ax in axes:
        ax.grid(alpha=0.3)
    if title:
        axes[0].set_title(title)
    fig.tight_layout()
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, path)
