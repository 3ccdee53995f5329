"""The held-out validation set: disjoint from training batches and from test, checked on
the examples themselves (a hash of image bytes and label), and fixed across calls."""

import hashlib
import sys
from pathlib import Path

import numpy as np
import pytest

from larq_bamsprod.harness import workload
from larq_bamsprod.harness.catalogue.workloads import BuiltinWorkload
from larq_bamsprod.harness.runner.training import epoch_seed

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
import synthetic_fmnist  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return synthetic_fmnist.make(tmp_path_factory.mktemp("fmnist"), n=256)


def _hashes(ds) -> list[str]:
    out = []
    for images, labels in ds.as_numpy_iterator():
        for image, label in zip(images, labels):
            out.append(hashlib.sha1(image.tobytes() + np.int64(label).tobytes()).hexdigest())
    return out


def _load(data_dir, **kwargs):
    return BuiltinWorkload(data_dir=data_dir, batch_size=8, **kwargs).load()


def test_validation_is_disjoint_from_every_training_batch_and_from_test(data_dir):
    d = _load(data_dir, validation_size=40)
    val = _hashes(d.validation)
    test = set(_hashes(d.test))
    assert len(val) == len(set(val)) == 40
    assert d.train_size == 216
    for epoch in range(2):
        train = _hashes(d.train(epoch_seed(0, epoch)))
        assert len(train) == d.steps_per_epoch * 8 == 216  # every training example, once
        assert not set(train) & set(val)
        assert not set(train) & test
    assert not set(val) & test


def test_validation_set_is_the_same_whatever_the_subset_and_call(data_dir):
    full = _load(data_dir, validation_size=30)
    small = _load(data_dir, validation_size=30, train_subset=64)
    assert _hashes(full.validation) == _hashes(small.validation)
    train = set(_hashes(small.train(epoch_seed(3, 0))))
    assert len(train) == 64 and not train & set(_hashes(small.validation))


def test_default_validation_size_is_ten_percent_at_most_5000():
    assert workload.default_validation_size(256) == 25
    assert workload.default_validation_size(60_000) == 5_000


def test_split_masks_are_complements_and_seeded():
    train, val = workload.split_masks(100, 10)
    assert val.sum() == 10 and not (train & val).any() and (train | val).all()
    assert (workload.split_masks(100, 10)[1] == val).all()
    with pytest.raises(ValueError, match="validation_size must be smaller than the training"):
        workload.split_masks(100, 100)
