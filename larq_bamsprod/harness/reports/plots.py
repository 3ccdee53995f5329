"""The comparison's curves: validation accuracy (perplexity, for a language model) against
steps and against training seconds, training loss against steps; mean over seeds with the
min-max band over seeds."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

# Seven optimizers on one axis: colour, marker and line style all differ, so lines that
# overlap stay apart in print and for colour-blind readers.
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "h", "<")
_STYLES = ("-", "--", "-.", ":")


def _curves(runs: list[list[dict]], key: str, x_key: str):
    length = min(len(h) for h in runs)
    x = np.array([[r[x_key] for r in h[:length]] for h in runs], dtype=float).mean(axis=0)
    y = np.array([[r[key] for r in h[:length]] for h in runs], dtype=float)
    return x, y.mean(axis=0), y.min(axis=0), y.max(axis=0)


def plot_curves(histories: dict[tuple[str, int], list[dict]], path: str | os.PathLike,
                title: str = "", target: float | None = None, metric=None) -> None:
    """Write the three panels to ``path`` (PNG); ``histories`` are ``run_one``'s rows.

    ``metric`` (:class:`larq_bamsprod.harness.metrics.Metric`) is the validation score
    plotted. Defaults to accuracy.
    """
    from larq_bamsprod.harness import metrics

    metric = metric or metrics.ACCURACY
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    optimizers = list(dict.fromkeys(opt for opt, _ in histories))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.8))
    score = metric.val_key
    score_label = ("validation top-1 accuracy" if metric is metrics.ACCURACY
                   else f"validation {metric.name} (lower is better)")
    panels = (
        (axes[0], score, "step", score_label, "training step"),
        (axes[1], score, "train_seconds", score_label,
         "training time (s, evaluation excluded)"),
        (axes[2], "train_loss", "step", "training loss (mean since previous point)",
         "training step"),
    )
    losses, scores = [], []
    colors = plt.get_cmap("tab10").colors
    n_seeds = max((sum(1 for o, _ in histories if o == opt) for opt in optimizers), default=1)
    for i, opt in enumerate(optimizers):
        runs = [h for (o, _), h in histories.items() if o == opt and h]
        if not runs:
            continue
        style = dict(color=colors[i % len(colors)], marker=_MARKERS[i % len(_MARKERS)],
                     linestyle=_STYLES[i % len(_STYLES)], markersize=4,
                     linewidth=2.2 if opt.startswith("bamsprod") else 1.4, markevery=1)
        for ax, key, x_key, _, _ in panels:
            x, mean, low, high = _curves(runs, key, x_key)
            ax.plot(x, mean, label=opt, **style)
            if len(runs) > 1:
                ax.fill_between(x, low, high, color=style["color"], alpha=0.12, linewidth=0)
            if key == "train_loss":
                losses.extend(v for v in np.concatenate([low, high]) if np.isfinite(v))
            elif key == score:
                scores.extend(v for v in np.concatenate([low, high]) if np.isfinite(v))
    for ax, key, _, ylabel, xlabel in panels:
        ax.set_ylabel(ylabel)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
        if key == score and target is not None:
            ax.axhline(target, color="black", linewidth=0.8, linestyle=(0, (4, 4)))
    # Log scale only when the losses span more than a decade; otherwise a log axis shows a
    # single "10^0" tick and hides the differences.
    positive = [v for v in losses if v > 0]
    if positive and max(positive) / min(positive) > 10:
        axes[2].set_yscale("log")
    positive = [v for v in scores if v > 0]  # perplexities span decades early in training
    if not metric.percent and positive and max(positive) / min(positive) > 10:
        axes[0].set_yscale("log")
        axes[1].set_yscale("log")
    handles, labels = axes[0].get_legend_handles_labels()
    if target is not None:
        handles.append(plt.Line2D([], [], color="black", linewidth=0.8,
                                  linestyle=(0, (4, 4))))
        labels.append(f"target {100 * target:.1f}%" if metric.percent
                      else f"target {metric.name} {target:.1f}")
    spread = "; bands: min-max over seeds" if n_seeds > 1 else ""
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 8), fontsize=9,
               frameon=False)
    fig.suptitle((title + "  " if title else "")
                 + f"(mean over {n_seeds} seed{'s' if n_seeds > 1 else ''}{spread})")
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)
