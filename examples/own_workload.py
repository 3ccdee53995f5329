"""Your own Larq model on your own NumPy data, through the harness (README, "Compare on your
own model").

A workload is a model builder and data; the harness does the rest (held-out validation,
same initial weights and batches for every optimizer, tables, plots, tuning)::

    # from this folder (or with examples/ on PYTHONPATH):
    larq-bamsprod compare --workload own_workload:workload --optimizers bamsprod,bop,adam \
        --epochs 3 --seeds 0,1,2 --output runs/own
    larq-bamsprod tune --workload own_workload:workload --optimizers bamsprod,bop \
        --trials 8 --epochs 3 --output runs/own-tune
    # from anywhere, by file; `small` is a function returning a smaller workload:
    larq-bamsprod compare --workload examples/own_workload.py:small --epochs 1

or in Python::

    from larq_bamsprod import harness
    from own_workload import workload

    rows = harness.compare(workload, optimizers=["bamsprod", "bop", "adam"], epochs=3)

The data here are Fashion-MNIST's images, read with NumPy from Debian's
``dataset-fashion-mnist`` files (``apt-get install dataset-fashion-mnist``), standing for
whatever arrays you have: replace :func:`load_arrays` with your own loading.
"""

# isort: off
import gzip
import os
from pathlib import Path

import numpy as np

from larq_bamsprod.harness import Workload  # first: selects Keras 2 (tf-keras), as Larq needs
import larq as lq
import tensorflow as tf
# isort: on

SOURCE = Path(os.environ.get("LARQ_BAMSPROD_FASHION_MNIST_DIR",
                             "/usr/share/datasets/fashion-mnist"))


def _idx(name: str) -> np.ndarray:
    """One IDX file (big-endian header: magic, then one size per dimension)."""
    raw = gzip.decompress((SOURCE / name).read_bytes())
    dims = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(dims))
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * dims).reshape(shape)


def load_arrays(n_train: int | None = None, n_test: int | None = None):
    """``(x_train, y_train), (x_test, y_test)``: images in [-1, 1] of shape (28, 28, 1),
    integer labels 0-9."""
    def images(name, n):
        return (_idx(name)[:n, :, :, None].astype(np.float32) / 127.5 - 1.0)

    train = (images("train-images-idx3-ubyte.gz", n_train),
             _idx("train-labels-idx1-ubyte.gz")[:n_train].astype(np.int64))
    test = (images("t10k-images-idx3-ubyte.gz", n_test),
            _idx("t10k-labels-idx1-ubyte.gz")[:n_test].astype(np.int64))
    return train, test


def build_model() -> tf.keras.Model:
    """A small binary CNN, as a Larq user writes one: binary convolutions and dense layer
    (``ste_sign`` on inputs and kernels, latent weights clipped), real first and last layer."""
    binary = {"input_quantizer": "ste_sign", "kernel_quantizer": "ste_sign",
              "kernel_constraint": "weight_clip", "use_bias": False}
    return tf.keras.Sequential([
        tf.keras.Input((28, 28, 1)),
        tf.keras.layers.Conv2D(32, 3, padding="same", use_bias=False),
        tf.keras.layers.MaxPool2D(2),
        tf.keras.layers.BatchNormalization(),
        lq.layers.QuantConv2D(64, 3, padding="same", **binary),
        tf.keras.layers.MaxPool2D(2),
        tf.keras.layers.BatchNormalization(),
        tf.keras.layers.Flatten(),
        lq.layers.QuantDense(128, **binary),
        tf.keras.layers.BatchNormalization(),
        tf.keras.layers.Dense(10),
        tf.keras.layers.Activation("softmax", dtype="float32"),
    ], name="own_bnn")


_train, _test = load_arrays(n_train=12_000, n_test=2_000)
workload = Workload(name="own-bnn-fmnist", model=build_model, train=_train, test=_test,
                    batch_size=128, validation_size=2_000)
"""12,000 training images (2,000 held out for validation by the harness) and 2,000 test."""


def small() -> Workload:
    """A quick version: 512 training images (128 held out), 256 test, batch 32."""
    train, test = load_arrays(n_train=512, n_test=256)
    return Workload(name="own-bnn-fmnist-small", model=build_model, train=train, test=test,
                    batch_size=32, validation_size=128)
