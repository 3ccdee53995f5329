"""Time-to-target, speed-ups, paired intervals over seeds and the verdict rule.

Everything here is a pure function of per-seed numbers, so the tests check it against
values worked out by hand.

The rules (also written into every report by :func:`rules_text`):

* **Target.** A validation score fixed in advance if the workload records one
  (``Workload.target``, ``--target``), as AlgoPerf fixes its targets from separate baseline
  runs; else the worst of the compared optimizers' mean final validation scores (the lowest
  mean accuracy, the highest mean perplexity). The rule is symmetric in the optimizers:
  neither the order of ``--optimizers`` nor ``--reference`` changes it (the reference only
  says what the differences are paired against).
* **Ladder of targets.** Beside the target, :data:`LADDER` levels from early to late
  training: ``start + f * (target - start)`` for ``f`` in 0.25, 0.5, 0.75, 1, where ``start``
  is the median over every run of the first evaluation's score; the last level is the
  target itself. So no single level decides the speed comparison.
* **Time to target.** The first evaluation point whose validation accuracy is at least the
  target; its step and its cumulative training seconds (evaluation time excluded). A run
  that never gets there is "never": a miss, kept in the speed statistics (censored; the
  median steps count it as infinite, as AlgoPerf does), never dropped.
* **Speed-up** of an optimizer on one seed: reference steps / optimizer steps to the target.
  If only the optimizer never gets there: 0; if only the reference never does: infinity;
  if neither does, the seed has no speed-up. Aggregate: the median over seeds (0 and
  infinity are ordinary values for a median), with the per-seed values listed.
* **Paired differences.** For each seed, optimizer minus reference (same initial weights,
  same batches), then the mean over seeds with a 95% Student-t interval
  ``mean +- t(0.975, n-1) * sd / sqrt(n)``. Steps to target: over the seeds where both got
  there (the count is given).
* **Speed-up interval.** Over the seeds where both reached the target: the geometric mean
  of the per-seed speed-ups with the 95% Student-t interval of the mean log speed-up,
  exponentiated (``exp(mean(log r) +- t(0.975, n-1) * sd(log r) / sqrt(n))``; ratios are
  compared on a log scale, so 2x faster and 2x slower are symmetric).
* **Verdict** on the final test accuracy: "better" if the whole 95% interval of the paired
  difference is above 0, "worse" if it is below 0, else "no difference detected"; with one
  seed, or with no spread over seeds (a zero-width interval), there is no verdict. "No
  difference detected" is never "a tie": no equivalence margin is set in advance.
* **p-values** beside every interval: the paired t test's (two-sided, the same test as the
  interval: p < 0.05 exactly when the interval excludes 0) and the exact sign-flip
  (permutation) test's, which assumes no normality: every one of the ``2^n`` ways to flip
  the signs of the ``n`` paired differences, p = the share whose mean is at least as far from
  0 as the observed one. Its smallest value is ``2 / 2^n`` (0.0625 for 5 seeds, 0.25 for 3),
  so with 3 seeds a verdict rests on the t test's normality alone.
* **Families.** The primary family is BAMSProd against the reference, and BAMSProd in Bop's
  layout (``bamsprod@case``) against it where it is compared, one comparison per optimizer
  and graph of an evidence set; Holm's step-down correction (:func:`holm`) is applied within it
  and its verdict reads the corrected t p-value (< 0.05). Every other comparison is
  secondary: uncorrected, labelled so.
* **Speed verdict**: "faster" if the whole speed-up interval is above 1, "slower" if it is
  below 1, else "no difference detected", when both reached the target on every seed;
  "slower (never reaches)" / "faster (reference never reaches)" when one of them reached it
  on every seed and the other on none; otherwise (the target missed on some seeds only) no
  speed verdict, and the reached counts say why.

For a score where lower is better (perplexity, :mod:`larq_bamsprod.harness.metrics`) the
comparisons turn round: the target is reached at the first validation perplexity *at most*
the target, and "better" means the whole interval of optimizer minus reference is *below* 0.
"""

from __future__ import annotations

import math
import statistics

# Two-sided 95% critical values of Student's t, t(0.975, df), df = 1..30.
_T_975 = (
    12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281,
    2.2010, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860,
    2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423,
)
_Z_975 = 1.959964

NEVER = None
"""Steps (or seconds) to target of a run that never reaches it."""

SIGN_FLIP_MAX_N = 16
"""The most paired differences the exact sign-flip test enumerates (2^16 assignments)."""

PRIMARY = "bamsprod"
"""The optimizer of the primary family: it against the reference, on every graph."""

PRIMARY_FAMILY = (PRIMARY, "bamsprod@case")
"""The optimizers of the primary family, each against the reference on every graph where it
is compared: BAMSProd, and BAMSProd in Bop's layout (BAMSProd on the binary weights, Adam on
the rest), which isolates the binary-weight optimizer the paper's claim is about."""

LADDER = (0.25, 0.5, 0.75, 1.0)
"""Fractions of the way from the median first-evaluation score to the target."""


def t_critical(df: int) -> float:
    """``t(0.975, df)``: a table up to 30 degrees of freedom, then Cornish-Fisher's expansion
    (within 1e-4 of the exact value for df > 30)."""
    if df < 1:
        raise ValueError(f"df must be >= 1, received df={df}")
    if df <= len(_T_975):
        return _T_975[df - 1]
    z = _Z_975
    return (z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
            + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3))


def mean_interval(values: list[float]) -> dict:
    """Mean of ``values`` with its 95% Student-t interval (``low``/``high`` None if n < 2)."""
    values = [v for v in values if v is not None and not math.isnan(v)]
    n = len(values)
    if n == 0:
        return {"n": 0, "mean": None, "low": None, "high": None}
    mean = statistics.fmean(values)
    if n < 2:
        return {"n": 1, "mean": mean, "low": None, "high": None}
    half = t_critical(n - 1) * statistics.stdev(values) / math.sqrt(n)
    return {"n": n, "mean": mean, "low": mean - half, "high": mean + half}


def first_reaching(rows: list[dict], target: float, key: str = "val_accuracy",
                   higher_is_better: bool = True) -> dict | None:
    """The first row whose ``key`` is at least ``target`` (at most, if lower is better), or
    None (never)."""
    for row in rows:
        if (row[key] >= target) if higher_is_better else (row[key] <= target):
            return row
    return None


def time_to_target(rows: list[dict], target: float, key: str = "val_accuracy",
                   higher_is_better: bool = True) -> tuple[int | None, float | None]:
    """``(step, training seconds)`` of the first evaluation at or above ``target`` (at or
    below, if lower is better)."""
    row = first_reaching(rows, target, key, higher_is_better)
    if row is None:
        return NEVER, NEVER
    return row["step"], row["train_seconds"]


def target_ladder(start: float, target: float,
                  fractions: tuple[float, ...] = LADDER) -> list[float]:
    """``start + f * (target - start)`` for each ``f`` of ``fractions``: the ladder of targets
    from ``start`` (the median first-evaluation score) to ``target``."""
    return [start + f * (target - start) for f in fractions]


def median_steps(steps: list[int | None]) -> float:
    """Median over seeds of steps to a target, a miss (None) counting as infinity."""
    values = [math.inf if s is None else float(s) for s in steps]
    return statistics.median(values) if values else math.inf


def speedup(reference_steps: int | None, steps: int | None) -> float | None:
    """Reference steps over optimizer steps to the target; 0 / inf / None for "never"."""
    if steps is None and reference_steps is None:
        return None
    if steps is None:
        return 0.0
    if reference_steps is None:
        return math.inf
    return reference_steps / steps


def median_speedup(values: list[float | None]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def ratio_interval(ratios: list[float]) -> dict:
    """Geometric mean of positive finite ``ratios`` with the 95% t interval of the mean log."""
    logs = [math.log(r) for r in ratios if r is not None and 0 < r < math.inf]
    interval = paired_test(logs)  # p-values of the mean log ratio against 0 (ratio 1)
    return {k: (math.exp(v) if k in ("mean", "low", "high") and v is not None else v)
            for k, v in interval.items()}


def speed_verdict(interval: dict, reached: int, reference_reached: int, seeds: int) -> str:
    """The speed verdict (module docstring) from :func:`ratio_interval` and reach counts."""
    if reached == seeds and reference_reached == 0 and seeds > 0:
        return "faster (reference never reaches)"
    if reached == 0 and reference_reached == seeds and seeds > 0:
        return "slower (never reaches)"
    if reached < seeds or reference_reached < seeds:
        return "no verdict (target missed on some seeds)"
    if interval["n"] < 2 or interval["low"] is None:
        return "no verdict (1 seed)" if interval["n"] == 1 else "-"
    if interval["low"] == interval["high"]:
        return "no verdict (no spread over seeds)"
    if interval["low"] > 1:
        return "faster"
    if interval["high"] < 1:
        return "slower"
    return "no difference detected"


def t_two_sided_p(t: float, df: int) -> float:
    """Two-sided p-value of Student's t with integer ``df``: ``P(|T| >= |t|)``.

    Closed form for integer degrees of freedom (Abramowitz and Stegun 26.7.3-4), with
    ``theta = atan(|t| / sqrt(df))``: odd ``df``, ``A = 2/pi (theta + sin theta (cos theta +
    2/3 cos^3 theta + ...))``; even ``df``, ``A = sin theta (1 + 1/2 cos^2 theta + 1*3/(2*4)
    cos^4 theta + ...)``, each series to the power ``df - 2``; ``p = 1 - A``.
    """
    if df < 1:
        raise ValueError(f"df must be >= 1, received df={df}")
    theta = math.atan(abs(t) / math.sqrt(df))
    c2 = math.cos(theta) ** 2
    if df % 2:
        term = total = math.cos(theta)
        for k in range(1, (df - 1) // 2):
            term *= c2 * 2 * k / (2 * k + 1)
            total += term
        inside = (2 / math.pi) * (theta + (math.sin(theta) * total if df > 1 else 0.0))
    else:
        term = total = 1.0
        for k in range(1, df // 2):
            term *= c2 * (2 * k - 1) / (2 * k)
            total += term
        inside = math.sin(theta) * total
    return min(1.0, max(0.0, 1.0 - inside))


def t_test_p(differences: list[float]) -> float | None:
    """Two-sided paired t test of mean 0 over ``differences``; None if n < 2 or they do not
    vary."""
    n = len(differences)
    if n < 2:
        return None
    sd = statistics.stdev(differences)
    if sd == 0:
        return None
    return t_two_sided_p(statistics.fmean(differences) / (sd / math.sqrt(n)), n - 1)


def sign_flip_p(differences: list[float]) -> float | None:
    """Exact two-sided sign-flip (paired permutation) p-value: the share of the ``2^n`` sign
    assignments whose mean is at least as far from 0 as the observed mean. None if n = 0
    or n > :data:`SIGN_FLIP_MAX_N` (the enumeration doubles with every seed)."""
    n = len(differences)
    if n == 0 or n > SIGN_FLIP_MAX_N:
        return None
    observed = abs(sum(differences))
    tolerance = 1e-12 * max(1.0, sum(abs(d) for d in differences))
    extreme = sum(abs(sum(d if (mask >> i) & 1 else -d for i, d in enumerate(differences)))
                  >= observed - tolerance for mask in range(2 ** n))
    return extreme / 2 ** n


def holm(p_values: list[float | None]) -> list[float | None]:
    """Holm's step-down adjusted p-values, in the order given (None stays None and does not
    count in the family): sorted ascending, the i-th (from 0) of ``m`` becomes
    ``max over j <= i of min(1, (m - j) p_(j))``."""
    order = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    m = len(order)
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    for j, (p, i) in enumerate(order):
        running = max(running, min(1.0, (m - j) * p))
        adjusted[i] = running
    return adjusted


def paired_test(differences: list[float]) -> dict:
    """:func:`mean_interval` of paired ``differences`` with the t test's and the exact
    sign-flip test's two-sided p-values (``p_t``, ``p_sign_flip``)."""
    return {**mean_interval(differences), "p_t": t_test_p(differences),
            "p_sign_flip": sign_flip_p(differences)}


def paired_differences(values: dict[int, float | None],
                       reference: dict[int, float | None]) -> list[float]:
    """``values[s] - reference[s]`` for every seed ``s`` where both are defined."""
    return [values[s] - reference[s] for s in sorted(values)
            if s in reference and values[s] is not None and reference[s] is not None]


def verdict(interval: dict, higher_is_better: bool = True) -> str:
    """"better" / "worse" / "no difference detected" from a paired difference's interval
    (optimizer minus reference; "better" is above 0, or below 0 if lower is better)."""
    if interval["n"] < 2 or interval["low"] is None:
        return "no verdict (1 seed)" if interval["n"] == 1 else "-"
    if interval["low"] == interval["high"]:
        return "no verdict (no spread over seeds)"
    above, below = interval["low"] > 0, interval["high"] < 0
    if above if higher_is_better else below:
        return "better"
    if below if higher_is_better else above:
        return "worse"
    return "no difference detected"


def score_text(value: float, metric=None) -> str:
    """A validation score as the reports write it: accuracy in %, perplexity as it is."""
    if metric is not None and not metric.percent:
        return f"{value:.2f}"
    return f"{100 * value:.2f}%"


def ladder_text(targets: list[float], metric=None) -> str:
    """The ladder of targets, stated: its levels and how they were placed."""
    fractions = "/".join(f"{f:g}" for f in LADDER)
    return (f"Ladder of targets: {', '.join(score_text(t, metric) for t in targets)} "
            f"({fractions} of the way from the median first-evaluation score of every run to "
            "the target); a run that never reaches a level is a miss (counted as infinite in "
            "medians), not dropped.")


def rules_text(reference: str, target: float, metric=None, target_rule: str | None = None,
               targets: list[float] | None = None) -> str:
    """The rules above, for the report; ``metric`` (:class:`larq_bamsprod.harness.metrics.Metric`)
    defaults to accuracy; ``target_rule`` says where the target came from; ``targets`` is
    its ladder."""
    if metric is not None and not metric.higher_is_better:
        score, at_target, better = metric.name, f"{metric.name} <= target", "below 0"
        target_text, worse = f"{target:.2f}", "above 0"
        held_out = "the corpus' own validation split"
    else:
        score, at_target, better = "accuracy", "accuracy >= target", "above 0"
        target_text, worse = f"{100 * target:.2f}%", "below 0"
        held_out = "held out from the training split"
    return (
        f"How to read this. Reference: `{reference}`. Target: validation {score} "
        f"{target_text}" + (f", {target_rule}" if target_rule else "") + ". "
        + (ladder_text(targets, metric) + " " if targets else "")
        + f"*Steps to target*: the first evaluation point with validation "
        f"{at_target}, per seed ('never' if not reached). *Speed-up* per seed: "
        "reference steps / optimizer steps (0 if only the optimizer never reaches the "
        "target, inf if only the reference never does, undefined if neither); the table "
        "gives the median over seeds. *Differences* are paired per seed (optimizer minus "
        "reference: same initial weights and batches), as mean [95% interval] over seeds, "
        "Student t with n-1 degrees of freedom; steps differences use the seeds where both "
        "reached the target. *Speed-up [95% CI]*: geometric mean of the per-seed speed-ups "
        "over the seeds where both reached the target, interval from the t interval of the "
        f"mean log speed-up. *Verdict* on final test {score}: better if the whole interval "
        f"is {better}, worse if {worse}, otherwise no difference detected, which is not a "
        "tie (no equivalence margin is set); one seed or no spread over seeds: no verdict. "
        "*p (t / sign-flip)*: two-sided p-values of the paired t test (below 0.05 exactly "
        "when the interval excludes 0) and of the exact sign-flip test over all 2^n sign "
        "assignments (no normality assumed; never below 2/2^n: 0.0625 with 5 seeds, 0.25 "
        f"with 3). *Comparison*: `{PRIMARY}` (and `bamsprod@case`, BAMSProd in Bop's layout) "
        "against the reference is the primary comparison (Holm-corrected across the graphs "
        "of an evidence set); every other row "
        "is secondary, uncorrected. *Speed verdict*: faster / slower if the whole speed-up "
        "interval is above / below 1 and both reached the target on every seed (or: one "
        "never reaches it). "
        f"Validation ({held_out}) chooses the best checkpoint and the target; test {score} "
        "only reports."
        + (f" Lower {score} is better." if score != "accuracy" else "")
    )
