"""Bop's flip threshold below the bottom of its search range, on BinaryResNet34 w0.125.

The studies chose threshold 1.02e-9, at the bottom edge of [1e-9, 1e-5]. This reads the
committed runs of Bop's chosen configuration (fp_learning_rate 0.0296, gamma 1.85e-4) with
only the threshold changed (folders ``binary_resnet34_bop_threshold/threshold-T``, one
`compare` each; the command is in each folder's ``config.json``) and prints:

1. seed 0's final validation accuracy at each threshold: the tuning seed and score, so the
   row at 1.02e-9 is the chosen trial itself (the final run on seed 0 reproduces it);
2. on seeds 1-5, which no trial trained on, the best of those thresholds against the chosen
   one: the paired differences of final validation and test accuracy (mean, 95% t interval,
   t and exact sign-flip p-values), with the chosen configuration's runs from
   ``binary_resnet34/runs``;
3. the primary comparison with that Bop instead: BAMSProd and BAMSProd in Bop's layout minus
   it, final test accuracy on seeds 1-5 (uncorrected; a sensitivity check, not a verdict).

Every run of a seed starts from the same initial weights (built from the seed alone), so
runs of different folders pair per seed as runs of one folder do.

Usage, from the repository's top folder::

    .venv/bin/python docs/results/third/bop_threshold.py
"""

import json
from pathlib import Path

from larq_bamsprod.harness.reports import stats

HERE = Path(__file__).resolve().parent
CHOSEN = HERE / "binary_resnet34" / "runs"
SWEEP = HERE / "binary_resnet34_bop_threshold"


def final(folder: Path, seed: int, optimizer: str = "bop") -> dict | None:
    """The final metrics of ``optimizer``'s run on ``seed`` in ``folder``, None if unfinished."""
    path = folder / f"{optimizer}-seed{seed}" / "done.json"
    return json.loads(path.read_text())["final"] if path.exists() else None


def paired(what: str, diffs: list[float], seeds: list[int]) -> str:
    test = stats.paired_test(diffs)
    return (f"final {what}: {test['mean']:+.2f} [{test['low']:+.2f}, {test['high']:+.2f}] pp "
            f"(p t {test['p_t']:.3g} / sign-flip {test['p_sign_flip']:.3g}); per seed "
            f"{seeds}: " + ", ".join(f"{d:+.2f}" for d in diffs))


def main() -> None:
    chosen = json.loads((CHOSEN / "bop-seed0" / "done.json").read_text())
    threshold0 = chosen["hyperparameters"]["threshold"]
    folders = {threshold0: CHOSEN}
    for folder in SWEEP.glob("threshold-*"):
        folders[float(folder.name.split("-", 1)[1])] = folder / "runs"
    rows = {threshold: final(runs, 0) for threshold, runs in folders.items()}
    print("1. Seed 0 (the tuning seed), final validation top-1 by threshold:")
    for threshold in sorted(rows):
        score = rows[threshold]
        mark = "  (chosen by the studies)" if threshold == threshold0 else ""
        value = f"{100 * score['val_accuracy']:.2f}%" if score else "not finished"
        print(f"   {threshold:8.3g}  {value}{mark}")
    done = {t: s for t, s in rows.items() if s and t != threshold0}
    best = max(done, key=lambda t: done[t]["val_accuracy"])
    print(f"\n2. Seeds 1-5: threshold {best:.3g} (seed 0's best) minus {threshold0:.3g} "
          "(chosen), paired per seed:")
    folder = folders[best]
    seeds = [s for s in range(1, 6) if final(folder, s) and final(CHOSEN, s)]
    if len(seeds) < 2:
        print(f"   only seeds {seeds} finished: no interval")
        return
    for key in ("val_accuracy", "test_accuracy"):
        diffs = [100 * (final(folder, s)[key] - final(CHOSEN, s)[key]) for s in seeds]
        print("   " + paired(key.split("_")[0], diffs, seeds))
    print(f"\n3. Final test, the optimizer minus Bop at threshold {best:.3g}, seeds {seeds}:")
    for name in ("bamsprod", "bamsprod@case"):
        diffs = [100 * (final(CHOSEN, s, name)["test_accuracy"]
                        - final(folder, s)["test_accuracy"]) for s in seeds]
        print(f"   {name}: " + paired("test", diffs, seeds))


if __name__ == "__main__":
    main()
