"""Comparison settings as the tests write them: one flat set of keywords, split into the
built-in workload's (model, dataset, sizes) and the comparison's (optimizers, seeds, ...)."""

from larq_bamsprod.harness.catalogue.workloads import BuiltinWorkload
from larq_bamsprod.harness.experiments.config import CompareConfig

WORKLOAD_KEYS = ("model", "dataset", "model_args", "batch_size", "validation_size",
                 "train_subset", "test_subset", "image_size", "augment", "data_dir")


def builtin_config(**settings) -> CompareConfig:
    """``CompareConfig(workload=BuiltinWorkload(model, dataset, ...), optimizers=..., ...)``
    from ``builtin_config(model=..., batch_size=..., optimizers=..., ...)``."""
    workload = {k: settings.pop(k) for k in WORKLOAD_KEYS if k in settings}
    model = workload.pop("model", "BinaryCNN")
    dataset = workload.pop("dataset", "fashion_mnist")
    model_args = workload.pop("model_args", None)
    return CompareConfig(workload=BuiltinWorkload(model, dataset, model_args, **workload),
                         **settings)
