"""larq_bamsprod: the BAMSProd optimizer for binary neural networks in Larq and Keras.

``import larq_bamsprod`` selects Keras 2 (tf-keras) when TensorFlow has not been imported
yet, as Larq needs; see :mod:`larq_bamsprod.compat`.

This package is the optimizer library and needs only TensorFlow (with tf-keras) and NumPy.
The comparison harness (``larq-bamsprod`` commands, models, data, larq-zoo recipes) lives
in :mod:`larq_bamsprod.harness`, installed with ``pip install 'larq-bamsprod[harness]'``;
nothing here imports it.
"""

# isort: off
from larq_bamsprod import compat  # noqa: F401  (must run before anything imports Keras)

# isort: on
from larq_bamsprod import (
    bounds,
    hyperparameters,
    legacy,
    schedules,
    update_rule,
)
from larq_bamsprod.optimizers import DEFAULTS, BAMSProd
from larq_bamsprod.update_rule import bamsprod_update

__version__ = "0.3.0"

__all__ = [
    "BAMSProd",
    "DEFAULTS",
    "bamsprod_update",
    "bounds",
    "hyperparameters",
    "legacy",
    "schedules",
    "update_rule",
]
