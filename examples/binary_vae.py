"""Binary VAE on Fashion-MNIST: how BAMSProd's beta_1 and beta_2 change training.

Reproduces the shape of Liu et al. (CVPR 2020 workshops), section 5.1 and Figure 2: a
variational autoencoder with one hidden layer in the encoder and in the decoder, as in
Kingma & Ba's Adam paper (500 hidden units, 50 latent dimensions, batch 100), but with
binary weights and binary activations in the hidden layers, trained with BAMSProd while
sweeping ``beta_1`` (at ``beta_2 = 0.999``) and ``beta_2`` (at ``beta_1 = 0.9``).

What is binary (Larq ``QuantDense`` with ``ste_sign``, latent weights clipped to [-1, 1]):

* encoder hidden layer: binary inputs (the binarised pixels, as +-1), binary 784x500
  kernel, then batch normalisation, then a binary activation (``ste_sign``);
* decoder hidden layer: real-valued input ``z`` (binarising a 50-d Gaussian sample would
  keep only its signs), binary 50x500 kernel, batch normalisation, binary activation.

Real-valued: the two 500x50 heads (mean and log-variance of ``q(z|x)``, fed by the binary
hidden activations), the 500x784 output layer producing the Bernoulli logits, batch
normalisation and biases.

Data: Fashion-MNIST from :mod:`larq_bamsprod.harness.catalogue.data` (offline), pixels statically
binarised
(``pixel > 0.5`` on the [0, 1] scale), Bernoulli likelihood. The reported loss is the
negative ELBO in nats per image (single-sample estimate, summed over the 784 pixels, plus
the analytic KL term); "training loss" of an epoch is the mean over its mini-batches
(training mode, as Kingma & Ba plot it), "test loss" is evaluated after the epoch in
inference mode.

Fairness: every setting starts from the same initial weights, sees the same batches in
the same order and draws the same reparameterisation noise (stateless, seeded by
``(seed, step)``). ``--repeat-reference K`` reruns the reference setting
(``beta_1=0.9, beta_2=0.999``) with seeds ``seed+1 ... seed+K`` (other initial weights,
order and noise) to show how large a difference seed noise alone makes.

Examples::

    python examples/binary_vae.py --quick --output /tmp/vae            # seconds
    python examples/binary_vae.py --epochs 8 --train-subset 20000 --repeat-reference 2 \
        --output docs/results/vae
    python examples/binary_vae.py --optimizer adam --output runs/vae-adam

Writes ``results.json`` (per-epoch and per-step losses of every setting, configuration,
machine, wall time, summary), ``results.md`` and ``beta_sweeps.png`` (two panels: the
beta_1 sweep and the beta_2 sweep) to ``--output``.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import larq_bamsprod  # noqa: F401  (must precede TensorFlow: selects Keras 2)

# isort: split
import larq as lq
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from larq_bamsprod.harness.catalogue import registry
from larq_bamsprod.harness.files import write_json_atomic, write_text_atomic

BETA_1_SWEEP = (0.0, 0.5, 0.8, 0.9, 0.99)  # at beta_2 = REFERENCE[1]
BETA_2_SWEEP = (0.9, 0.99, 0.999, 0.9999)  # at beta_1 = REFERENCE[0]
REFERENCE = (0.9, 0.999)
SWEEPABLE = ("bamsprod", "adam", "amsgrad", "adabound", "amsbound")
QUICK = {
    "epochs": 1,
    "train_subset": 500,
    "test_subset": 500,
    "batch_size": 50,
    "hidden": 64,
    "latent": 8,
    "beta_1": (0.5, 0.9),
    "beta_2": (0.99, 0.999),
}
PIXELS = 784


# --------------------------------------------------------------------------- data
def load_binarized(split: str, subset: int | None, data_dir: str | None = None) -> np.ndarray:
    """Fashion-MNIST ``split`` as float32 {0, 1} of shape (n, 784), in the stored order."""
    from larq_bamsprod.harness.catalogue import data

    ds = data.load("fashion_mnist", split, batch_size=10_000, shuffle=False, subset=subset,
                   data_dir=data_dir)
    images = np.concatenate([x.numpy() for x, _ in ds])  # [-1, 1]
    return (images.reshape(len(images), PIXELS) > 0.0).astype(np.float32)  # [0,1] > 0.5


# --------------------------------------------------------------------------- model
def _binary_dense(units: int, binary_inputs: bool, name: str):
    return lq.layers.QuantDense(
        units,
        input_quantizer="ste_sign" if binary_inputs else None,
        kernel_quantizer="ste_sign",
        kernel_constraint="weight_clip",
        use_bias=False,  # batch normalisation follows
        name=name,
    )


def _real_dense_on_binary(units: int, name: str):
    # Real-valued kernel; its input is the ste_sign of the previous layer (binary activation).
    return lq.layers.QuantDense(units, input_quantizer="ste_sign", name=name)


def build_vae(hidden: int, latent: int) -> tuple[tf.keras.Model, tf.keras.Model]:
    """Encoder ``x(+-1) -> (mean, log_var)`` and decoder ``z -> logits``."""
    x = tf.keras.Input(shape=(PIXELS,), name="pixels_pm1")
    h = _binary_dense(hidden, True, "enc_binary")(x)
    h = tf.keras.layers.BatchNormalization(name="enc_bn")(h)
    mean = _real_dense_on_binary(latent, "enc_mean")(h)
    log_var = _real_dense_on_binary(latent, "enc_log_var")(h)
    encoder = tf.keras.Model(x, [mean, log_var], name="encoder")

    z = tf.keras.Input(shape=(latent,), name="z")
    g = _binary_dense(hidden, False, "dec_binary")(z)
    g = tf.keras.layers.BatchNormalization(name="dec_bn")(g)
    logits = _real_dense_on_binary(PIXELS, "dec_logits")(g)
    decoder = tf.keras.Model(z, logits, name="decoder")
    return encoder, decoder


def negative_elbo(encoder, decoder, x01, eps, training: bool):
    """Per-image negative ELBO (nats): Bernoulli reconstruction + KL(q(z|x) || N(0, I))."""
    mean, log_var = encoder(2.0 * x01 - 1.0, training=training)
    z = mean + tf.exp(0.5 * log_var) * eps
    logits = decoder(z, training=training)
    reconstruction = tf.reduce_sum(
        tf.nn.sigmoid_cross_entropy_with_logits(labels=x01, logits=logits), axis=-1
    )
    kl = 0.5 * tf.reduce_sum(tf.exp(log_var) + tf.square(mean) - 1.0 - log_var, axis=-1)
    return reconstruction + kl


# --------------------------------------------------------------------------- optimizers
def make_sweep_optimizer(name: str, beta_1: float, beta_2: float,
                         learning_rate: float | None, lr_decay: str | None = None):
    """``registry.make_optimizer(name)`` with ``beta_1``/``beta_2`` (and the rate, and
    for BAMSProd ``lr_decay``) set."""
    params = registry.hyperparameters(name)
    overrides, after = {}, {}
    if learning_rate is not None:
        overrides["learning_rate"] = learning_rate
    if lr_decay is not None:
        overrides["lr_decay"] = None if lr_decay == "none" else lr_decay
    for key, value in (("beta_1", beta_1), ("beta_2", beta_2)):
        (overrides if key in params else after)[key] = value
    optimizer = registry.make_optimizer(name, overrides)
    config = optimizer.get_config()
    for key, value in after.items():
        if key not in config:
            raise ValueError(
                f"optimizer {name!r} has no {key}; the sweep needs one of: "
                f"{', '.join(SWEEPABLE)}"
            )
        setattr(optimizer, key, value)  # legacy optimizers route this to _set_hyper
    return optimizer


def _swept_hyperparameters(args) -> dict:
    """The optimizer's settings as the sweep overrides them (beta_1/beta_2 vary per run)."""
    hyper = dict(registry.hyperparameters(args.optimizer))
    if args.learning_rate is not None:
        hyper["learning_rate"] = args.learning_rate
    if args.lr_decay is not None:
        hyper["lr_decay"] = None if args.lr_decay == "none" else args.lr_decay
    return hyper


# --------------------------------------------------------------------------- training
class Trainer:
    """One VAE and its traced gradient/evaluation functions, shared by all settings."""

    def __init__(self, args, x_train: np.ndarray, x_test: np.ndarray):
        self.args = args
        self.x_train, self.x_test = x_train, x_test
        self.encoder, self.decoder = self._build(args.seed)
        self.models = (self.encoder, self.decoder)
        self._init = [m.get_weights() for m in self.models]
        self.variables = self.encoder.trainable_variables + self.decoder.trainable_variables
        encoder, decoder, variables = self.encoder, self.decoder, self.variables
        x_spec = tf.TensorSpec([None, PIXELS], tf.float32)
        e_spec = tf.TensorSpec([None, args.latent], tf.float32)

        @tf.function(input_signature=[x_spec, e_spec])
        def gradients(x, eps):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(negative_elbo(encoder, decoder, x, eps, True))
            return loss, tape.gradient(loss, variables)

        @tf.function(input_signature=[x_spec, e_spec])
        def eval_sum(x, eps):
            return tf.reduce_sum(negative_elbo(encoder, decoder, x, eps, False))

        self.gradients, self.eval_sum = gradients, eval_sum

    def _build(self, seed: int):
        tf.keras.utils.set_random_seed(seed)
        return build_vae(self.args.hidden, self.args.latent)

    def initial_weights(self, seed: int) -> list[list[np.ndarray]]:
        """The initial weights of seed ``seed`` (a fresh build, read out)."""
        if seed == self.args.seed:
            return self._init
        return [m.get_weights() for m in self._build(seed)]

    def _noise(self, seed: int, step: int, n: int) -> tf.Tensor:
        return tf.random.stateless_normal([n, self.args.latent], seed=[seed, step])

    def evaluate(self, seed: int) -> float:
        total, size = 0.0, 1000
        for k, start in enumerate(range(0, len(self.x_test), size)):
            x = self.x_test[start : start + size]
            total += float(self.eval_sum(x, self._noise(seed + 7919, k, len(x))))
        return total / len(self.x_test)

    def run(self, label: str, beta_1: float, beta_2: float, seed: int):
        args = self.args
        for model, weights in zip(self.models, self.initial_weights(seed)):
            model.set_weights(weights)
        optimizer = make_sweep_optimizer(args.optimizer, beta_1, beta_2, args.learning_rate,
                                         args.lr_decay)
        variables = self.variables

        @tf.function
        def apply(grads):
            optimizer.apply_gradients(zip(grads, variables))

        n = len(self.x_train)
        steps = n // args.batch_size
        record = {"beta_1": beta_1, "beta_2": beta_2, "seed": seed, "epochs": [],
                  "step_loss": []}
        step_index = 0
        for epoch in range(args.epochs):
            order = np.random.default_rng([seed, epoch]).permutation(n)
            start = time.perf_counter()
            losses = []
            bar = tqdm(range(steps), desc=f"{label} epoch {epoch + 1}/{args.epochs}",
                       file=sys.stderr, leave=False,
                       mininterval=1.0 if sys.stderr.isatty() else 30.0)
            for step in bar:
                idx = order[step * args.batch_size : (step + 1) * args.batch_size]
                loss, grads = self.gradients(
                    self.x_train[idx], self._noise(seed, step_index, len(idx))
                )
                loss = float(loss)
                step_index += 1
                losses.append(loss)
                if not math.isfinite(loss):
                    break
                apply(grads)
                if step % 20 == 0:
                    bar.set_postfix(loss=f"{statistics.fmean(losses[-20:]):.1f}")
            bar.close()
            finite = all(math.isfinite(v) for v in losses)
            record["step_loss"].extend(round(v, 3) if math.isfinite(v) else None
                                       for v in losses)
            row = {
                "epoch": epoch + 1,
                "train_loss": statistics.fmean(losses) if finite else None,
                "test_loss": self.evaluate(seed) if finite else None,
                "seconds": round(time.perf_counter() - start, 2),
            }
            record["epochs"].append(row)
            print(f"{label} epoch {epoch + 1}/{args.epochs}: train -ELBO "
                  f"{_fmt(row['train_loss'])}, test -ELBO {_fmt(row['test_loss'])} "
                  f"({row['seconds']:.1f} s)", flush=True)
            yield record
            if not finite:
                print(f"{label}: non-finite loss, run stopped", flush=True)
                break


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.2f}"


def label_of(beta_1: float, beta_2: float, seed: int | None = None) -> str:
    text = f"b1={beta_1:g},b2={beta_2:g}"
    return text if seed is None else f"{text},seed={seed}"


# --------------------------------------------------------------------------- summary
def _smoothed(values: list[float], window: int) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    window = max(1, min(window, len(values)))
    kernel = np.ones(window) / window
    return np.convolve(values, kernel, mode="valid")


def summarize(results: dict) -> dict:
    """Per-setting numbers the verdict is read from (nothing here is hard-coded)."""
    rows = {}
    for label, run in results["runs"].items():
        epochs = run["epochs"]
        steps = [v for v in run["step_loss"] if v is not None]
        train = [r["train_loss"] for r in epochs]
        early = max(1, len(steps) // 10)
        last_epoch = steps[-(len(steps) // max(len(epochs), 1)):] if steps else []
        rows[label] = {
            "beta_1": run["beta_1"],
            "beta_2": run["beta_2"],
            "seed": run["seed"],
            "first_epoch_train_loss": train[0] if train else None,
            "final_train_loss": train[-1] if train else None,
            "final_test_loss": epochs[-1]["test_loss"] if epochs else None,
            "first_10pct_steps_mean_loss": statistics.fmean(steps[:early]) if steps else None,
            "epochs_with_train_loss_up": sum(
                b is not None and a is not None and b > a for a, b in zip(train, train[1:])
            ),
            # Spread of the per-step loss around its own moving average in the last
            # epoch: a plain measure of how noisy ("unstable") training is late on.
            "last_epoch_step_noise": (
                float(np.std(np.asarray(last_epoch[9:]) - _smoothed(last_epoch, 10)))
                if len(last_epoch) > 20 else None
            ),
            "diverged": any(v is None for v in run["step_loss"]),
        }
    summary = {"settings": rows}
    repeats = [r for r in rows.values()
               if (r["beta_1"], r["beta_2"]) == REFERENCE and r["final_train_loss"] is not None]
    if len(repeats) > 1:
        finals = [r["final_train_loss"] for r in repeats]
        summary["reference_seed_spread"] = {
            "seeds": [r["seed"] for r in repeats],
            "final_train_loss": finals,
            "range": max(finals) - min(finals),
        }
    for sweep in ("beta_1", "beta_2"):
        labels = [x for x in results["sweeps"][sweep] if rows[x]["final_train_loss"] is not None]
        if labels:
            best = min(labels, key=lambda x: rows[x]["final_train_loss"])
            fastest = min(labels, key=lambda x: rows[x]["first_10pct_steps_mean_loss"])
            summary[f"{sweep}_sweep"] = {
                "best_final_train_loss": rows[best][sweep],
                "lowest_loss_over_first_10pct_of_steps": rows[fastest][sweep],
                "ranking_final_train_loss": [
                    rows[x][sweep] for x in sorted(labels,
                                                   key=lambda x: rows[x]["final_train_loss"])
                ],
            }
    return summary


def results_markdown(results: dict) -> str:
    rows = results["summary"]["settings"]
    head = ("| sweep | beta_1 | beta_2 | seed | epoch-1 train | final train | final test "
            "| first 10% steps | epochs up | late step noise |")
    lines = []
    for sweep in ("beta_1", "beta_2"):
        lines += [f"\n{sweep} sweep ({'beta_2' if sweep == 'beta_1' else 'beta_1'} fixed at "
                  f"{REFERENCE[1] if sweep == 'beta_1' else REFERENCE[0]}):\n", head,
                  "|" + "---|" * 10]
        for label in results["sweeps"][sweep]:
            r = rows[label]
            lines.append(
                f"| {sweep} | {r['beta_1']:g} | {r['beta_2']:g} | {r['seed']} "
                f"| {_fmt(r['first_epoch_train_loss'])} | {_fmt(r['final_train_loss'])} "
                f"| {_fmt(r['final_test_loss'])} | {_fmt(r['first_10pct_steps_mean_loss'])} "
                f"| {r['epochs_with_train_loss_up']} | {_fmt(r['last_epoch_step_noise'])} |"
            )
    spread = results["summary"].get("reference_seed_spread")
    if spread:
        lines.append(
            f"\nReference setting (beta_1={REFERENCE[0]}, beta_2={REFERENCE[1]}) over seeds "
            f"{spread['seeds']}: final train -ELBO "
            + ", ".join(f"{v:.2f}" for v in spread["final_train_loss"])
            + f" (range {spread['range']:.2f} nats)."
        )
    return "\n".join(lines).lstrip("\n") + "\n"


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cfg = results["config"]
    steps_per_epoch = max(1, cfg["train_examples"] // cfg["batch_size"])
    window = max(1, steps_per_epoch // 5)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    tops, bottoms = [], []
    for ax, sweep in zip(axes, ("beta_1", "beta_2")):
        for label in results["sweeps"][sweep]:
            run = results["runs"][label]
            steps = [np.nan if v is None else v for v in run["step_loss"]]
            if not steps:
                continue
            smooth = _smoothed(steps, window)
            x = np.arange(window, window + len(smooth))
            (line,) = ax.plot(x, smooth, lw=1.3, label=f"{sweep} = {run[sweep]:g}")
            ends = [(r["epoch"] - 0.5) * steps_per_epoch for r in run["epochs"]]
            means = [np.nan if r["train_loss"] is None else r["train_loss"]
                     for r in run["epochs"]]
            ax.plot(ends, means, "o", ms=3.5, color=line.get_color())
            finite = smooth[np.isfinite(smooth)]
            if finite.size:
                bottoms.append(finite.min())
                tops.append(np.percentile(finite, 95))  # crops the first steps' transient
        fixed = ("beta_2", REFERENCE[1]) if sweep == "beta_1" else ("beta_1", REFERENCE[0])
        ax.set_title(f"{cfg['optimizer']}: {sweep} sweep ({fixed[0]} = {fixed[1]})")
        ax.set_xlabel("iteration (dots: mean over each epoch, at mid-epoch)")
        ax.set_ylabel(f"training -ELBO, nats (moving average of {window} steps)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if tops and bottoms:
        low, high = min(bottoms), max(tops)
        pad = 0.05 * (high - low + 1e-6)
        for ax in axes:
            ax.set_ylim(low - pad, high + 4 * pad)
    fig.suptitle(
        f"binary VAE (hidden {cfg['hidden']}, latent {cfg['latent']}) on binarised "
        f"Fashion-MNIST, {cfg['train_examples']:,} training images, batch "
        f"{cfg['batch_size']}, seed {cfg['seed']}", fontsize=10)
    fig.tight_layout()
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)


# --------------------------------------------------------------------------- driver
def _floats(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers such as 0.9,0.99, received {text!r}"
        ) from None
    if not values or any(not 0.0 <= v < 1.0 for v in values):
        raise argparse.ArgumentTypeError(f"expected values in [0, 1), received {text!r}")
    return values


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description="Binary VAE on Fashion-MNIST: sweep beta_1 and beta_2 of BAMSProd (or "
        "another Adam-type optimizer) as in Figure 2 of the BAMSProd paper."
    )
    p.add_argument("--quick", action="store_true",
                   help="seconds: 500 images, tiny model, 1 epoch, 2 values per sweep "
                   "(explicit flags still win)")
    p.add_argument("--optimizer", default="bamsprod",
                   help=f"one of {', '.join(SWEEPABLE)} (variants base@label). "
                   "Default: bamsprod")
    p.add_argument("--learning-rate", type=float, default=None,
                   help="override the optimizer's default rate (its registry entry's defaults)")
    p.add_argument("--lr-decay", choices=("sqrt", "none"), default=None,
                   help="BAMSProd's step decay (bamsprod only). Default for bamsprod: sqrt, "
                   "Algorithm 1's eta/sqrt(t) as in the paper's section 5.1 (and the runs "
                   "in docs/RESULTS.md); the library's default is none")
    p.add_argument("--beta-1", type=_floats, default=None,
                   help=f"beta_1 values at beta_2={REFERENCE[1]}. Default: "
                   + ",".join(f"{v:g}" for v in BETA_1_SWEEP))
    p.add_argument("--beta-2", type=_floats, default=None,
                   help=f"beta_2 values at beta_1={REFERENCE[0]}. Default: "
                   + ",".join(f"{v:g}" for v in BETA_2_SWEEP))
    p.add_argument("--epochs", type=int, default=None, help="Default: 8 (quick: 1)")
    p.add_argument("--train-subset", type=int, default=None,
                   help="first N training images. Default: all 60,000")
    p.add_argument("--test-subset", type=int, default=None,
                   help="first N test images. Default: all 10,000")
    p.add_argument("--batch-size", type=int, default=None, help="Default: 100")
    p.add_argument("--hidden", type=int, default=None, help="Default: 500")
    p.add_argument("--latent", type=int, default=None, help="Default: 50")
    p.add_argument("--seed", type=int, default=0, help="Default: 0")
    p.add_argument("--repeat-reference", type=int, default=0, metavar="K",
                   help="rerun beta_1=0.9, beta_2=0.999 with seeds seed+1..seed+K to "
                   "measure seed noise. Default: 0")
    p.add_argument("--output", default="runs/vae", help="Default: runs/vae")
    p.add_argument("--data-dir", default=None,
                   help="TFDS data_dir (default: TFDS_DATA_DIR or ~/tensorflow_datasets)")
    args = p.parse_args(argv)
    defaults = {"epochs": 8, "batch_size": 100, "hidden": 500, "latent": 50,
                "beta_1": BETA_1_SWEEP, "beta_2": BETA_2_SWEEP}
    for key in ("epochs", "train_subset", "test_subset", "batch_size", "hidden", "latent",
                "beta_1", "beta_2"):
        if getattr(args, key) is None:
            setattr(args, key, QUICK.get(key) if args.quick else defaults.get(key))
    for key in ("epochs", "train_subset", "test_subset", "batch_size", "hidden", "latent"):
        value = getattr(args, key)
        if value is not None and value <= 0:
            p.error(f"--{key.replace('_', '-')} must be > 0, received {value}")
    if args.repeat_reference < 0 or args.seed < 0:
        p.error("--seed and --repeat-reference must be >= 0")
    try:
        args.optimizer = registry.canonical_name(args.optimizer)
    except ValueError as err:
        p.error(str(err))
    if registry.base_name(args.optimizer) not in SWEEPABLE:
        p.error(f"--optimizer {args.optimizer!r} has no beta_1/beta_2 to sweep; choose one "
                f"of: {', '.join(SWEEPABLE)}")
    if registry.base_name(args.optimizer) == "bamsprod":
        args.lr_decay = args.lr_decay or "sqrt"
    elif args.lr_decay is not None:
        p.error(f"--lr-decay is BAMSProd's; --optimizer {args.optimizer!r} has none (drop it)")
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    x_train = load_binarized("train", args.train_subset, args.data_dir)
    x_test = load_binarized("test", args.test_subset, args.data_dir)
    if len(x_train) < args.batch_size:
        raise SystemExit(f"--train-subset {len(x_train)} is smaller than --batch-size "
                         f"{args.batch_size}")
    print(f"Fashion-MNIST (binarised): {len(x_train)} training, {len(x_test)} test images; "
          f"{len(x_train) // args.batch_size} steps per epoch", flush=True)
    trainer = Trainer(args, x_train, x_test)

    settings: dict[str, tuple[float, float, int]] = {}
    sweeps: dict[str, list[str]] = {"beta_1": [], "beta_2": []}
    for b1 in args.beta_1:
        settings.setdefault(label_of(b1, REFERENCE[1]), (b1, REFERENCE[1], args.seed))
        sweeps["beta_1"].append(label_of(b1, REFERENCE[1]))
    for b2 in args.beta_2:
        settings.setdefault(label_of(REFERENCE[0], b2), (REFERENCE[0], b2, args.seed))
        sweeps["beta_2"].append(label_of(REFERENCE[0], b2))
    for k in range(1, args.repeat_reference + 1):
        settings[label_of(*REFERENCE, args.seed + k)] = (*REFERENCE, args.seed + k)

    binary = sum(int(np.prod(v.shape)) for v in trainer.variables
                 if lq.optimizers.Bop.is_binary_variable(v))
    config = {k: v for k, v in vars(args).items()}
    config.update(train_examples=len(x_train), test_examples=len(x_test))
    results = {
        "experiment": "binary VAE beta_1/beta_2 sweep (BAMSProd paper, 5.1, Figure 2)",
        "command": " ".join([Path(sys.argv[0]).name] + (sys.argv[1:] if argv is None
                                                          else list(argv))),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(), "tensorflow": tf.__version__},
        "config": config,
        "parameters": {"total": sum(int(np.prod(v.shape)) for v in trainer.variables),
                       "binary": binary},
        "hyperparameters": {k: (v if isinstance(v, (int, float, str, bool, type(None)))
                                else repr(v))
                            for k, v in _swept_hyperparameters(args).items()},
        "sweeps": sweeps,
        "runs": {},
    }
    for index, (label, (b1, b2, seed)) in enumerate(settings.items(), 1):
        print(f"[{index}/{len(settings)}] {label} ({time.perf_counter() - started:.0f} s "
              "elapsed)", flush=True)
        for record in trainer.run(label, b1, b2, seed):
            results["runs"][label] = record
            results["wall_seconds"] = round(time.perf_counter() - started, 1)
            write_json_atomic(out / "results.json", results)
    results["summary"] = summarize(results)
    plot(results, out / "beta_sweeps.png")
    md = results_markdown(results)
    write_text_atomic(out / "results.md", md)
    results["wall_seconds"] = round(time.perf_counter() - started, 1)
    write_json_atomic(out / "results.json", results)
    print(f"\n{md}\nwall time {results['wall_seconds']} s; written to {out}/", flush=True)
    return results


if __name__ == "__main__":
    main()
