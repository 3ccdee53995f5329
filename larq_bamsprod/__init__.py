"""larq_bamsprod: the BAMSProd optimizer for binary neural networks in Larq and Keras.

Two families of classes, each imported only when used (PEP 562), so ``import
larq_bamsprod`` imports neither TensorFlow nor Keras:

* the tf.keras classes (``larq_bamsprod.BAMSProd``, :mod:`larq_bamsprod.legacy`), for Larq
  and Keras 2 (tf-keras): ``pip install 'larq-bamsprod[tensorflow]'``. ``import
  larq_bamsprod`` sets ``TF_USE_LEGACY_KERAS=1`` when tf-keras is installed and TensorFlow
  has not been imported yet, as Larq needs (see :mod:`larq_bamsprod.compat`); using these
  classes without tf-keras raises an ``ImportError`` that says what to install;
* :mod:`larq_bamsprod.keras3`: BAMSProd and Bop for Keras 3 on any backend, with the
  binary layers to use them: ``pip install 'larq-bamsprod[keras3]'``.

The comparison harness (``larq-bamsprod`` commands, models, data, larq-zoo recipes) lives
in :mod:`larq_bamsprod.harness`, installed with ``pip install 'larq-bamsprod[harness]'``;
nothing here imports it.
"""

import importlib

# Sets TF_USE_LEGACY_KERAS before anything imports TensorFlow; imports no TensorFlow itself.
from larq_bamsprod import compat  # noqa: F401
from larq_bamsprod.arguments import DEFAULTS

__version__ = "0.3.0"

_SUBMODULES = ("bounds", "hyperparameters", "keras3", "legacy", "optimizers", "schedules",
               "update_rule")
_ATTRIBUTES = {"BAMSProd": "optimizers", "bamsprod_update": "update_rule"}

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


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in _ATTRIBUTES:
        module = importlib.import_module(f"{__name__}.{_ATTRIBUTES[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__) | set(_SUBMODULES))
