"""Larq's ``"weight_clip"`` constraint for Keras 3."""

from __future__ import annotations

import keras
from keras import ops

from larq_bamsprod.arguments import check_float

__all__ = ["WeightClip", "get"]


@keras.saving.register_keras_serializable(package="larq_bamsprod.keras3")
class WeightClip(keras.constraints.Constraint):
    """Clips weights to ``[-clip_value, clip_value]`` after each update, as Larq's
    ``weight_clip`` (latent weights beyond the STE's range would stop moving).

    Args:
      clip_value: the bound, ``> 0``. Defaults to `1.0`.
    """

    def __init__(self, clip_value: float = 1.0):
        self.clip_value = check_float("clip_value", clip_value, low_open=0.0)

    def __call__(self, w):
        return ops.clip(w, -self.clip_value, self.clip_value)

    def get_config(self):
        return {"clip_value": self.clip_value}


def get(identifier):
    """``"weight_clip"``, or anything ``keras.constraints.get`` accepts."""
    if identifier == "weight_clip":
        return WeightClip()
    return keras.constraints.get(identifier)
