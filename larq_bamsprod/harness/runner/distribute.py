"""``tf.distribute`` for the harness: the strategy of ``--distribute``, the chief, sharding."""

from __future__ import annotations

import dataclasses
import functools
import json
import os

import tensorflow as tf

from larq_bamsprod.harness.workload import Data


def check_distribute(distribute: str | None) -> None:
    """Raise a ValueError if ``--distribute`` cannot start here (nothing is built)."""
    if distribute != "multiworker":
        return
    if "TF_CONFIG" not in os.environ:
        raise ValueError(
            "--distribute multiworker needs the TF_CONFIG environment variable on every "
            "worker (see README, 'Beyond one machine'); set it, or drop --distribute")
    try:
        json.loads(os.environ["TF_CONFIG"])
    except ValueError:
        raise ValueError(
            f"--distribute multiworker: TF_CONFIG is not JSON, received "
            f"{os.environ['TF_CONFIG']!r}; see README, 'Beyond one machine'") from None


def make_strategy(distribute: str | None) -> tf.distribute.Strategy:
    """The ``tf.distribute`` strategy for ``--distribute`` (default: the default one).

    Made once per process: TensorFlow configures the collective ops of
    ``MultiWorkerMirroredStrategy`` only at program start, before any tensor exists, so
    ``compare.check`` makes the strategy first and training takes the same one.
    """
    if distribute is None:
        return tf.distribute.get_strategy()
    check_distribute(distribute)
    return _strategy(distribute)


@functools.cache
def _strategy(distribute: str) -> tf.distribute.Strategy:
    if distribute == "mirrored":
        if tf.config.list_logical_devices("GPU"):
            return tf.distribute.MirroredStrategy()  # every local GPU
        # No GPU: every logical CPU device (one, unless virtual CPUs were configured, as
        # the tests do); NCCL is GPU-only, so reduce on one device.
        cpus = [device.name for device in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(
            cpus, cross_device_ops=tf.distribute.ReductionToOneDevice())
    if distribute == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"--distribute {distribute!r}: use mirrored or multiworker")


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return True
    return resolver.task_type == "chief" or (
        resolver.task_type == "worker" and resolver.task_id == 0
    )


def shard_by_data(ds: tf.data.Dataset) -> tf.data.Dataset:
    # Under MultiWorkerMirroredStrategy, tf.data shards by file by default, which fails on
    # TFDS datasets stored in fewer files than workers (Fashion-MNIST has one per split):
    # shard by element instead. Ignored when nothing is distributed.
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA)
    return ds.with_options(options)


def shard(data_: Data) -> Data:
    """``data_`` with every dataset sharded by element (:func:`shard_by_data`)."""
    train = data_.train
    return dataclasses.replace(data_, train=lambda seed: shard_by_data(train(seed)),
                               validation=shard_by_data(data_.validation),
                               test=shard_by_data(data_.test))
