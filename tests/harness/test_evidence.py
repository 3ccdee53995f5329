"""RESULTS.md's generated tables: the committed ones equal the script's output, and the
script's numbers (profile, intervals, paired differences) match values worked out by hand."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from larq_bamsprod.harness.reports import evidence

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("args", [
    [],  # the third round, the default: docs/RESULTS.md and README's summary
    ["--root", "docs/results/tuned", "--results", "docs/results/tuned/README.md"],
])
def test_committed_results_tables_equal_the_scripts_output(args):
    """Every table between RESULTS.md's evidence markers comes from the committed files."""
    proc = subprocess.run(
        [sys.executable, "-m", "larq_bamsprod.harness.reports.evidence", "--check", *args],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_committed_mobilenetv2_layout_is_the_hand_count():
    # Issue #25's count: 16,488 of MobileNetV2's (width 0.25) 250,778 trainable weights are
    # binary (its depth-wise kernels); Bop's layout trains the rest with Adam.
    text = (REPO / "docs" / "results" / "tuned" / "README.md").read_text()
    section = text.split("binary MobileNetV2 at width 0.25")[1].split("\n### ")[0]
    assert ("Trainable weights: 16,488 binary and 234,290 real-valued (6.6% binary)."
            in section)
    assert "bop the binary weights, Adam(" in section


def test_profile_by_hand():
    times = {"g1": {"a": 100.0, "b": 200.0, "c": math.inf},
             "g2": {"a": 300.0, "b": 150.0, "c": 150.0},
             "g3": {"a": math.inf, "b": math.inf}}  # nobody reaches: left out
    prof = evidence.profile(times)
    assert prof["a"]["ratios"] == {"g1": 1.0, "g2": 2.0}
    assert prof["c"]["ratios"] == {"g1": math.inf, "g2": 1.0}
    assert [prof["a"]["rho"][t] for t in (1.0, 1.5, 2.0)] == [0.5, 0.5, 1.0]
    assert [prof["c"]["rho"][t] for t in (1.0, 2.0, 4.0)] == [0.5, 0.5, 0.5]
    # Area under rho on [1, 4] over 3: a = ((4 - 1) + (4 - 2)) / (2 * 3); c = 3 / 6.
    assert prof["a"]["score"] == pytest.approx(5 / 6)
    assert prof["b"]["score"] == pytest.approx(5 / 6)
    assert prof["c"]["score"] == pytest.approx(0.5)


def test_an_optimizer_missing_from_a_graph_never_reaches_there():
    prof = evidence.profile({"g1": {"a": 10.0}, "g2": {"a": 10.0, "b": 5.0}})
    assert prof["b"]["ratios"] == {"g1": math.inf, "g2": 1.0}
    assert prof["a"]["ratios"] == {"g1": 1.0, "g2": 2.0}


def test_median_steps_counts_never_as_infinity():
    assert evidence.median_steps([100, None, 300]) == 300
    assert evidence.median_steps([100, 200, 300, None]) == 250
    assert evidence.median_steps([None, None, 100]) == math.inf


def _done(vals, test, steps=(10, 20, 30)):
    history = [{"step": s, "val_accuracy": v, "train_loss": 0.5, "train_seconds": s / 10,
                "step_seconds_median": 0.01} for s, v in zip(steps, vals)]
    return {"history": history, "final": {"val_accuracy": vals[-1], "test_accuracy": test},
            "best": {"test_accuracy": test}, "train_seconds": 3.0, "eval_seconds": 1.0,
            "startup_seconds": 0.5, "test_seconds": 0.5, "train_size": 900,
            "validation_size": 100}


@pytest.fixture
def study(tmp_path):
    root = tmp_path / "tuned"
    g = root / "toy"
    runs = {
        # Mean final vals: bop 0.81, bamsprod 0.89 -> target 0.81, the lower mean. bop
        # reaches it at never, 20 (its old target, its worst seed 0.80: at 30, 20).
        ("bop", 0): _done([0.5, 0.7, 0.80], 0.70),
        ("bop", 1): _done([0.6, 0.815, 0.82], 0.74),
        # bamsprod reaches 0.81 at 10 and 30: speed-ups inf and 2/3; test +0.10 and +0.08.
        ("bamsprod", 0): _done([0.85, 0.86, 0.9], 0.80),
        ("bamsprod", 1): _done([0.7, 0.8, 0.88], 0.82),
        ("bamsprod", 7): _done([0.1, 0.1, 0.1], 0.1),  # a seed not in config.json: ignored
    }
    for (opt, seed), done in runs.items():
        d = g / "runs" / f"{opt}-seed{seed}"
        d.mkdir(parents=True)
        (d / "done.json").write_text(json.dumps(done))
    (g / "config.json").write_text(json.dumps(
        {"optimizers": ["bamsprod", "bop"], "seeds": [0, 1], "batch_size": 32, "epochs": 3}))
    trial = {"state": "COMPLETE", "seconds": 60.0, "params": {}}
    (g / "tune.json").write_text(json.dumps({"trials_per_optimizer": 2, "optimizers": {
        "bamsprod": {"best": {"number": 1, "value": 0.9, "params": {"learning_rate": 0.0123,
                                                                     "lr_decay": None}},
                     "edge_kept_because": "the toy's range",
                     # 0.0123 of [1e-4, 0.0125]: the top 0.4% in log scale.
                     "space": {"learning_rate": ["log", 1e-4, 0.0125],
                               "lr_decay": ["choice", ["sqrt", None]]},
                     "trials": [trial, trial]},
        "bop": {"best": {"study": 1, "number": 0, "value": 0.8, "params": {"gamma": 1e-4}},
                "spread": {"best_per_study": [0.8, 0.775], "range": 0.025},
                "space": {"gamma": ["log", 1e-6, 1e-2]},
                "trials": [trial, {**trial, "state": "FAIL"}, trial]}}}))
    (root / "evidence.json").write_text(json.dumps({"graphs": [
        {"dir": "toy", "title": "Toy graph", "command": "larq-bamsprod tune --toy",
         "when": "Run on a test machine."},
        {"dir": "later", "title": "Later graph", "command": "larq-bamsprod tune --later",
         "when": ""}]}))
    doc = tmp_path / "RESULTS.md"
    doc.write_text(f"# Results\n\nprose before\n\n{evidence.BEGIN}\nold\n{evidence.END}\n\n"
                   "prose after\n")
    return root, doc


def _row(text, first_cell):
    for line in text.splitlines():
        if line.startswith(f"| {first_cell} |"):
            return [c.strip() for c in line.strip("|").split("|")]
    raise AssertionError(f"no row {first_cell!r} in\n{text}")


def test_graph_tables_by_hand(study):
    root, doc = study
    body, times = evidence.render(root, doc)
    # Final runs: bamsprod test 80 and 82 -> mean 81, sd 1.4142, half width
    # 12.7062 * 1.4142 / sqrt(2) = 12.7062 points; diff vs bop: +10 and +8 -> +9 +- 12.7062 * 1.
    row = _row(body.split("Final runs")[1], "bamsprod")
    assert row[1] == "2"
    assert row[3] == "81.00 [68.29, 93.71]"
    assert row[4] == "+9.00 [-3.71, +21.71]"
    # t = 9 / (1.4142 / sqrt 2) = 9 with 1 df: p = 1 - 2 atan(9) / pi; sign-flip 2 / 4.
    assert row[5] == f"{1 - 2 * math.atan(9) / math.pi:.3g} / 0.5"
    assert row[6] == "no difference detected"
    assert row[7] == "primary"
    assert row[8] == "10, 30"
    # speed-ups inf (bop never) and 20/30: the interval is over the finite one alone.
    assert row[9] == "0.67x (n=1)"
    assert row[10] == "no verdict (target missed on some seeds)"
    assert ("target = validation accuracy 81.00%, the worst of the compared optimizers' mean "
            "final validation scores") in body
    # Ladder: first evaluations 0.5, 0.6, 0.85, 0.7 -> median 0.65; 0.65 + f * 0.16.
    assert "Ladder of targets: 69.00%, 73.00%, 77.00%, 81.00%" in body
    assert _row(body.split("Ladder of targets")[1], "bop") == [
        "bop", "20 / 2.0 s (2/2)", "25 / 2.5 s (2/2)", "25 / 2.5 s (2/2)", "never (1/2)"]
    assert _row(body.split("Ladder of targets")[1], "bamsprod") == [
        "bamsprod", "10 / 1.0 s (2/2)", "15 / 1.5 s (2/2)", "15 / 1.5 s (2/2)",
        "20 / 2.0 s (2/2)"]
    # The earlier rule, bop's worst final seed 0.80, as a sensitivity row only.
    assert ("Sensitivity, the earlier target rule (bop's worst final validation accuracy, "
            "80.00%, which bop reaches on every seed by construction): median steps "
            "bamsprod 15, bop 25.") in body
    assert "Paired test differences vs bop per seed (seeds 0, 1): bamsprod +10.00, +8.00." in body
    # The same differences the other way round: bop minus bamsprod, -10 and -8 -> -9 +- 12.71.
    assert ("Secondary, uncorrected: paired test differences vs bamsprod (the optimizer minus "
            "bamsprod, pp; p t / sign-flip; verdict by the same rule): bop -9.00 [-21.71, "
            f"+3.71] (p {1 - 2 * math.atan(9) / math.pi:.3g} / 0.5; no difference detected)."
            ) in body
    # The primary family: this graph's one comparison, Holm over a family of 1.
    family = _row(body.split("Primary family")[1], "toy")
    assert family[1:] == ["bamsprod", "bop", "+9.00 [-3.71, +21.71] pp", "0.0704", "0.0704",
                          "0.5", "0.5",
                          "no difference detected"]
    # Chosen configuration: trials complete, best trial, its value, the studies' best values
    # and their spread (bop: two studies, 80.00 and 77.50 -> 2.50; bamsprod: one study),
    # parameters.
    assert _row(body.split("Chosen configuration")[1], "bop") == [
        "bop", "2", "study 1, 0", "80.00", "80.00, 77.50; 2.50", "gamma=0.0001"]
    assert _row(body.split("Chosen configuration")[1], "bamsprod")[1:] == [
        "2", "1", "90.00", "-", "learning_rate=0.0123, lr_decay=None"]
    # Only bamsprod's rate is at the edge (bop's gamma 1e-4 is in the middle of [1e-6, 1e-2]).
    assert ("At the edge of the search space (within 10% of an end, log scale; the best value "
            "may lie outside the range, so this optimizer may be under-tuned): bamsprod: "
            "learning_rate=0.0123 is in the top 10% of [0.0001, 0.0125] (log scale) (kept: "
            "the toy's range).") in body
    assert "bop: gamma" not in body
    # Compute: the 4 completed trials of 60 s (bop's FAIL row is not counted: its seconds run
    # until a worker marks it failed); final runs 4 x (0.5 + 3 + 1 + 0.5) s.
    assert ("Compute: 4.0 min of completed trials (1 failed trial not counted), 0.3 min of "
            "final runs") in body
    # The unfinished graph says so, with its command.
    assert "### Later graph\n\nNot run yet" in body and "larq-bamsprod tune --later" in body
    # Profile over the one finished graph: median steps bamsprod 20, bop never.
    assert times == {"toy": {"bamsprod": 20.0, "bop": math.inf}}
    assert _row(body.split("Performance profile")[1], "bop")[1] == "never"
    # Scores by level: at 0.25, bop 20 vs 10 -> ratio 2, (4 - 2) / 3; at the reference-owned
    # target 25 vs 15 -> (4 - 5/3) / 3.
    by_level = _row(body.split("Profile score at each level")[1], "bop")
    assert by_level == ["bop", f"{2 / 3:.3f}", f"{(4 - 25 / 15) / 3:.3f}",
                        f"{(4 - 25 / 15) / 3:.3f}", "0.000", f"{(4 - 25 / 15) / 3:.3f}"]


def _primary(mean, p_t, n=5, metric="accuracy"):
    return {"reference": "bop", "metric": metric,
            "diff": {"n": n, "mean": mean, "low": mean - 1, "high": mean + 1, "p_t": p_t,
                     "p_sign_flip": 2 / 2 ** n}}


def test_an_edge_choice_without_a_reason_stops_evidence_naming_the_study(study):
    root, doc = study
    tune_json = root / "toy" / "tune.json"
    tune = json.loads(tune_json.read_text())
    del tune["optimizers"]["bamsprod"]["edge_kept_because"]
    tune_json.write_text(json.dumps(tune))
    with pytest.raises(evidence.EvidenceError) as caught:
        evidence.render(root, doc)
    message = str(caught.value)
    assert message.startswith("toy/tune.json: bamsprod's learning_rate=0.0123 is in the top "
                              "10% of [0.0001, 0.0125]")
    assert "--keep-edge 'bamsprod=REASON'" in message and "\n" not in message
    # The command line: one line, exit 2, nothing rewritten.
    before = doc.read_text()
    (doc.parent / "README.md").write_text(f"{evidence.SUMMARY_BEGIN}\n{evidence.SUMMARY_END}\n")
    proc = subprocess.run(
        [sys.executable, "-m", "larq_bamsprod.harness.reports.evidence", "--root",
         str(root), "--results", str(doc), "--readme", str(doc.parent / "README.md")],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "toy/tune.json: bamsprod's learning_rate" in proc.stderr.strip().splitlines()[-1]
    assert doc.read_text() == before


def test_primary_family_is_holm_corrected_by_hand():
    # p 0.01, 0.04, 0.03 -> sorted 0.01 x 3, 0.03 x 2, 0.04 x 1: 0.03, 0.06, 0.06.
    primary = {"g1": {"bamsprod": _primary(0.5, 0.01)},
               "g2": {"bamsprod": _primary(-0.5, 0.04)},
               "g3": {"bamsprod": _primary(-20.0, 0.03, n=3, metric="perplexity")}}
    text = evidence.family_text(primary, {g: g for g in primary})
    g1, g2, g3 = (_row(text, g) for g in ("g1", "g2", "g3"))
    assert g1[1] == "bamsprod" and (g1[5], g1[8]) == ("0.03", "better")
    assert (g2[4], g2[5], g2[8]) == ("0.04", "0.06", "no difference detected")
    assert (g3[5], g3[8]) == ("0.06", "no difference detected")
    assert g3[3] == "-20.00 [-21.00, -19.00] perplexity" and g3[7] == "0.25"
    # Lower perplexity is better: with a family of one, p 0.03 stays and reads "better".
    alone = evidence.family_text({"g3": {"bamsprod": _primary(-20.0, 0.03, 3, "perplexity")}},
                                 {"g3": "g3"})
    assert _row(alone, "g3")[8] == "better"
    assert "tie" not in text.replace("not a tie", "")


def test_bamsprod_in_bops_layout_joins_the_family_and_holm_runs_over_all_comparisons():
    # Four comparisons, p 0.001 (g1 bamsprod), 0.02 (g1 bamsprod@case), 0.04, 0.011 (g2):
    # sorted 0.001 x 4 = 0.004, 0.011 x 3 = 0.033, 0.02 x 2 = 0.04, 0.04 x 1 = 0.04 (the
    # running maximum changes none), back in the family's order 0.004, 0.04, 0.04, 0.033.
    primary = {"g1": {"bamsprod@case": _primary(1.0, 0.02), "bamsprod": _primary(2.0, 0.001)},
               "g2": {"bamsprod": _primary(0.7, 0.04), "bamsprod@case": _primary(1.5, 0.011)}}
    rows = evidence.family(primary)
    # bamsprod before bamsprod@case on every graph, whatever the dict's order.
    assert [(g, o) for g, o, _, _ in rows] == [("g1", "bamsprod"), ("g1", "bamsprod@case"),
                                               ("g2", "bamsprod"), ("g2", "bamsprod@case")]
    assert [p for *_, p in rows] == pytest.approx([0.004, 0.04, 0.04, 0.033])
    text = evidence.family_text(primary, {"g1": "G one", "g2": "G two"})
    assert "4 comparisons" in text
    case_row = [line for line in text.splitlines() if "| bamsprod@case |" in line][1]
    assert ("| G two | bamsprod@case | bop | +150.00 [+50.00, +250.00] pp | 0.011 | 0.033 |"
            in case_row)
    assert case_row.endswith("| better |")


def test_bamsprod_in_bops_layout_is_a_primary_row_of_the_comparison():
    from larq_bamsprod.harness.reports import summary

    results = {(o, s): _done([0.5, 0.7, 0.8 + d], 0.7 + d)
               for o, d in (("bop", 0.0), ("bamsprod@case", 0.01), ("adam", 0.02))
               for s in (0, 1)}
    rows = {r["optimizer"]: r["comparison"] for r in summary.summarize(results, "bop")["rows"]}
    assert rows == {"bop": "reference", "bamsprod@case": "primary", "adam": "secondary"}


def test_the_entry_seeds_choose_the_seeds_of_the_tables(study):
    """evidence.json's seeds (with seeds_why) leave a seed out of every table; the compute
    still counts every final run."""
    root, doc = study
    g = root / "toy"
    config = json.loads((g / "config.json").read_text())
    (g / "config.json").write_text(json.dumps({**config, "seeds": [0, 1, 7]}))
    (g / "runs" / "bop-seed7").mkdir()
    (g / "runs" / "bop-seed7" / "done.json").write_text(json.dumps(_done([0.1, 0.1, 0.1], 0.1)))
    manifest = json.loads((root / "evidence.json").read_text())
    manifest["graphs"][0].update(seeds=[0, 1], seeds_why="seed 7 tuned the toy")
    (root / "evidence.json").write_text(json.dumps(manifest))
    body, _ = evidence.render(root, doc)
    # The tables are those of seeds 0 and 1 alone (see test_graph_tables_by_hand) ...
    row = _row(body.split("Final runs")[1], "bamsprod")
    assert row[1] == "2" and row[4] == "+9.00 [-3.71, +21.71]"
    assert "final runs on seeds 0, 1, 7; the tables use seeds 0, 1 (seed 7 tuned the toy)" in body
    # ... and the compute counts all six final runs (the fixture's bamsprod-seed7 is one of
    # the comparison's now): 6 x (0.5 + 3 + 1 + 0.5) s = 30 s.
    assert "0.5 min of final runs" in body


@pytest.mark.parametrize("entry, message", [
    ({"seeds": [1, 2]}, "graphs[0]'s seeds [1, 2] need to be a non-empty list of integers, "
                        "with seeds_why"),
    ({"seeds": [], "seeds_why": "x"}, "graphs[0]'s seeds [] need"),
    ({"seeds": [1, 9], "seeds_why": "x"}, "name seed 9, which the comparison has not got "
                                          "(its seeds: 0, 1)"),
])
def test_bad_entry_seeds_one_line(study, entry, message, capsys):
    root, doc = study
    manifest = json.loads((root / "evidence.json").read_text())
    manifest["graphs"][0].update(entry)
    (root / "evidence.json").write_text(json.dumps(manifest))
    assert evidence.main(["--root", str(root), "--results", str(doc)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_main_rewrites_only_the_block_then_check_passes(study, capsys):
    root, doc = study
    assert evidence.main(["--root", str(root), "--results", str(doc), "--check"]) == 1
    assert evidence.main(["--root", str(root), "--results", str(doc)]) == 0
    text = doc.read_text()
    assert text.startswith("# Results\n\nprose before\n\n" + evidence.BEGIN)
    assert text.endswith(evidence.END + "\n\nprose after\n")
    assert "\nold\n" not in text
    assert (root / "performance_profile.png").stat().st_size > 0
    assert evidence.main(["--root", str(root), "--results", str(doc), "--check"]) == 0


def test_readme_summary_and_profile_data_are_generated_and_checked(study, capsys):
    root, doc = study
    readme = doc.parent / "README.md"
    readme.write_text(f"# Top\n\n{evidence.SUMMARY_BEGIN}\nold\n{evidence.SUMMARY_END}\n\n"
                      "after\n")
    args = ["--root", str(root), "--results", str(doc), "--readme", str(readme)]
    assert evidence.main(args + ["--check"]) == 1
    assert evidence.main(args) == 0
    assert evidence.main(args + ["--check"]) == 0
    text = readme.read_text()
    assert text.startswith("# Top\n\n" + evidence.SUMMARY_BEGIN) and text.endswith("after\n")
    # The toy graph's primary comparison: +9 [-3.71, +21.71], t p = 1 - 2 atan(9) / pi
    # (family of one: Holm leaves it), sign-flip 0.5; median steps to the target 20 / never.
    p_t = f"{1 - 2 * math.atan(9) / math.pi:.3g}"
    assert _row(text, "Toy graph") == [
        "Toy graph", "2", "-", "bamsprod", "+9.00 [-3.71, +21.71] pp", f"{p_t} / 0.5", p_t,
        "no difference detected", "20 / never"]
    # Profile scores at the four levels (ratios of bop 2, 5/3, 5/3, never), then [owned].
    assert "bamsprod 1.000, 1.000, 1.000, 1.000 [1.000]" in text
    assert f"bop 0.667, {(4 - 5 / 3) / 3:.3f}, {(4 - 5 / 3) / 3:.3f}, 0.000 [" in text
    data = json.loads((root / "performance_profile.json").read_text())
    assert data["ladder_fractions"] == [0.25, 0.5, 0.75, 1.0]
    assert data["levels"][-1]["median_steps"] == {"toy": {"bamsprod": 20.0, "bop": "never"}}
    assert data["levels"][0]["profile"]["bop"] == {"ratios": {"toy": 2.0},
                                                   "score": pytest.approx(2 / 3)}
    # Editing the data (or the README's block) by hand is caught.
    (root / "performance_profile.json").write_text("{}\n")
    assert evidence.main(args + ["--check"]) == 1
    assert "performance_profile.json: differs" in capsys.readouterr().err


def test_the_committed_readme_summary_is_generated():
    text = (REPO / "README.md").read_text()
    assert text.count(evidence.SUMMARY_BEGIN) == 1 and text.count(evidence.SUMMARY_END) == 1
    block = text.split(evidence.SUMMARY_BEGIN)[1].split(evidence.SUMMARY_END)[0]
    assert "| graph | seeds | binary share" in block
    # The third round's primary family: both BAMSProd rows against Bop on every graph with
    # final runs, Holm-corrected over all of them.
    rows = [line for line in block.splitlines()
            if line.startswith("| ") and not line.startswith("| graph |")]
    assert {line.split(" | ")[3] for line in rows} == {"bamsprod", "bamsprod@case"}
    assert f"Holm-corrected p ({len(rows)} comparisons)" in block


def test_the_cli_command_is_the_same(study, capsys):
    from larq_bamsprod.harness import cli

    root, doc = study
    assert cli.main(["evidence", "--root", str(root), "--results", str(doc), "--check"]) == 1
    assert "run `larq-bamsprod evidence` and commit" in capsys.readouterr().err
    assert cli.main(["evidence", "--root", str(root), "--results", str(doc)]) == 0
    assert cli.main(["evidence", "--root", str(root), "--results", str(doc), "--check"]) == 0


@pytest.mark.parametrize("args, message", [
    (["--root", "/nonexistent/tuned"], "--root '/nonexistent/tuned' does not exist"),
    (["--results", "/nonexistent/R.md"], "--results '/nonexistent/R.md' does not exist"),
])
def test_bad_paths_one_line(study, args, message, capsys):
    root, doc = study
    base = {"--root": str(root), "--results": str(doc)}
    base.update(dict(zip(args[::2], args[1::2])))
    assert evidence.main([x for kv in base.items() for x in kv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_missing_markers_one_line(study, capsys):
    root, doc = study
    doc.write_text("# Results without markers\n")
    assert evidence.main(["--root", str(root), "--results", str(doc)]) == 2
    err = capsys.readouterr().err
    assert "must hold one line <!-- evidence:begin -->" in err and err.count("\n") == 1


def test_incomplete_manifest_entry_one_line(study, capsys):
    root, doc = study
    (root / "evidence.json").write_text(json.dumps({"graphs": [{"dir": "toy"}]}))
    assert evidence.main(["--root", str(root), "--results", str(doc)]) == 2
    err = capsys.readouterr().err
    assert "graphs[0] lacks title, command, when" in err and err.count("\n") == 1


def _done_ppl(vals, test, steps=(10, 20, 30)):
    history = [{"step": s, "val_perplexity": v, "train_loss": 5.0, "train_seconds": s / 10,
                "step_seconds_median": 0.01} for s, v in zip(steps, vals)]
    return {"history": history, "train_size": 800, "validation_size": 90,
            "final": {"val_perplexity": vals[-1], "test_perplexity": test},
            "best": {"test_perplexity": test}, "train_seconds": 3.0, "eval_seconds": 1.0}


def test_a_perplexity_graph_reads_lower_as_better(tmp_path):
    """On ptb: target = the highest of the optimizers' mean final validation perplexities,
    reached at or below it; differences in perplexity, 'better' when the whole interval is
    below 0."""
    g = tmp_path / "tuned" / "lm"
    runs = {("bop", 0): _done_ppl([400, 300, 210], 200.0),      # target 210: step 30
            ("bop", 1): _done_ppl([400, 250, 205], 198.0),      # step 30
            ("bamsprod", 0): _done_ppl([300, 209, 190], 190.0),  # step 20; test -10
            ("bamsprod", 1): _done_ppl([200, 190, 185], 186.0)}  # step 10; test -12
    for (opt, seed), done in runs.items():
        (g / "runs" / f"{opt}-seed{seed}").mkdir(parents=True)
        (g / "runs" / f"{opt}-seed{seed}" / "done.json").write_text(json.dumps(done))
    (g / "config.json").write_text(json.dumps({"optimizers": ["bamsprod", "bop"],
                                               "seeds": [0, 1], "dataset": "ptb",
                                               "batch_size": 8, "epochs": 1}))
    trial = {"state": "COMPLETE", "seconds": 1.0}
    (g / "tune.json").write_text(json.dumps({"trials_per_optimizer": 1, "optimizers": {
        o: {"best": {"number": 0, "value": 201.5, "params": {}}, "trials": [trial]}
        for o in ("bamsprod", "bop")}}))
    entry = {"dir": "lm", "title": "LM", "command": "c", "when": ""}
    body, times = evidence.graph_text(entry, evidence.load_graph(g))
    # Mean final perplexities: bop 207.5, bamsprod 187.5 -> the worse, 207.5.
    assert "target = validation perplexity 207.50, the worst of the compared" in body
    # PTB's validation is its own split (not held out of training), counted in windows.
    assert ("(batch 8, 1 epoch of 800 training windows; PTB's own validation split, "
            "90 windows)") in body
    assert "held out" not in body
    assert _row(body.split("Chosen configuration")[1], "bop")[3] == "201.50"
    row = _row(body.split("Final runs")[1], "bamsprod")
    # test: 190, 186 -> mean 188, sd 2.828, half width 12.7062 * 2.828 / sqrt(2) = 25.41;
    # diff vs bop: -10, -12 -> -11 +- 12.7062.
    assert row[3] == "188.00 [162.59, 213.41]"
    assert row[4] == "-11.00 [-23.71, +1.71]"
    # diffs -10, -12: t = -11 / (1.4142 / sqrt 2) = -11 with 1 df: p = 1 - 2 atan(11) / pi.
    assert row[5] == f"{1 - 2 * math.atan(11) / math.pi:.3g} / 0.5"
    assert row[6] == "no difference detected"
    assert row[8] == "30, 10"
    assert times["levels"][-1] == {"bamsprod": 20.0, "bop": math.inf}
    # The earlier target, bop's highest final perplexity 210: bamsprod 20, 10; bop 30, 30.
    assert times["reference_target"] == {"bamsprod": 15.0, "bop": 30.0}


def test_a_graph_still_tuning_says_how_many_trials_are_in(study):
    """Tuning under way (trials finished, no final comparison yet): the graph counts the
    finished trials and gives its command, not "not run yet"."""
    root, doc = study
    for trial in ("bop-study1-trial0", "bamsprod-study2-trial3"):
        run = root / "later" / "trials" / trial / "runs" / f"{trial.split('-')[0]}-seed0"
        run.mkdir(parents=True)
        (run / "done.json").write_text("{}")
    # A trial cut off (no done.json) is not counted.
    (root / "later" / "trials" / "bop-study1-trial1" / "runs" / "bop-seed0").mkdir(parents=True)
    body, _ = evidence.render(root, doc)
    section = body.split("### Later graph")[1].split("###")[0]
    assert ("Under way: 2 tuning trials finished in `later`, no final runs yet; no table "
            "until they are all in. The command resumes it:") in section
    assert "larq-bamsprod tune --later" in section and "Not run yet" not in section


def test_a_comparison_still_running_gets_no_table(study):
    """Final runs under way (a run of the comparison's optimizers x seeds missing): the
    graph says how many are done and gives no numbers, rather than tables of a subset."""
    root, doc = study
    import shutil

    shutil.rmtree(root / "toy" / "runs" / "bop-seed1")
    body, times = evidence.render(root, doc)
    section = body.split("### Toy graph")[1].split("###")[0]
    assert "Final runs under way: 3 of 4 done in `toy`" in section
    assert "larq-bamsprod tune --toy" in section and "Final runs (mean" not in section
    assert times == {}
