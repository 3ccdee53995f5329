"""Which optimizer trains which variable: binary kernels one, everything else another.

Keras 3's ``keras.optimizers.MultiOptimizer`` is the native replacement of Larq's
``CaseOptimizer``; these tell it which variables are binary:

.. code-block:: python

    from larq_bamsprod.keras3 import BinaryRouter, Bop
    optimizer = keras.optimizers.MultiOptimizer(BinaryRouter(Bop(), keras.optimizers.Adam()))
    # or with a lambda (BinaryRouter is the registered, tested-in-.keras-files form):
    optimizer = keras.optimizers.MultiOptimizer(
        lambda v: bop if is_binary_variable(v) else adam)
"""

from __future__ import annotations

import keras

__all__ = ["BinaryRouter", "is_binary_variable"]


def is_binary_variable(variable) -> bool:
    """True for a variable marked ``precision == 1``, as Larq's ``Bop.is_binary_variable``.

    :mod:`larq_bamsprod.keras3.layers` marks a kernel so when its ``kernel_quantizer`` has
    ``precision = 1`` (``"ste_sign"``); mark your own with ``variable.precision = 1``.
    """
    return getattr(variable, "precision", 32) == 1


def _check_optimizer(name: str, value) -> None:
    if not isinstance(value, keras.optimizers.Optimizer):
        raise TypeError(
            f"{name} must be a Keras 3 optimizer (keras.optimizers.Optimizer), received "
            f"{name}={value!r}."
        )


@keras.saving.register_keras_serializable(package="larq_bamsprod.keras3")
class BinaryRouter:
    """``binary_optimizer`` for binary variables, ``default_optimizer`` for the rest: the
    map of a ``keras.optimizers.MultiOptimizer``, saved with it in ``.keras`` files.

    Args:
      binary_optimizer: trains the variables :func:`is_binary_variable` accepts (Bop).
      default_optimizer: trains every other variable (Adam, BAMSProd, ...).
    """

    def __init__(self, binary_optimizer, default_optimizer):
        _check_optimizer("binary_optimizer", binary_optimizer)
        _check_optimizer("default_optimizer", default_optimizer)
        self.binary_optimizer = binary_optimizer
        self.default_optimizer = default_optimizer

    def __call__(self, variable):
        if is_binary_variable(variable):
            return self.binary_optimizer
        return self.default_optimizer

    def values(self):
        # MultiOptimizer lists these first, then default_optimizer: a fixed order for its
        # variables, hence for saving and loading them.
        return [self.binary_optimizer]

    def get_config(self):
        return {
            "binary_optimizer": keras.saving.serialize_keras_object(self.binary_optimizer),
            "default_optimizer": keras.saving.serialize_keras_object(self.default_optimizer),
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        return cls(**{key: keras.saving.deserialize_keras_object(value, custom_objects)
                      for key, value in config.items()})
