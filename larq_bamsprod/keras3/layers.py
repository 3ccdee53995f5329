"""The binary layers BAMSProd and Bop need, with Larq's argument names.

``QuantDense`` and ``QuantConv2D`` are Keras 3's ``Dense`` and ``Conv2D`` plus Larq's
``input_quantizer`` and ``kernel_quantizer`` (``"ste_sign"`` or a callable), and
``kernel_constraint`` accepts ``"weight_clip"``. A Larq model is a copy-edit away:

.. code-block:: python

    # Larq:   lq.layers.QuantConv2D(32, 3, input_quantizer="ste_sign", ...)
    from larq_bamsprod.keras3 import layers
    layers.QuantConv2D(32, 3, input_quantizer="ste_sign", kernel_quantizer="ste_sign",
                       kernel_constraint="weight_clip", use_bias=False)

A kernel whose quantizer has ``precision = 1`` is marked binary for
:func:`larq_bamsprod.keras3.is_binary_variable`. Larq's ``pad_values`` and ``metrics`` are
not supported.
"""

from __future__ import annotations

import keras
from keras import ops

from larq_bamsprod.keras3 import constraints, quantizers

__all__ = ["QuantConv2D", "QuantDense"]


class _Quantized:
    """The quantizers of a ``QuantDense`` or ``QuantConv2D`` (mixin)."""

    def _set_quantizers(self, input_quantizer, kernel_quantizer):
        self.input_quantizer = quantizers.get(input_quantizer)
        self.kernel_quantizer = quantizers.get(kernel_quantizer)

    def _mark_kernel(self):
        precision = getattr(self.kernel_quantizer, "precision", None)
        if precision is not None:
            self.kernel.precision = precision

    def _quantize(self, inputs, kernel):
        if self.input_quantizer is not None:
            inputs = self.input_quantizer(inputs)
        if self.kernel_quantizer is not None:
            kernel = self.kernel_quantizer(kernel)
        return inputs, kernel

    def _quantizer_config(self) -> dict:
        return {name: keras.saving.serialize_keras_object(getattr(self, name))
                for name in ("input_quantizer", "kernel_quantizer")}


@keras.saving.register_keras_serializable(package="larq_bamsprod.keras3")
class QuantDense(_Quantized, keras.layers.Dense):
    """``keras.layers.Dense`` with Larq's ``input_quantizer`` and ``kernel_quantizer``."""

    def __init__(self, units, activation=None, use_bias=True, input_quantizer=None,
                 kernel_quantizer=None, kernel_constraint=None, **kwargs):
        super().__init__(units, activation=activation, use_bias=use_bias,
                         kernel_constraint=constraints.get(kernel_constraint), **kwargs)
        self._set_quantizers(input_quantizer, kernel_quantizer)

    def build(self, input_shape):
        super().build(input_shape)
        self._mark_kernel()

    def call(self, inputs, training=None):
        inputs, kernel = self._quantize(inputs, self.kernel)
        outputs = ops.matmul(inputs, kernel)
        if self.use_bias:
            outputs = ops.add(outputs, self.bias)
        if self.activation is not None:
            outputs = self.activation(outputs)
        return outputs

    def get_config(self):
        return {**super().get_config(), **self._quantizer_config()}


@keras.saving.register_keras_serializable(package="larq_bamsprod.keras3")
class QuantConv2D(_Quantized, keras.layers.Conv2D):
    """``keras.layers.Conv2D`` with Larq's ``input_quantizer`` and ``kernel_quantizer``."""

    def __init__(self, filters, kernel_size, input_quantizer=None, kernel_quantizer=None,
                 kernel_constraint=None, **kwargs):
        super().__init__(filters, kernel_size,
                         kernel_constraint=constraints.get(kernel_constraint), **kwargs)
        self._set_quantizers(input_quantizer, kernel_quantizer)

    def build(self, input_shape):
        super().build(input_shape)
        self._mark_kernel()

    def convolution_op(self, inputs, kernel):
        inputs, kernel = self._quantize(inputs, kernel)
        return super().convolution_op(inputs, kernel)

    def get_config(self):
        return {**super().get_config(), **self._quantizer_config()}
