"""Larq's ``"ste_sign"`` quantizer for Keras 3, on every backend."""

from __future__ import annotations

import keras
from keras import ops

from larq_bamsprod.arguments import check_float

__all__ = ["SteSign", "get"]


@keras.saving.register_keras_serializable(package="larq_bamsprod.keras3")
class SteSign:
    """Sign with the straight-through estimator, as Larq's ``ste_sign``.

    .. code-block:: text

        forward:  q(x) = +1 if x >= 0 else -1       (sign(0) = +1, as Larq's)
        backward: dq/dx = 1 if |x| <= clip_value else 0

    Args:
      clip_value: where the gradient is cut off, ``> 0``. Defaults to `1.0`.
    """

    precision = 1  # what is_binary_variable reads off a kernel quantized by this

    def __init__(self, clip_value: float = 1.0):
        self.clip_value = check_float("clip_value", clip_value, low_open=0.0)

    def __call__(self, x):
        x = ops.convert_to_tensor(x)
        one = ops.ones_like(x)
        sign = ops.where(x >= 0, one, -one)
        passed = ops.where(ops.abs(x) <= self.clip_value, x, ops.zeros_like(x))
        # sign + 0 exactly forward; the gradient of `passed` (1 inside the clip) backward.
        return ops.stop_gradient(sign) + (passed - ops.stop_gradient(passed))

    def get_config(self):
        return {"clip_value": self.clip_value}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


_NAMED = {"ste_sign": SteSign}


def get(identifier):
    """A quantizer from ``None``, ``"ste_sign"``, a serialized config or a callable."""
    if identifier is None or (callable(identifier) and not isinstance(identifier, type)):
        return identifier
    if isinstance(identifier, str) and identifier in _NAMED:
        return _NAMED[identifier]()
    if isinstance(identifier, dict):
        return keras.saving.deserialize_keras_object(identifier)
    raise ValueError(
        f"unknown quantizer {identifier!r}: pass one of {sorted(_NAMED)}, None or a "
        "callable."
    )
