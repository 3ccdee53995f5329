"""A binary LSTM cell built from Larq quantizers (Larq itself has no quantized LSTM).

:class:`BinaryLSTMCell` is an LSTM cell for ``tf.keras.layers.RNN`` whose input kernel
``W`` and recurrent kernel ``U`` are binary in the forward pass (``ste_sign``: ``+1`` for
``w >= 0``, else ``-1``; straight-through gradient to the real-valued latent weights,
which ``weight_clip`` keeps in ``[-1, 1]``). Biases and the gates' nonlinearities are
real-valued. With ``binary_activations=True`` the cell's inputs ``x_t`` and the previous
hidden state ``h_{t-1}`` are binarised too before the two products.

.. code-block:: text

    x' = sign(x_t) if binary_activations else x_t
    h' = sign(h_{t-1}) if binary_activations else h_{t-1}
    z  = a_x * (x' @ sign(W)) + a_h * (h' @ sign(U)) + b   # shape (batch, 4 * units)
    i, f, g, o = split(z, 4)                              # Keras' gate order
    c_t = sigmoid(f) * c_{t-1} + sigmoid(i) * tanh(g)
    h_t = sigmoid(o) * tanh(c_t)

``a_x`` and ``a_h`` are fixed scalar scaling factors (the paper's quantization scaling
factor ``alpha``), ``1 / sqrt(fan_in)`` by default: a product of ``n`` terms of size one has
size ``sqrt(n)``, which would saturate every gate at the start of training. They are
constants, not trained, so the only trained quantities inside a kernel are its signs.

The kernels are created the way Larq's quantized layers create theirs (a
``larq.quantized_variable.QuantizedVariable`` carrying the quantizer's ``precision == 1``),
so ``larq.optimizers.Bop.is_binary_variable`` finds them and a ``CaseOptimizer`` gives them
to Bop (or BAMSProd).

Example:

>>> import larq_bamsprod  # before TensorFlow: selects Keras 2
>>> import tensorflow as tf
>>> from larq_bamsprod.harness.rnn import BinaryLSTMCell
>>> layer = tf.keras.layers.RNN(BinaryLSTMCell(8), return_sequences=True)
>>> layer(tf.zeros([2, 5, 3])).shape
TensorShape([2, 5, 8])
"""

from __future__ import annotations

import math

import larq as lq
import tensorflow as tf
from larq.layers_base import BaseLayer

from larq_bamsprod.compat import register_serializable

__all__ = ["BinaryLSTMCell"]


@register_serializable(package="larq_bamsprod")
class BinaryLSTMCell(BaseLayer):
    """LSTM cell with binary (``ste_sign``) input and recurrent kernels.

    Args:
      units: size of the hidden state ``h`` and the cell state ``c``, ``> 0``.
      kernel_quantizer: Larq quantizer of both kernels, with ``precision == 1`` for the
        kernels to count as binary. Defaults to `"ste_sign"`.
      kernel_constraint: constraint on the latent kernels; keeps them where the
        straight-through gradient is not zero. Defaults to `"weight_clip"` (``[-1, 1]``).
      binary_activations: binarise ``x_t`` and ``h_{t-1}`` with ``ste_sign`` as well.
        Defaults to `False` (binary weights, real-valued activations).
      kernel_scale: ``a_x`` and ``a_h``: ``"fan_in"`` for ``1 / sqrt(fan_in)`` of each
        kernel, a float ``> 0`` for both, or ``None`` for 1. Defaults to `"fan_in"`.
      kernel_initializer: initializer of the latent input kernel.
        Defaults to `"glorot_uniform"`.
      recurrent_initializer: initializer of the latent recurrent kernel.
        Defaults to `"orthogonal"`.
      unit_forget_bias: start the forget-gate bias at 1 (Jozefowicz et al., 2015).
        Defaults to `True`.
      **kwargs: ``tf.keras.layers.Layer`` arguments (``name``, ``dtype``, ...).

    Note:
      The paper (Liu et al., 2020, section 5.3) does not say which parts of its "binary
      3-layer LSTM" are binary. This cell binarises the two kernels (the weights the
      optimizers under test act on) and, optionally, the activations entering them.
    """

    def __init__(
        self,
        units: int,
        kernel_quantizer="ste_sign",
        kernel_constraint="weight_clip",
        binary_activations: bool = False,
        kernel_scale: str | float | None = "fan_in",
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        unit_forget_bias: bool = True,
        **kwargs,
    ):
        if isinstance(units, bool) or not isinstance(units, int) or units <= 0:
            raise ValueError(f"units must be a positive integer, received units={units!r}")
        if not (
            kernel_scale is None
            or kernel_scale == "fan_in"
            or (isinstance(kernel_scale, (int, float)) and not isinstance(kernel_scale, bool)
                and kernel_scale > 0)
        ):
            raise ValueError(
                "kernel_scale must be 'fan_in', a float > 0 or None, received "
                f"kernel_scale={kernel_scale!r}"
            )
        input_quantizer = "ste_sign" if binary_activations else None
        super().__init__(input_quantizer=input_quantizer, **kwargs)
        self.units = units
        self.kernel_quantizer = lq.quantizers.get_kernel_quantizer(kernel_quantizer)
        self.kernel_constraint = tf.keras.constraints.get(kernel_constraint)
        self.binary_activations = bool(binary_activations)
        self.kernel_scale = kernel_scale
        self.kernel_initializer = tf.keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = tf.keras.initializers.get(recurrent_initializer)
        self.unit_forget_bias = bool(unit_forget_bias)
        self.state_size = [units, units]
        self.output_size = units

    def _get_quantizer(self, name):
        # Larq's hook: variables named here are created as QuantizedVariables that carry
        # the quantizer (and its precision), exactly as in lq.layers.QuantDense.
        if name in ("kernel", "recurrent_kernel"):
            return self.kernel_quantizer
        return None

    def _scale(self, fan_in: int) -> float:
        if self.kernel_scale is None:
            return 1.0
        if self.kernel_scale == "fan_in":
            return 1.0 / math.sqrt(fan_in)
        return float(self.kernel_scale)

    def build(self, input_shape):
        input_dim = int(input_shape[-1])
        self.kernel = self.add_weight(
            name="kernel",
            shape=(input_dim, 4 * self.units),
            initializer=self.kernel_initializer,
            constraint=self.kernel_constraint,
        )
        self.recurrent_kernel = self.add_weight(
            name="recurrent_kernel",
            shape=(self.units, 4 * self.units),
            initializer=self.recurrent_initializer,
            constraint=self.kernel_constraint,
        )

        def bias_initializer(shape, dtype=None, **kwargs):
            forget = tf.ones if self.unit_forget_bias else tf.zeros
            return tf.concat(
                [
                    tf.zeros([self.units], dtype),
                    forget([self.units], dtype),
                    tf.zeros([2 * self.units], dtype),
                ],
                axis=0,
            )

        self.bias = self.add_weight(
            name="bias", shape=(4 * self.units,), initializer=bias_initializer
        )
        self.input_scale = self._scale(input_dim)
        self.recurrent_scale = self._scale(self.units)
        self.built = True

    def call(self, inputs, states, training=None):
        h_prev, c_prev = states[0], states[1]
        if self.input_quantizer is not None:
            inputs = self.input_quantizer(inputs)
            h_prev = self.input_quantizer(h_prev)
        with lq.context.quantized_scope(True):
            # Inside this scope a QuantizedVariable reads as kernel_quantizer(latent).
            kernel = tf.convert_to_tensor(self.kernel)
            recurrent_kernel = tf.convert_to_tensor(self.recurrent_kernel)
        z = (
            self.input_scale * tf.matmul(inputs, kernel)
            + self.recurrent_scale * tf.matmul(h_prev, recurrent_kernel)
            + self.bias
        )
        i, f, g, o = tf.split(z, 4, axis=-1)
        c = tf.sigmoid(f) * c_prev + tf.sigmoid(i) * tf.tanh(g)
        h = tf.sigmoid(o) * tf.tanh(c)
        return h, [h, c]

    def get_initial_state(self, inputs=None, batch_size=None, dtype=None):
        dtype = dtype or self.compute_dtype
        return [tf.zeros([batch_size, self.units], dtype) for _ in range(2)]

    def get_config(self):
        config = super().get_config()
        config.pop("input_quantizer", None)  # implied by binary_activations
        config.update(
            {
                "units": self.units,
                "kernel_quantizer": lq.quantizers.serialize(self.kernel_quantizer),
                "kernel_constraint": tf.keras.constraints.serialize(self.kernel_constraint),
                "binary_activations": self.binary_activations,
                "kernel_scale": self.kernel_scale,
                "kernel_initializer": tf.keras.initializers.serialize(self.kernel_initializer),
                "recurrent_initializer": tf.keras.initializers.serialize(
                    self.recurrent_initializer
                ),
                "unit_forget_bias": self.unit_forget_bias,
            }
        )
        return config
