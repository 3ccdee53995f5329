"""Tests for larq_bamsprod.harness.catalogue.data: header restoration, the TFDS build path and the
loader.

The synthetic Fashion-MNIST is written in the real formats: IDX files of the real sizes
(60000 / 10000 images, only the first few non-zero so they compress fast), gzipped the way
Debian ships them (no stored name, another mtime). TFDS then builds ``fashion_mnist`` from
them through ``larq_bamsprod.harness.catalogue.data.prepare``, generating only the first examples
(``max_examples_per_split``); the references are the NumPy arrays written.
"""

import gzip
import hashlib
import io
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import larq_bamsprod.harness.catalogue.data as data

N_TRAIN, N_TEST = 60_000, 10_000
N_BUILT = 48  # examples per split that TFDS generates from the synthetic files
DEBIAN_MTIME = 0x5EDA0AED  # the mtime in Debian's headers
DEBIAN_DIR = Path(data.DEFAULT_FASHION_MNIST_DIR)


def _idx_bytes(array: np.ndarray) -> bytes:
    """IDX format (http://yann.lecun.com/exdb/mnist/): magic 0x0800|ndim, big-endian dims."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def _decode_idx_gz(path: Path) -> np.ndarray:
    raw = gzip.decompress(path.read_bytes())
    ndim = raw[3]
    shape = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _write_debian_style(directory: Path, rng: np.random.Generator) -> dict:
    arrays = {}
    for prefix, n in (("train", N_TRAIN), ("t10k", N_TEST)):
        images = np.zeros((n, 28, 28), np.uint8)
        images[:N_BUILT] = rng.integers(0, 256, (N_BUILT, 28, 28))
        images[0, 0, 0], images[0, 0, 1] = 0, 255  # both ends of the range
        labels = rng.integers(0, 10, n).astype(np.uint8)
        arrays[prefix] = (images, labels)
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            name = directory / f"{prefix}-{kind}-ubyte.gz"
            name.write_bytes(gzip.compress(_idx_bytes(array), mtime=DEBIAN_MTIME))
    return arrays


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """Synthetic Debian-style files, and fashion_mnist built from them in a tmp data_dir."""
    root = tmp_path_factory.mktemp("fmnist")
    source = root / "debian"
    source.mkdir()
    arrays = _write_debian_style(source, np.random.default_rng(0))
    data_dir = str(root / "tfds")
    data.prepare("fashion_mnist", data_dir=data_dir, fashion_mnist_dir=str(source),
                 verify_checksums=False, max_examples_per_split=N_BUILT, download=False)
    import tensorflow_datasets as tfds

    # TFDS stores examples in an order of its own (a hash of the keys); read it with TFDS.
    ds = tfds.builder("fashion_mnist", data_dir=data_dir).as_dataset(
        split="train", as_supervised=True, shuffle_files=False)
    stored = np.stack([x[..., 0] for x, _ in tfds.as_numpy(ds)])
    return {"source": source, "data_dir": data_dir, "arrays": arrays, "stored": stored}


def _pairs(examples) -> list:
    return sorted((np.asarray(x, np.uint8).tobytes(), int(y)) for x, y in examples)


def _batches(ds):
    return [(x.numpy(), y.numpy()) for x, y in ds]


def _labels(ds):
    return np.concatenate([y.numpy() for _, y in ds])


def _load(synthetic, **kwargs):
    kwargs = {"batch_size": 8, "shuffle": True, "seed": 0, **kwargs}
    return data.load("fashion_mnist", kwargs.pop("split", "train"),
                     data_dir=synthetic["data_dir"], download=False, **kwargs)


# --- gzip header restoration -----------------------------------------------------------------

@pytest.mark.parametrize("level", [6, 9])
def test_restore_gzip_header_equals_gzip_module_with_name_and_mtime(level):
    payload = np.random.default_rng(1).integers(0, 256, 3000, np.uint8).tobytes() + bytes(5000)
    stripped = gzip.compress(payload, compresslevel=level, mtime=DEBIAN_MTIME)
    reference = io.BytesIO()
    with gzip.GzipFile(filename="t10k-images-idx3-ubyte.gz", mode="wb", fileobj=reference,
                       mtime=1504176627, compresslevel=level) as f:
        f.write(payload)
    restored = data.restore_gzip_header(stripped, "t10k-images-idx3-ubyte.gz", 1504176627)
    assert restored == reference.getvalue()


def test_restore_gzip_header_replaces_an_existing_name():
    reference = io.BytesIO()
    with gzip.GzipFile(filename="new.gz", mode="wb", fileobj=reference, mtime=7) as f:
        f.write(b"abc")
    other = io.BytesIO()
    with gzip.GzipFile(filename="old-longer-name.gz", mode="wb", fileobj=other, mtime=3) as f:
        f.write(b"abc")
    assert data.restore_gzip_header(other.getvalue(), "new.gz", 7) == reference.getvalue()


def test_restore_gzip_header_rejects_non_gzip_data():
    with pytest.raises(ValueError, match="must be a gzip file"):
        data.restore_gzip_header(b"PK\x03\x04" + bytes(30), "x.gz", 0)


def test_restore_gzip_header_rejects_mtime_out_of_range():
    with pytest.raises(ValueError, match=r"mtime must be in \[0, 2\*\*32\), received mtime=-1"):
        data.restore_gzip_header(gzip.compress(b"a"), "x.gz", -1)


def test_restored_debian_files_have_the_checksums_tfds_registers():
    if not DEBIAN_DIR.is_dir():
        pytest.skip(f"{DEBIAN_DIR} missing: `apt-get install dataset-fashion-mnist`")
    import tensorflow_datasets as tfds

    registered = {i.filename: i for i in tfds.builder("fashion_mnist").url_infos.values()}
    for filename, mtime in data.FASHION_MNIST_MTIMES.items():
        restored = data.restore_gzip_header((DEBIAN_DIR / filename).read_bytes(), filename,
                                            mtime)
        assert len(restored) == registered[filename].size
        assert hashlib.sha256(restored).hexdigest() == registered[filename].checksum


# --- building through TFDS -------------------------------------------------------------------

def test_tfds_build_from_debian_style_files_reads_back_exactly(synthetic):
    import tensorflow_datasets as tfds

    builder = tfds.builder("fashion_mnist", data_dir=synthetic["data_dir"])
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images, labels = synthetic["arrays"][prefix]
        ds = builder.as_dataset(split=split, as_supervised=True, shuffle_files=False)
        got = [(x[..., 0], y) for x, y in tfds.as_numpy(ds)]
        assert len(got) == N_BUILT
        assert _pairs(got) == _pairs(zip(images[:N_BUILT], labels[:N_BUILT]))


def test_tfds_checksum_validation_rejects_files_that_are_not_fashion_mnist(synthetic, tmp_path):
    with pytest.raises(data.DatasetUnavailableError, match="not the published Fashion-MNIST"):
        data.prepare("fashion_mnist", data_dir=str(tmp_path),
                     fashion_mnist_dir=str(synthetic["source"]), download=False)


def test_fashion_mnist_dir_comes_from_the_environment_variable(synthetic, tmp_path,
                                                               monkeypatch):
    monkeypatch.setenv(data.FASHION_MNIST_DIR_ENV, str(synthetic["source"]))
    data.prepare("fashion_mnist", data_dir=str(tmp_path), verify_checksums=False,
                 max_examples_per_split=4, download=False)
    assert data.cardinality("fashion_mnist", "train", data_dir=str(tmp_path)) == 4


@pytest.mark.slow
def test_real_debian_fashion_mnist_builds_with_tfds_checksum_validation(tmp_path):
    if not DEBIAN_DIR.is_dir():
        pytest.skip(f"{DEBIAN_DIR} missing: `apt-get install dataset-fashion-mnist`")
    n = 32  # the sha256 of the whole files is checked; generating 70k PNGs takes ~1 min
    data.prepare("fashion_mnist", data_dir=str(tmp_path), fashion_mnist_dir=str(DEBIAN_DIR),
                 max_examples_per_split=n, download=False)
    ds = data.load("fashion_mnist", "test", batch_size=n, shuffle=False,
                   data_dir=str(tmp_path), download=False)
    images, labels = next(iter(ds))
    pixels = np.round((images.numpy()[..., 0] + 1.0) * 127.5)
    expected_images = _decode_idx_gz(DEBIAN_DIR / "t10k-images-idx3-ubyte.gz")[:n]
    expected_labels = _decode_idx_gz(DEBIAN_DIR / "t10k-labels-idx1-ubyte.gz")[:n]
    assert _pairs(zip(pixels, labels.numpy())) == _pairs(zip(expected_images, expected_labels))


# --- the loader ------------------------------------------------------------------------------

def test_load_yields_float32_images_scaled_to_minus_one_one(synthetic):
    (x, y), *_ = _batches(_load(synthetic, shuffle=False, batch_size=N_BUILT))
    assert x.dtype == np.float32 and y.dtype == np.int64
    assert x.shape == (N_BUILT, 28, 28, 1)
    np.testing.assert_allclose(x[..., 0], synthetic["stored"] / 127.5 - 1.0, rtol=0, atol=1e-7)
    assert x.min() == -1.0 and x.max() == 1.0


def test_same_seed_gives_identical_batches(synthetic):
    first, second = _batches(_load(synthetic, seed=3)), _batches(_load(synthetic, seed=3))
    assert len(first) == len(second) == N_BUILT // 8
    for (x1, y1), (x2, y2) in zip(first, second):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)


def test_shuffle_visits_every_example_once(synthetic):
    _, labels = synthetic["arrays"]["train"]
    shuffled = _labels(_load(synthetic, seed=3))
    assert sorted(shuffled) == sorted(labels[:N_BUILT])


def test_different_seeds_give_different_orders(synthetic):
    assert not np.array_equal(_labels(_load(synthetic, seed=1)), _labels(_load(synthetic, seed=2)))


def test_each_pass_reshuffles_and_the_sequence_of_passes_repeats(synthetic):
    ds = _load(synthetic, seed=5)
    passes = [_labels(ds), _labels(ds)]
    assert not np.array_equal(passes[0], passes[1])
    again = _load(synthetic, seed=5)
    for expected in passes:
        np.testing.assert_array_equal(_labels(again), expected)


def test_same_seed_gives_the_same_order_in_another_process(synthetic):
    # TensorFlow's global seed enters the order too (module docstring); earlier tests in
    # this process may have set it, so both sides set the same one.
    script = textwrap.dedent(f"""
        import larq_bamsprod.harness.catalogue.data as data
        import tensorflow as tf
        tf.keras.utils.set_random_seed(123)
        ds = data.load("fashion_mnist", "train", batch_size=8, shuffle=True, seed=11,
                       data_dir={synthetic["data_dir"]!r}, download=False)
        print(",".join(str(v) for _, y in ds for v in y.numpy()))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True, timeout=120)
    other = [int(v) for v in out.stdout.strip().splitlines()[-1].split(",")]
    tf.keras.utils.set_random_seed(123)
    np.testing.assert_array_equal(_labels(_load(synthetic, seed=11)), other)


def test_subset_takes_the_first_examples_before_shuffling(synthetic):
    xs = np.concatenate([x for x, _ in _batches(_load(synthetic, subset=10, seed=4))])
    assert xs.shape[0] == 10
    got = sorted(map(bytes, ((xs[..., 0] + 1.0) * 127.5).round().astype(np.uint8)))
    assert got == sorted(map(bytes, synthetic["stored"][:10]))


def test_cardinality_reads_prepared_metadata_and_applies_subset(synthetic):
    kwargs = {"data_dir": synthetic["data_dir"]}
    assert data.cardinality("fashion_mnist", "train", **kwargs) == N_BUILT
    assert data.cardinality("fashion_mnist", "test", subset=10, **kwargs) == 10
    assert data.cardinality("fashion_mnist", "test", subset=10 * N_BUILT, **kwargs) == N_BUILT


def test_cardinality_of_an_unprepared_dataset_is_the_published_split_size(tmp_path):
    # CIFAR-10: 50000 training and 10000 test images (Krizhevsky, 2009).
    assert data.cardinality("cifar10", "train", data_dir=str(tmp_path)) == 50_000
    assert data.cardinality("cifar10", "test", subset=64, data_dir=str(tmp_path)) == 64


def test_drop_remainder_drops_the_short_batch(synthetic):
    sizes = [len(y) for _, y in _batches(_load(synthetic, batch_size=10, drop_remainder=True))]
    assert sizes == [10] * (N_BUILT // 10)
    sizes = [len(y) for _, y in _batches(_load(synthetic, batch_size=10))]
    assert sizes == [10] * (N_BUILT // 10) + [N_BUILT % 10]


def test_image_size_resizes(synthetic):
    x, _ = _batches(_load(synthetic, image_size=32))[0]
    assert x.shape == (8, 32, 32, 1)
    assert -1.0 <= x.min() and x.max() <= 1.0


def test_augment_is_a_flipped_or_plain_crop_of_the_black_padded_image(synthetic):
    x, _ = _batches(_load(synthetic, shuffle=False, augment=True, seed=0, batch_size=16))[0]
    pad = 28 // 8
    seen_shift = False
    for original, augmented in zip(synthetic["stored"][:16], x[..., 0]):
        padded = np.pad(original.astype(np.float32), pad) / 127.5 - 1.0
        crops = [
            view
            for top in range(2 * pad + 1) for left in range(2 * pad + 1)
            for view in (padded[top:top + 28, left:left + 28],
                         padded[top:top + 28, left:left + 28][:, ::-1])
        ]
        assert any(np.allclose(augmented, c, atol=1e-6) for c in crops)
        seen_shift |= not np.allclose(augmented, original / 127.5 - 1.0, atol=1e-6)
    assert seen_shift


def test_augment_with_the_same_seed_is_repeatable(synthetic):
    first = _batches(_load(synthetic, augment=True, seed=9))
    second = _batches(_load(synthetic, augment=True, seed=9))
    for (x1, _), (x2, _) in zip(first, second):
        np.testing.assert_array_equal(x1, x2)


# --- errors ----------------------------------------------------------------------------------

def test_unknown_name_lists_the_valid_names():
    with pytest.raises(ValueError, match=r"name='cifar11'.*cifar10, cifar100, fashion_mnist, "
                                         r"imagenet2012, mnist, ptb, svhn_cropped"):
        data.get_info("cifar11")


def test_every_dataset_info_is_complete():
    for name, info in data.DATASETS.items():
        images = info.task == "classification"
        assert info.name == name and info.num_classes > 1
        assert len(info.image_shape) == (3 if images else 0)
        splits = {info.train_split, info.test_split, info.validation_split} - {None}
        assert splits <= dict(info.split_sizes).keys()


def test_unavailable_dataset_error_says_how_to_get_it(tmp_path):
    with pytest.raises(data.DatasetUnavailableError,
                       match=r"download_and_prepare --datasets=cifar10"):
        data.load("cifar10", "train", batch_size=8, shuffle=False, data_dir=str(tmp_path),
                  download=False)


def test_missing_debian_fashion_mnist_error_names_the_directory_and_says_apt_get(tmp_path):
    empty = tmp_path / "empty"
    with pytest.raises(data.DatasetUnavailableError) as excinfo:
        data.load("fashion_mnist", "train", batch_size=8, shuffle=False,
                  data_dir=str(tmp_path), fashion_mnist_dir=str(empty), download=False)
    assert f"not in {empty}" in str(excinfo.value)
    assert "apt-get install dataset-fashion-mnist" in str(excinfo.value)


def test_imagenet_without_archives_error_names_the_manual_files(tmp_path):
    with pytest.raises(data.DatasetUnavailableError, match="ILSVRC2012_img_train.tar"):
        data.prepare("imagenet2012", data_dir=str(tmp_path))


def test_unreachable_host_counts_as_unavailable():
    # Port 9 (discard) on the loopback interface is closed on a normal machine.
    assert not data._reachable(["http://127.0.0.1:9/file.gz"], timeout=1.0)


@pytest.mark.parametrize("kwargs, message", [
    ({"batch_size": 0}, "batch_size must be a positive integer, received batch_size=0"),
    ({"batch_size": 8, "subset": 0}, "subset must be a positive integer, received subset=0"),
    ({"batch_size": 8, "image_size": -2},
     "image_size must be a positive integer, received image_size=-2"),
])
def test_invalid_arguments_are_named(kwargs, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        data.load("cifar10", "train", shuffle=False, data_dir=str(tmp_path), **kwargs)


def test_non_int_seed_is_a_type_error(tmp_path):
    with pytest.raises(TypeError, match="seed must be an int or None, received seed=1.5"):
        data.load("cifar10", "train", batch_size=8, shuffle=True, seed=1.5,
                  data_dir=str(tmp_path))
