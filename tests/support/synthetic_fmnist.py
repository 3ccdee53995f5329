"""A tiny, learnable Fashion-MNIST look-alike in Debian's file format, built by real TFDS code.

Each class has a fixed random 28x28 template; an example is its class template plus noise,
so a small model can learn it in a few steps. The files are written the way Debian ships
Fashion-MNIST (IDX in gzip) and TFDS builds ``fashion_mnist`` from them through
``larq_bamsprod.harness.catalogue.data.prepare`` (checksums off: these are not the real files).
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

from larq_bamsprod.harness.catalogue import data


def _idx(array: np.ndarray) -> bytes:
    header = struct.pack(">HBB", 0, 0x08, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def make(root: Path, n: int = 256, seed: int = 0) -> str:
    """Write the files under ``root/debian``, build ``n`` examples per split into
    ``root/tfds``; return that data_dir."""
    rng = np.random.default_rng(seed)
    templates = rng.integers(0, 256, (10, 28, 28))
    source = Path(root) / "debian"
    source.mkdir(parents=True, exist_ok=True)
    # TFDS reads the published number of examples from each file and keeps the first
    # `max_examples_per_split`; the rest of each file is zeros.
    for prefix, total in (("train", 60_000), ("t10k", 10_000)):
        labels = np.zeros(total, np.int64)
        images = np.zeros((total, 28, 28), np.int64)
        labels[:n] = rng.integers(0, 10, n)
        noise = rng.integers(-40, 41, (n, 28, 28))
        images[:n] = np.clip(templates[labels[:n]] + noise, 0, 255)
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            path = source / f"{prefix}-{kind}-ubyte.gz"
            path.write_bytes(gzip.compress(_idx(array), mtime=0))
    data_dir = str(Path(root) / "tfds")
    data.prepare(
        "fashion_mnist",
        data_dir=data_dir,
        fashion_mnist_dir=str(source),
        verify_checksums=False,
        download=False,
        max_examples_per_split=n,
    )
    return data_dir
