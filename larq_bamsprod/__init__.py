"""larq_bamsprod: the BAMSProd optimizer for binary neural networks in Larq and Keras.

``import larq_bamsprod`` selects Keras 2 (tf-keras) when TensorFlow has not been imported
yet, as Larq needs; see :mod:`larq_bamsprod._compat`.
"""

from larq_bamsprod import (
    _compat,  # noqa: F401  (must run before anything imports Keras)
    bounds,
    legacy,
    update_rule,
)
from larq_bamsprod.optimizers import DEFAULTS, BAMSProd
from larq_bamsprod.update_rule import bamsprod_update

__version__ = "0.1.0"

__all__ = ["BAMSProd", "DEFAULTS", "bamsprod_update", "bounds", "legacy", "update_rule"]
