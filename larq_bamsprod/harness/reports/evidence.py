"""RESULTS.md's tables of the tuned comparisons, regenerated from the committed files.

Usage (from the repository's top folder)::

    larq-bamsprod evidence            # rewrite docs/RESULTS.md's tables and the profile plot
    larq-bamsprod evidence --check    # exit 1 if the tables differ from what the files give

(``python -m larq_bamsprod.harness.reports.evidence`` does the same, with TensorFlow's start-up
log.)

Reads ``ROOT/evidence.json`` (default root ``docs/results/third``, the current round, whose
tables go to RESULTS.md and whose summary goes to README; the second round, superseded, is
``--root docs/results/tuned --results docs/results/tuned/README.md``, which leaves README
alone): the graphs in the order RESULTS shows them, each with its folder (the ``--output``
of its ``larq-bamsprod tune``), a title, the exact command, and when and where it ran;
optionally ``seeds``, the final runs' seeds the tables use, with ``seeds_why`` (e.g. leaving
out the seed whose initial weights the tuning trials trained from: ``"seeds": [1, 2, 3, 4,
5], "seeds_why": "..."``). From each folder it reads what ``tune`` and ``compare`` wrote and
what git keeps: ``tune.json`` (every trial, the chosen configuration) and
``runs/<optimizer>-seed<S>/done.json`` (every final run's history). The numbers are
recomputed from the per-seed histories with the comparison's own rules
(:mod:`larq_bamsprod.harness.reports.summary`, :mod:`larq_bamsprod.harness.reports.stats`),
so a table cannot drift from the runs behind it.

The generated text replaces what lies between ``<!-- evidence:begin -->`` and
``<!-- evidence:end -->`` in RESULTS.md; everything outside (the discussion) is left alone.

**Performance profile** (Dolan and More 2002, as AlgoPerf scores training algorithms): on
each graph ``g`` every optimizer ``o`` has a time to target ``t(o, g)``, the median over
seeds of its steps to the graph's target ("never" counts as infinity; an optimizer not run
on a graph never reaches there). ``r(o, g) = t(o, g) / min_o' t(o', g)`` and
``rho_o(tau)`` is the fraction of graphs with ``r(o, g) <= tau``. The score is the area
under ``rho_o`` for ``tau`` in ``[1, TAU_MAX]`` divided by ``TAU_MAX - 1`` (1 = fastest on
every graph, 0 = never within ``TAU_MAX`` times the fastest).
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path

from larq_bamsprod.harness.words import plural

BEGIN = "<!-- evidence:begin -->"
END = "<!-- evidence:end -->"
SUMMARY_BEGIN = "<!-- evidence-summary:begin -->"
SUMMARY_END = "<!-- evidence-summary:end -->"
TAU_MAX = 4.0
TAUS = (1.0, 1.1, 1.25, 1.5, 2.0, 3.0, 4.0)
_RUN_DIR = re.compile(r"^(?P<opt>.+)-seed(?P<seed>\d+)$")


class EvidenceError(ValueError):
    """A committed file is missing or inconsistent; the message names it and the fix."""


# --- Reading --------------------------------------------------------------------------------

def _read(path: Path) -> dict:
    from larq_bamsprod.harness.files import read_json

    try:
        data = read_json(path)
    except ValueError as error:
        raise EvidenceError(f"{path} is not valid JSON ({error}); fix or restore it "
                            "(git checkout)") from None
    if data is None:
        raise EvidenceError(f"{path} is missing")
    return data


def load_graph(folder: Path, seeds: list[int] | None = None) -> dict | None:
    """``{"tune", "config", "results", "all_results"}`` of one finished graph, or None if it
    has no final runs.

    ``all_results`` maps ``(optimizer, seed)`` to ``done.json``, for the optimizers and seeds
    of the final comparison (``config.json``) only; ``results`` is the same for ``seeds``
    only (default: all of them), the seeds the tables are computed on, and
    ``config["seeds"]`` is replaced by them (``config["all_seeds"]``: the comparison's).

    Raises:
        EvidenceError: ``seeds`` names a seed the comparison has not got.
    """
    config_path = folder / "config.json"
    if not config_path.exists():
        return None
    config = _read(config_path)
    tune = _read(folder / "tune.json")
    found = {}
    for done in sorted(folder.glob("runs/*-seed*/done.json")):
        match = _RUN_DIR.match(done.parent.name)
        if match:
            found[(match["opt"], int(match["seed"]))] = done
    every = sorted(config["seeds"])
    if seeds is not None:
        extra = [s for s in seeds if s not in every]
        if extra:
            raise EvidenceError(
                f"{config_path}: the evidence entry's seeds name seed {extra[0]}, which the "
                f"comparison has not got (its seeds: {', '.join(map(str, every))}); drop it "
                "from the entry's seeds or run the comparison with it")
    use = every if seeds is None else sorted(seeds)
    # In the comparison's order of optimizers, then seeds, as its own report.
    all_results = {(opt, seed): _read(found[(opt, seed)]) for opt in config["optimizers"]
                   for seed in every if (opt, seed) in found}
    results = {key: done for key, done in all_results.items() if key[1] in use}
    return {"tune": tune, "config": {**config, "seeds": use, "all_seeds": every},
            "results": results, "all_results": all_results}


def finished_trials(folder: Path) -> int:
    """Tuning trials of ``folder`` whose run has finished (``tune``'s
    ``trials/<study>-trial<k>/runs/<run>/done.json``)."""
    return len(list(folder.glob("trials/*/runs/*/done.json")))


# --- Numbers --------------------------------------------------------------------------------

def median_steps(steps: list[int | None]) -> float:
    """Median over seeds of steps to target, "never" (None) counting as infinity."""
    from larq_bamsprod.harness.reports import stats

    return stats.median_steps(steps)


def profile(times: dict[str, dict[str, float]]) -> dict[str, dict]:
    """``times[graph][optimizer]`` -> per optimizer: ratios per graph, rho at TAUS, score.

    An optimizer missing from a graph counts as never reaching the target there; a graph
    on which no optimizer reaches its target is left out (no ratio is defined on it).
    """
    optimizers = list(dict.fromkeys(o for per in times.values() for o in per))
    graphs = [g for g, per in times.items() if min(per.values(), default=math.inf) < math.inf]
    out = {}
    for o in optimizers:
        ratios = {}
        for g in graphs:
            best = min(times[g].values())
            ratios[g] = times[g].get(o, math.inf) / best
        out[o] = {"ratios": ratios,
                  "rho": {tau: rho(list(ratios.values()), tau) for tau in TAUS},
                  "score": score(list(ratios.values()))}
    return out


def rho(ratios: list[float], tau: float) -> float:
    """Fraction of graphs whose ratio is at most ``tau``."""
    return sum(r <= tau for r in ratios) / len(ratios) if ratios else 0.0


def score(ratios: list[float], tau_max: float = TAU_MAX) -> float:
    """Area under the step function ``rho(tau)`` on ``[1, tau_max]``, over ``tau_max - 1``."""
    if not ratios:
        return 0.0
    area = sum(max(0.0, tau_max - max(r, 1.0)) for r in ratios if r <= tau_max)
    return area / (len(ratios) * (tau_max - 1.0))


# --- Text -----------------------------------------------------------------------------------

def _pct_interval(values: list[float], scale: float = 100.0) -> str:
    from larq_bamsprod.harness.reports import stats

    iv = stats.mean_interval(values)
    if iv["mean"] is None:
        return "-"
    text = f"{scale * iv['mean']:.2f}"
    if iv["low"] is not None:
        text += f" [{scale * iv['low']:.2f}, {scale * iv['high']:.2f}]"
    return text


def _params(params: dict) -> str:
    def one(v):
        return f"{v:.3g}" if isinstance(v, float) else repr(v) if v is None else str(v)

    return ", ".join(f"{k}={one(v)}" for k, v in sorted(params.items())) or "-"


def _count(value) -> str:
    return f"{value:,}" if isinstance(value, int) else "?"


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 600 else f"{seconds / 60:.1f} min"


def graph_text(entry: dict, graph: dict | None, link: str | None = None, trials: int = 0
               ) -> tuple[str, dict[str, float] | None]:
    """Markdown of one graph and its times to target (None if it has no final runs yet);
    ``link``: the graph's folder relative to the document (default: its ``dir``);
    ``trials``: its finished tuning trials (:func:`finished_trials`), said while no final
    run is in."""
    from larq_bamsprod.harness import metrics
    from larq_bamsprod.harness.catalogue import workloads
    from larq_bamsprod.harness.reports import stats, summary, tables

    lines = [f"### {entry['title']}", ""]
    if graph is None:
        if trials:
            lines += [f"Under way: {trials} tuning {plural(trials, 'trial')} "
                      f"finished in `{entry['dir']}`, no final runs yet; no table until "
                      "they are all in. The command resumes it:", ""]
        else:
            lines += [f"Not run yet (no final runs in `{entry['dir']}`). Command:", ""]
        lines += ["```bash", entry["command"], "```", ""]
        return "\n".join(lines), None
    expected = len(graph["config"]["optimizers"]) * len(graph["config"]["seeds"])
    if len(graph["results"]) < expected:
        # A comparison still running (or stopped): no table until every run is in.
        lines += [f"Final runs under way: {len(graph['results'])} of {expected} done in "
                  f"`{entry['dir']}`; no table until all are. The command resumes them:", "",
                  "```bash", entry["command"], "```", ""]
        return "\n".join(lines), None
    tune, config, results = graph["tune"], graph["config"], graph["results"]
    reference = "bop" if "bop" in config["optimizers"] else config["optimizers"][0]
    metric = workloads.metric_of(config["dataset"]) if "dataset" in config else metrics.ACCURACY
    scale = 100.0 if metric.percent else 1.0
    # Accuracy in % (differences in points); perplexity as it is (lower is better).
    score = "top-1 (%)" if metric.percent else metric.name
    summ = summary.summarize(results, reference, metric=metric)
    steps_budget = max((r["history"][-1]["step"] for r in results.values()), default=0)
    sample = next(iter(results.values()))
    # Completed trials only: a FAIL trial's seconds run until some worker marks it failed,
    # which after a killed process includes the time nothing ran.
    trials = [t for info in tune["optimizers"].values() for t in info["trials"]]
    trial_seconds = sum(t["seconds"] or 0.0 for t in trials if t["state"] == "COMPLETE")
    failed = sum(t["state"] == "FAIL" for t in trials)
    failed_note = (f" ({failed} failed trial{'' if failed == 1 else 's'} not counted)"
                   if failed else "")
    # Images: validation is held out of the training split. PTB has its own validation
    # split, and both counts are of token windows, not examples.
    if config.get("dataset") == "ptb":
        data_text = (f"{_count(sample.get('train_size'))} training windows; PTB's own "
                     f"validation split, {_count(sample.get('validation_size'))} windows")
    else:
        data_text = (f"{_count(sample.get('train_size'))} training examples; "
                     f"{_count(sample.get('validation_size'))} held out for validation")
    run_seconds = sum(r.get("startup_seconds", 0.0) + r["train_seconds"] + r["eval_seconds"]
                      + r.get("test_seconds", 0.0)
                      for r in graph["all_results"].values())
    seeds_text = ", ".join(map(str, config["seeds"]))
    if config["all_seeds"] != config["seeds"]:
        seeds_text = (f"{', '.join(map(str, config['all_seeds']))}; the tables use seeds "
                      f"{seeds_text} ({entry['seeds_why']})")
    lines += [
        "Command (tuning, then the final runs of each optimizer's chosen configuration over "
        "every seed):", "", "```bash", entry["command"], "```", "",
        f"{entry['when']} Budget: {steps_budget:,} steps per run (batch "
        f"{config['batch_size']}, {config['epochs']} "
        f"epoch{'' if config['epochs'] == 1 else 's'} of {data_text}), "
        f"{tune['trials_per_optimizer']} trials per optimizer, final runs on seeds "
        f"{seeds_text}. Compute: "
        f"{_minutes(trial_seconds)} of completed trials{failed_note}, "
        f"{_minutes(run_seconds)} of final runs (sums of per-run seconds). Files: "
        f"[`{link or entry['dir']}/`]"
        f"({link or entry['dir']}/).",
        "",
        f"Chosen configuration (best final validation {metric.name} of the trials, from the "
        "first seed's initial weights):",
        "",
        f"| optimizer | trials complete | best trial | its validation {score} | "
        "best of each study, spread (max - min) | configuration |",
        "|---|---|---|---|---|---|",
    ]
    ordered = [o for o in config["optimizers"] if o in tune["optimizers"]]
    ordered += [o for o in tune["optimizers"] if o not in ordered]
    for opt in ordered:
        info = tune["optimizers"][opt]
        complete = sum(t["state"] == "COMPLETE" for t in info["trials"])
        best = info["best"]
        # Independent studies (tune --studies K): the tuning's own variance; one study: "-".
        spread = info.get("spread")
        spread_text = "-" if spread is None or len(spread["best_per_study"]) < 2 else (
            ", ".join(f"{scale * v:.2f}" for v in spread["best_per_study"])
            + f"; {scale * spread['range']:.2f}")
        trial = (f"{best['number']}" if "study" not in best
                 else f"study {best['study']}, {best['number']}")
        lines.append(f"| {opt} | {complete} | {trial} | {scale * best['value']:.2f} | "
                     f"{spread_text} | {_params(best['params'])} |")
    edges = _edges(entry["dir"], tune, ordered)
    if edges:
        lines += ["", "At the edge of the search space (within 10% of an end, log scale; the "
                  "best value may lie outside the range, so this optimizer may be "
                  "under-tuned): " + "; ".join(edges) + "."]
    weights = graph_layout(config)
    if weights is not None:
        lines += ["", weights[1]]
    lines += _final_runs_table(summ, results, reference, metric)
    times = {"levels": [{} for _ in summ["targets"]], "reference_target": {},
             "primary": _primary(summ, metric), "seeds": len(config["seeds"]),
             "layout": weights[0] if weights is not None else None}
    for row in summ["rows"]:
        for level, level_steps in zip(times["levels"], row["steps_to_targets"]):
            level[row["optimizer"]] = median_steps(level_steps)
    lines += ["", stats.ladder_text(summ["targets"], metric), "",
              tables.ladder_markdown(summ, metric).rstrip("\n")]
    text, times["reference_target"] = _sensitivity(results, reference, metric)
    lines += ["", text]
    seeds = sorted(config["seeds"])
    per_seed = []
    for row in summ["rows"]:
        opt = row["optimizer"]
        if opt == reference:
            continue
        diffs = [results[(opt, s)]["final"][metric.test_key]
                 - results[(reference, s)]["final"][metric.test_key]
                 for s in seeds if (opt, s) in results and (reference, s) in results]
        per_seed.append(f"{opt} " + ", ".join(f"{scale * d:+.2f}" for d in diffs))
    if per_seed:
        lines += ["", f"Paired test differences vs {reference} per seed (seeds "
                  f"{', '.join(map(str, seeds))}): " + "; ".join(per_seed) + "."]
    if "bamsprod" in config["optimizers"] and reference != "bamsprod":
        lines += _against_bamsprod(results, metric)
    lines.append("")
    return "\n".join(lines), times


def _edges(folder: str, tune: dict, ordered: list[str]) -> list[str]:
    """The chosen values at an edge of their range, each with the reason its study records
    for keeping it (tune.json's ``edge_kept_because``, from ``tune --keep-edge``).

    Raises:
        EvidenceError: a choice sits at an edge and its study records no reason: the tables
            would present a possibly under-tuned optimizer as tuned.
    """
    from larq_bamsprod.harness.catalogue.search_space import at_edge

    edges = []
    for opt in ordered:
        info = tune["optimizers"][opt]
        space = {k: tuple(v) for k, v in info.get("space", {}).items()}
        found = [e.split(";")[0] for e in at_edge(space, info["best"]["params"], opt)]
        reason = info.get("edge_kept_because")
        if found and not reason:
            raise EvidenceError(
                f"{folder}/tune.json: {opt}'s {found[0]}; widen its range and tune again, or "
                f"record why it stays (tune --keep-edge '{opt}=REASON' writes "
                "edge_kept_because)")
        edges += [f"{opt}: {e} (kept: {reason})" for e in found]
    return edges


def _sensitivity(results: dict, reference: str, metric) -> tuple[str, dict[str, float]]:
    """The earlier target rule (the reference's worst final seed, a level it reaches on
    every seed by construction), kept as a sensitivity row: its sentence and each
    optimizer's median steps to it."""
    from larq_bamsprod.harness.reports import stats, summary

    owned = summary.summarize(results, reference,
                              summary.reference_target(results, reference, metric), metric)
    times = {row["optimizer"]: median_steps(row["steps_to_target"]) for row in owned["rows"]}
    return (f"Sensitivity, the earlier target rule ({reference}'s worst final validation "
            f"{metric.name}, {stats.score_text(owned['target'], metric)}, which {reference} "
            "reaches on every seed by construction): median steps "
            + ", ".join(f"{o} " + ("never" if math.isinf(t) else f"{t:.0f}")
                        for o, t in times.items()) + ".", times)


def _against_bamsprod(results: dict, metric) -> list[str]:
    """Does BAMSProd add anything over the others (not only over the reference)? The same
    rule with bamsprod as the reference, each optimizer minus bamsprod: secondary."""
    from larq_bamsprod.harness.reports import summary
    from larq_bamsprod.harness.reports.tables import interval_text, p_text

    against = summary.summarize(results, "bamsprod", metric=metric)
    key = f"diff_final_test_{metric.name}"
    parts = [f"{row['optimizer']} {interval_text(row[key], 100.0 if metric.percent else 1.0)} "
             f"(p {p_text(row[key])}; {row['verdict']})"
             for row in against["rows"] if row["optimizer"] != "bamsprod"]
    if not parts:
        return []
    unit = "pp" if metric.percent else "lower is better"
    return ["", f"Secondary, uncorrected: paired test differences vs bamsprod (the optimizer "
            f"minus bamsprod, {unit}; p t / sign-flip; verdict by the same rule): "
            + "; ".join(parts) + "."]


def graph_layout(config: dict) -> tuple[dict, str] | None:
    """The layout of a built-in workload's graph (its model built from ``config.json``'s
    settings): the counts and the sentence (binary and real trainable weights, who trains
    which); None for a user's workload (no model to rebuild from the files)."""
    if "model" not in config:
        return None
    import tensorflow as tf

    from larq_bamsprod.harness.catalogue.workloads import BuiltinWorkload
    from larq_bamsprod.harness.reports import layout

    workload = BuiltinWorkload(config["model"], config["dataset"], config.get("model_args"),
                               image_size=config.get("image_size"))
    counts = layout.weight_layout(workload.build_model())
    tf.keras.backend.clear_session()
    recorded = config.get("hyperparameters", {})
    return counts, layout.layout_text(counts, [layout.trained_by(name, recorded.get(name, {}))
                                               for name in config["optimizers"]])


def _final_runs_table(summ: dict, results: dict, reference: str, metric) -> list[str]:
    """The final runs' table: per optimizer, scores, the paired test difference with its
    p-values and uncorrected verdict, steps to the target per seed, speed-up."""
    from larq_bamsprod.harness.reports import stats, summary
    from larq_bamsprod.harness.reports.tables import interval_text, p_text, ratio_text

    scale = 100.0 if metric.percent else 1.0
    score = "top-1 (%)" if metric.percent else metric.name
    diff_unit = "(pp)" if metric.percent else "(lower is better)"
    lines = [
        "",
        f"Final runs (mean [95% t interval] over seeds; differences paired per seed against "
        f"{reference}, with the paired t test's and the exact sign-flip test's p-values; "
        f"verdicts uncorrected, the primary one corrected below; target = validation "
        f"{metric.name} {stats.score_text(summ['target'], metric)}, {summary.WORST_MEAN}):",
        "",
        f"| optimizer | seeds | final val {score} | final test {score} | test diff vs "
        f"{reference} {diff_unit} | p (t / sign-flip) | verdict (uncorrected) | comparison | "
        f"steps to target, per seed | speed-up vs {reference} | speed verdict |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in summ["rows"]:
        opt = row["optimizer"]
        per = {s: r for (o, s), r in results.items() if o == opt}
        val = [per[s]["final"][metric.val_key] for s in sorted(per)]
        test = [per[s]["final"][metric.test_key] for s in sorted(per)]
        diff = row[f"diff_final_test_{metric.name}"]
        is_ref = opt == reference
        lines.append(
            f"| {opt} | {row['seeds']} | {_pct_interval(val, scale)} | "
            f"{_pct_interval(test, scale)} | {'-' if is_ref else interval_text(diff, scale)} | "
            f"{'-' if is_ref else p_text(diff)} | {row['verdict']} | {row['comparison']} | "
            f"{', '.join('never' if s is None else str(s) for s in row['steps_to_target'])} | "
            f"{'-' if is_ref else ratio_text(row.get('speedup_interval'))} | "
            f"{'reference' if is_ref else row.get('speed_verdict', '-')} |")
    return lines


def _primary(summ: dict, metric) -> dict[str, dict]:
    """The primary comparisons of one graph: ``{optimizer: {reference, metric, diff}}`` for
    each optimizer of :data:`~larq_bamsprod.harness.reports.stats.PRIMARY_FAMILY` compared
    there (not as the reference): its paired test difference against the reference."""
    return {row["optimizer"]: {"reference": summ["reference"], "metric": metric.name,
                               "diff": row[f"diff_final_test_{metric.name}"]}
            for row in summ["rows"] if row["comparison"] == "primary"}


def family(primary: dict[str, dict[str, dict]]) -> list[tuple[str, str, dict, float | None]]:
    """The primary family flattened, ``(graph, optimizer, entry, Holm-corrected p)`` in the
    graphs' order, then :data:`PRIMARY_FAMILY`'s: Holm's correction runs over every
    comparison of the family (optimizers times graphs), not per optimizer."""
    from larq_bamsprod.harness.reports import stats

    pairs = [(g, opt, per[opt]) for g, per in primary.items()
             for opt in stats.PRIMARY_FAMILY if opt in per]
    adjusted = stats.holm([entry["diff"]["p_t"] for _, _, entry in pairs])
    return [(g, opt, entry, p) for (g, opt, entry), p in zip(pairs, adjusted)]


def family_text(primary: dict[str, dict[str, dict]], titles: dict[str, str]) -> str:
    """The primary family: BAMSProd (and BAMSProd in Bop's layout, where compared) against
    the reference on every graph, Holm-corrected
    (:func:`larq_bamsprod.harness.reports.stats.holm`) over all their t p-values."""
    from larq_bamsprod.harness import metrics
    from larq_bamsprod.harness.reports.tables import interval_text

    rows = family(primary)
    lines = [
        "### Primary family: BAMSProd against the reference on every graph",
        "",
        f"{len(rows)} comparisons (final test score, the optimizer minus the reference, "
        "paired per seed; `bamsprod@case` is BAMSProd in Bop's layout: BAMSProd on the binary "
        "weights, Adam on the rest); Holm's step-down correction over all their t p-values "
        "holds the family-wise error at 5%. Verdict: better / worse if the corrected p is "
        "below 0.05, else no difference detected (not a tie: no equivalence margin is set). "
        "The exact sign-flip p cannot go below 2/2^n (n seeds). Every other comparison on "
        "this page is secondary and uncorrected.",
        "",
        "| graph | optimizer | reference | difference [95% CI] | p (t) | Holm-corrected p "
        "| p (sign-flip) | smallest possible sign-flip p | verdict (Holm) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for g, opt, entry, p_holm in rows:
        metric = metrics.metric_named(entry["metric"])
        diff = entry["diff"]
        unit = " pp" if metric.percent else f" {metric.name}"
        verdict = _holm_verdict(diff, p_holm, metric)
        lines.append(
            f"| {titles[g]} | {opt} | {entry['reference']} | "
            f"{interval_text(diff, 100 if metric.percent else 1)}{unit} | "
            f"{_p(diff['p_t'])} | {_p(p_holm)} | {_p(diff['p_sign_flip'])} | "
            f"{_p(2 / 2 ** diff['n']) if diff['n'] else '-'} | {verdict} |")
    return "\n".join(lines) + "\n"


def _p(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def profile_text(times: dict[str, dict[str, float]], titles: dict[str, str],
                 plot: str | None, levels: list[dict[str, dict[str, float]]] | None = None,
                 owned: dict[str, dict[str, float]] | None = None) -> str:
    """The profile at the target (``times[graph][optimizer]``) in full, then its score at
    every level of the ladder (``levels``) and under the earlier, reference-owned target
    (``owned``, a sensitivity row)."""
    prof = profile(times)
    if not prof:
        return "### Performance profile\n\nNo graph has final runs yet.\n"
    graphs = list(next(iter(prof.values()))["ratios"])
    lines = [
        "### Performance profile across graphs",
        "",
        f"Graphs: {', '.join(titles[g] for g in graphs)} ({len(graphs)}). Time to target = "
        "median over seeds of the steps to each graph's target (the worst of the compared "
        "optimizers' mean final validation scores; a miss counts as infinity); ratio "
        "= that over the fastest optimizer's on the graph; rho(tau) = fraction of graphs "
        f"with ratio <= tau; score = area under rho on [1, {TAU_MAX:g}] / {TAU_MAX - 1:g}.",
        "",
        "| optimizer | " + " | ".join(f"ratio on {g}" for g in graphs) + " | "
        + " | ".join(f"rho({tau:g})" for tau in TAUS) + " | score |",
        "|---|" + "---|" * (len(graphs) + len(TAUS) + 1),
    ]
    for opt, p in sorted(prof.items(), key=lambda kv: -kv[1]["score"]):
        ratios = " | ".join("never" if math.isinf(r) else f"{r:.2f}"
                            for r in p["ratios"].values())
        rhos = " | ".join(f"{p['rho'][tau]:.2f}" for tau in TAUS)
        lines.append(f"| {opt} | {ratios} | {rhos} | {p['score']:.3f} |")
    lines.append("")
    if levels:
        lines += _scores_by_level(prof, levels, owned)
    if plot:
        lines += [f"![performance profile]({plot})", ""]
    return "\n".join(lines)


def _scores_by_level(prof: dict, levels: list, owned: dict | None) -> list[str]:
    from larq_bamsprod.harness.reports import stats

    by_level = [profile(level) for level in levels]
    owned_prof = profile(owned) if owned else {}
    head = [f"score at {f:g} of the way" for f in stats.LADDER]
    lines = ["Profile score at each level of every graph's ladder (fractions of the way from "
             "the median first-evaluation score to the target; the last is the target), and, "
             "as a sensitivity row only, at the earlier target rule (the reference's worst "
             "final seed, a level the reference reaches on every seed by construction):", "",
             "| optimizer | " + " | ".join(head) + " | score at the reference-owned target |",
             "|---|" + "---|" * (len(head) + 1)]
    for opt in sorted(prof, key=lambda o: -prof[o]["score"]):
        cells = [f"{level[opt]['score']:.3f}" if opt in level else "-" for level in by_level]
        cells.append(f"{owned_prof[opt]['score']:.3f}" if opt in owned_prof else "-")
        lines.append(f"| {opt} | " + " | ".join(cells) + " |")
    return lines + [""]


def plot_profile(times: dict[str, dict[str, float]], path: Path) -> None:
    """rho_o(tau) against tau, one step line per optimizer (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    prof = profile(times)
    taus = np.linspace(1.0, TAU_MAX, 301)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    styles = ("-", "--", "-.", ":")
    for i, (opt, p) in enumerate(prof.items()):
        ratios = list(p["ratios"].values())
        ax.step(taus, [rho(ratios, t) for t in taus], where="post", label=opt,
                linestyle=styles[i % len(styles)],
                linewidth=2.4 if opt.startswith("bamsprod") else 1.5)
    n = len(next(iter(prof.values()))["ratios"]) if prof else 0
    ax.set_xlabel("tau: steps to target within tau x the fastest optimizer's")
    ax.set_ylabel(f"fraction of graphs (of {n})")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlim(1.0, TAU_MAX)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title("Performance profile (time to target, median over seeds)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def render(root: Path, results_md: Path | None = None) -> tuple[str, dict]:
    """The generated block (between the markers) and the profile's times at the target."""
    rendered = render_all(root, results_md)
    return rendered["body"], rendered["times"]


def render_all(root: Path, results_md: Path | None = None) -> dict:
    """Everything ``evidence`` writes: RESULTS' block (``body``), the profile's times at the
    target (``times``), README's summary block (``summary``) and the profile's data
    (``profile_json``)."""
    manifest = _read(root / "evidence.json")
    blocks, levels, owned, titles, primary, graphs = [], [], {}, {}, {}, {}
    for i, entry in enumerate(manifest.get("graphs", [])):
        missing = [k for k in ("dir", "title", "command", "when") if k not in entry]
        if missing:
            raise EvidenceError(f"{root / 'evidence.json'}: graphs[{i}] lacks "
                                f"{', '.join(missing)}; every graph needs dir, title, "
                                "command and when")
        seeds = entry.get("seeds")
        if seeds is not None and not (
                isinstance(seeds, list) and seeds and all(type(s) is int for s in seeds)
                and isinstance(entry.get("seeds_why"), str) and entry["seeds_why"]):
            raise EvidenceError(f"{root / 'evidence.json'}: graphs[{i}]'s seeds {seeds!r} "
                                "need to be a non-empty list of integers, with seeds_why "
                                "saying why the tables leave the other seeds out")
        folder = root / entry["dir"]
        link = _relative(folder, results_md.parent) if results_md is not None else None
        text, graph_times = graph_text(entry, load_graph(folder, seeds), link,
                                       finished_trials(folder))
        blocks.append(text)
        if graph_times is not None:
            levels += [{} for _ in range(len(graph_times["levels"]) - len(levels))]
            for level, level_times in zip(levels, graph_times["levels"]):
                level[entry["dir"]] = level_times
            owned[entry["dir"]] = graph_times["reference_target"]
            titles[entry["dir"]] = entry["dir"]
            graphs[entry["dir"]] = {**graph_times, "title": entry["title"]}
            if graph_times["primary"]:
                primary[entry["dir"]] = graph_times["primary"]
    times = levels[-1] if levels else {}
    plot = None
    if times and results_md is not None:
        plot = _relative(root / "performance_profile.png", results_md.parent)
    if primary:
        blocks.append(family_text(primary, titles))
    blocks.append(profile_text(times, titles, plot, levels, owned))
    body = ("<!-- generated by `larq-bamsprod evidence`; edit the files, not this block "
            "-->\n\n" + "\n".join(blocks))
    return {"body": body, "times": times, "summary": summary_text(graphs, primary, levels,
                                                                   owned),
            "profile_json": profile_json(levels, owned)}


def profile_json(levels: list[dict], owned: dict) -> str:
    """The profile's data as JSON text: per ladder level (the last is the target) and at the
    reference-owned target, each graph's median steps per optimizer ("never" for a miss) and
    each optimizer's ratios and score."""
    import json

    from larq_bamsprod.harness.reports import stats

    def one(times: dict) -> dict:
        return {"median_steps": {g: {o: "never" if math.isinf(t) else t
                                     for o, t in per.items()} for g, per in times.items()},
                "profile": {o: {"ratios": {g: "never" if math.isinf(r) else r
                                           for g, r in p["ratios"].items()},
                                "score": p["score"]} for o, p in profile(times).items()}}

    data = {"ladder_fractions": list(stats.LADDER[:len(levels)]),
            "levels": [one(level) for level in levels],
            "reference_owned_target": one(owned), "tau_max": TAU_MAX}
    return json.dumps(data, indent=1, sort_keys=True) + "\n"


def summary_text(graphs: dict, primary: dict, levels: list[dict], owned: dict) -> str:
    """README's evidence summary: per graph the primary comparison (Holm-corrected), the
    binary share and the median steps to the target; then the profile scores per level."""
    from larq_bamsprod.harness import metrics
    from larq_bamsprod.harness.reports.tables import interval_text

    rows = family(primary)
    references = {entry["reference"] for _, _, entry, _ in rows}
    ref = references.pop() if len(references) == 1 else "the reference"
    lines = ["<!-- generated by `larq-bamsprod evidence`; edit the files, not this block -->",
             "",
             f"| graph | seeds | binary share of the trainable weights | optimizer | minus "
             f"{ref}, final test [95% CI] | p t / sign-flip | Holm-corrected p ({len(rows)} "
             f"comparisons) | verdict (Holm) | median steps to the target: the optimizer / "
             f"{ref} |",
             "|---|---|---|---|---|---|---|---|---|"]
    for g, opt, entry, p_holm in rows:
        info = graphs[g]
        metric = metrics.metric_named(entry["metric"])
        diff = entry["diff"]
        unit = " pp" if metric.percent else f" {metric.name} (lower is better)"
        target_times = levels[-1][g]
        share = "-" if info["layout"] is None else f"{100 * info['layout']['binary_share']:.1f}%"
        lines.append(
            f"| {info['title']} | {info['seeds']} | {share} | {opt} | "
            f"{interval_text(diff, 100 if metric.percent else 1)}{unit} | "
            f"{_p(diff['p_t'])} / {_p(diff['p_sign_flip'])} | {_p(p_holm)} | "
            f"{_holm_verdict(diff, p_holm, metric)} | "
            f"{_steps(target_times.get(opt))} / "
            f"{_steps(target_times.get(entry['reference']))} |")
    if not levels:
        return "\n".join(lines[:2] + ["No graph has final runs yet."]) + "\n"
    scores = [profile(level) for level in levels]
    owned_scores = profile(owned)
    lines += ["", "Performance-profile score (1 = fastest on every graph) at each level of "
              "the ladder (0.25, 0.5, 0.75 of the way to the target, then the target: the "
              "worst of the optimizers' mean final validation scores); in brackets, at the "
              "earlier target the reference owned: "
              + "; ".join(f"{o} " + ", ".join(f"{sc[o]['score']:.3f}" for sc in scores)
                          + f" [{owned_scores[o]['score']:.3f}]"
                          for o in sorted(scores[-1], key=lambda o: -scores[-1][o]["score"]))
              + "."]
    return "\n".join(lines) + "\n"


def _holm_verdict(diff: dict, p_holm: float | None, metric) -> str:
    if p_holm is None:
        return "no verdict (no p-value)"
    if p_holm >= 0.05:
        return "no difference detected"
    return "better" if (diff["mean"] > 0) == metric.higher_is_better else "worse"


def _steps(value: float | None) -> str:
    if value is None or math.isinf(value):
        return "never"
    return f"{value:,.0f}"


def _relative(path: Path, start: Path) -> str:
    import os

    return os.path.relpath(path, start).replace(os.sep, "/")


def replace_block(document: str, body: str, where: str, begin: str = BEGIN,
                  end: str = END) -> str:
    if document.count(begin) != 1 or document.count(end) != 1 or (
            document.index(begin) > document.index(end)):
        raise EvidenceError(
            f"{where} must hold one line {begin} and, after it, one line {end}; the tables "
            "go between them")
    head, rest = document.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}\n{body}{end}{tail}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", default="docs/results/third",
                        help="folder holding evidence.json and one folder per graph "
                             "(default: %(default)s, the current round; the second, "
                             "superseded: --root docs/results/tuned --results "
                             "docs/results/tuned/README.md)")
    parser.add_argument("--results", default="docs/RESULTS.md",
                        help="the document whose marked block is rewritten (default: "
                             "%(default)s)")
    parser.add_argument("--readme", default=None,
                        help="the document whose evidence-summary block is rewritten "
                             "(default: README.md in the folder above --results' folder, if "
                             "it holds the block)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if a generated block or the profile's "
                             "data differs from what the files give")


DESCRIPTION = ("Regenerate RESULTS.md's tables, README's evidence summary and the performance "
               "profile (plot and data) from the committed tuning studies and final runs.")


def _outputs(root: Path, results_md: Path, readme: Path | None) -> tuple[list, dict]:
    """``(path, current text, generated text)`` of every file ``evidence`` writes, and the
    profile's times at the target."""
    rendered = render_all(root, results_md)
    document = results_md.read_text()
    outputs = [(results_md, document, replace_block(document, rendered["body"],
                                                    str(results_md)))]
    if readme is not None:
        text = readme.read_text()
        outputs.append((readme, text, replace_block(text, rendered["summary"], str(readme),
                                                    SUMMARY_BEGIN, SUMMARY_END)))
    data = root / "performance_profile.json"
    outputs.append((data, data.read_text() if data.exists() else "",
                    rendered["profile_json"]))
    return outputs, rendered["times"]


def _readme(args: argparse.Namespace, results_md: Path) -> Path | None:
    if args.readme is not None:
        return Path(args.readme)
    default = results_md.parent.parent / "README.md"
    if default.exists() and SUMMARY_BEGIN in default.read_text():
        return default
    return None


def run(args: argparse.Namespace, prog: str) -> int:
    """What ``main`` and ``larq-bamsprod evidence`` do with parsed arguments."""
    root, results_md = Path(args.root), Path(args.results)
    readme = _readme(args, results_md)
    for flag, path, kind in (("--root", root, "folder"), ("--results", results_md, "file"),
                             ("--readme", readme, "file")):
        if path is not None and not path.exists():
            print(f"{prog}: error: {flag} {str(path)!r} does not exist; give the {kind} (or "
                  "run from the repository's top folder)", file=sys.stderr)
            return 2
    try:
        outputs, times = _outputs(root, results_md, readme)
    except EvidenceError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2
    stale = [path for path, current, generated in outputs if current != generated]
    if args.check:
        for path in stale:
            print(f"{path}: differs from what the files under {root} give; run `{prog}` "
                  "and commit", file=sys.stderr)
        if stale:
            return 1
        print(f"{', '.join(str(path) for path, _, _ in outputs)}: match the files under "
              f"{root}")
        return 0
    if times:
        plot_profile(times, root / "performance_profile.png")
    from larq_bamsprod.harness.files import write_text_atomic

    for path, current, generated in outputs:
        if current != generated:
            write_text_atomic(path, generated)
            print(f"{path}: rewritten from {root}")
        else:
            print(f"{path}: already matches the files under {root}")
    return 0


def main(argv: list[str] | None = None) -> int:
    prog = "python -m larq_bamsprod.harness.reports.evidence"
    parser = argparse.ArgumentParser(prog=prog, description=DESCRIPTION)
    add_arguments(parser)
    return run(parser.parse_args(argv), prog)


if __name__ == "__main__":
    sys.exit(main())
