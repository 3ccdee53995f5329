"""A binary CNN on Fashion-MNIST with Keras 3 on JAX: BAMSProd vs Bop (binary) + Adam vs Adam.

The Keras 3 counterpart of ``examples/binary_cnn_comparison.py`` (the comparison harness
itself stays on tf.keras for now). Larq's BinaryCNN, copy-edited to
``larq_bamsprod.keras3.layers``; every optimizer starts from the same weights and sees the
same batches in the same order. Fashion-MNIST is read offline with NumPy from Debian's
``dataset-fashion-mnist`` files (``--data-dir``); nothing is downloaded.

Optimizers (each with its usual settings, no tuning):

* ``BAMSProd``: ``larq_bamsprod.keras3.BAMSProd()`` on every weight;
* ``Bop + Adam``: ``keras.optimizers.MultiOptimizer(BinaryRouter(Bop(), Adam(0.01)))``,
  Bop on the binary kernels, Adam on the rest, as Larq's ``CaseOptimizer`` did;
* ``Adam``: ``keras.optimizers.Adam(0.01)`` on every weight.

Usage::

    KERAS_BACKEND=jax python examples/keras3_comparison.py            # 6000 images, 2 epochs
    python examples/keras3_comparison.py --train-subset 60000 --epochs 10   # the full set

Prints a table of test accuracy and training time per optimizer.
"""

from __future__ import annotations

import argparse
import gzip
import os
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")

# isort: off
import keras  # noqa: E402
import numpy as np  # noqa: E402

from larq_bamsprod.keras3 import BAMSProd, BinaryRouter, Bop, layers  # noqa: E402
# isort: on

DATA_DIR = "/usr/share/datasets/fashion-mnist"

OPTIMIZERS = {
    "BAMSProd": lambda: BAMSProd(),
    "Bop + Adam": lambda: keras.optimizers.MultiOptimizer(
        BinaryRouter(Bop(), keras.optimizers.Adam(0.01))),
    "Adam": lambda: keras.optimizers.Adam(0.01),
}


def _read_idx(path: Path, offset: int) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), np.uint8, offset=offset)


def load_fashion_mnist(data_dir: str, split: str, limit: int):
    """Images in [-1, 1] with a channel axis, and labels; the first ``limit`` of a split."""
    prefix = {"train": "train", "test": "t10k"}[split]
    folder = Path(data_dir)
    images_path = folder / f"{prefix}-images-idx3-ubyte.gz"
    if not images_path.exists():
        raise SystemExit(f"Fashion-MNIST not found in {data_dir}: apt-get install "
                         "dataset-fashion-mnist (or make data), or pass --data-dir")
    images = _read_idx(images_path, 16).reshape(-1, 28, 28, 1)[:limit]
    labels = _read_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", 8)[:limit]
    return images.astype(np.float32) / 127.5 - 1.0, labels.astype(np.int32)


def binary_cnn() -> keras.Model:
    """Larq's BinaryCNN (larq.dev's "Introduction to BNNs"), in larq_bamsprod.keras3."""
    binary = {"input_quantizer": "ste_sign", "kernel_quantizer": "ste_sign",
              "kernel_constraint": "weight_clip", "use_bias": False}
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        layers.QuantConv2D(32, 3, kernel_quantizer="ste_sign",
                           kernel_constraint="weight_clip", use_bias=False),
        keras.layers.MaxPooling2D(2),
        keras.layers.BatchNormalization(scale=False),
        layers.QuantConv2D(64, 3, **binary),
        keras.layers.MaxPooling2D(2),
        keras.layers.BatchNormalization(scale=False),
        layers.QuantConv2D(64, 3, **binary),
        keras.layers.BatchNormalization(scale=False),
        keras.layers.Flatten(),
        layers.QuantDense(64, **binary),
        keras.layers.BatchNormalization(scale=False),
        layers.QuantDense(10, **binary),
        keras.layers.BatchNormalization(scale=False),
        keras.layers.Activation("softmax"),
    ])


def train(name: str, initial_weights, data, args) -> dict:
    (x_train, y_train), (x_test, y_test) = data
    keras.utils.set_random_seed(args.seed)  # the same batch order for every optimizer
    model = binary_cnn()
    model.set_weights(initial_weights)
    model.compile(OPTIMIZERS[name](), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    start = time.perf_counter()
    model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs, verbose=0)
    seconds = time.perf_counter() - start
    _, accuracy = model.evaluate(x_test, y_test, batch_size=512, verbose=0)
    return {"optimizer": name, "test_accuracy": float(accuracy), "train_seconds": seconds}


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=DATA_DIR)
    parser.add_argument("--train-subset", type=int, default=6000)
    parser.add_argument("--test-subset", type=int, default=10000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    data = (load_fashion_mnist(args.data_dir, "train", args.train_subset),
            load_fashion_mnist(args.data_dir, "test", args.test_subset))
    keras.utils.set_random_seed(args.seed)
    initial_weights = binary_cnn().get_weights()
    rows = [train(name, initial_weights, data, args) for name in OPTIMIZERS]
    print(f"Keras {keras.__version__} on {keras.backend.backend()}; "
          f"{len(data[0][1])} training images, {args.epochs} epochs, "
          f"{len(data[1][1])} test images")
    print("| optimizer | test accuracy | training seconds |\n|---|---|---|")
    for row in rows:
        print(f"| {row['optimizer']} | {row['test_accuracy']:.4f} | "
              f"{row['train_seconds']:.1f} |")
    return rows


if __name__ == "__main__":
    main()
