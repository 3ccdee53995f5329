"""Claim 5: which parts of BAMSProd matter? Each variant changes one choice of the default.

The base is BAMSProd as the untuned round ran it (docs/RESULTS.md, appendix): the library's
defaults with Algorithm 1's ``lr_decay="sqrt"``, the library's default until 2026-12-01
(it is ``None`` since; README, "Defaults"), so every row passes ``lr_decay`` explicitly
and the command still reproduces that table.

Variants (rows of the table in docs/RESULTS.md, section 5): the base; learning rate
1e-3 and 1e-1 instead of 1e-2; no projection (``bound_target=None``: AMSGrad with
``eta / sqrt(t)``); a fixed target ``1e-6`` instead of the layer mean of ``v_hat``; no
``1/sqrt(t)`` decay; no bias correction; the paper's decaying ``beta_1t = beta_1 / t``.
All start from the same weights and see the same batches (the comparison harness).

``--quick`` runs seconds-long settings (used by the tests); ``--print`` shows the command.
Extra arguments are passed on to ``larq-bamsprod compare``.
"""

from __future__ import annotations

import argparse
import shlex
import sys

BASE = {"lr_decay": "sqrt"}
VARIANTS = {
    "bamsprod": BASE,
    "bamsprod@lr1e-3": {**BASE, "learning_rate": "1e-3"},
    "bamsprod@lr1e-1": {**BASE, "learning_rate": "1e-1"},
    "bamsprod@nobound": {**BASE, "bound_target": "none"},
    "bamsprod@fixed1e-6": {**BASE, "bound_target": "1e-6"},
    "bamsprod@nodecay": {**BASE, "lr_decay": "none"},
    "bamsprod@nobiascorr": {**BASE, "bias_correction": "false"},
    "bamsprod@b1inverse": {**BASE, "beta_1": "inverse_time"},
}


def command(quick: bool) -> list[str]:
    names = list(VARIANTS)[:2] if quick else list(VARIANTS)
    args = ["compare", "--model", "BinaryCNN", "--dataset", "fashion_mnist",
            "--optimizers", ",".join(names)]
    for name in names:
        for key, value in VARIANTS[name].items():
            args += ["--hparam", f"{name}.{key}={value}"]
    if quick:
        return args + ["--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "16",
                       "--test-subset", "64", "--seeds", "0", "--output", "runs/quick-ablation"]
    return args + ["--epochs", "3", "--train-subset", "12000", "--batch-size", "128",
                   "--seeds", "0", "--output", "runs/ablation"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="seconds-long smoke settings")
    parser.add_argument("--print", action="store_true", help="print the command only")
    args, extra = parser.parse_known_args(argv)
    cmd = command(args.quick) + extra
    if args.print:
        print("larq-bamsprod " + shlex.join(cmd))
        return 0
    from larq_bamsprod.harness import cli

    return cli.main(cmd)


if __name__ == "__main__":
    sys.exit(main())
