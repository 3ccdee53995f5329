"""A binary LSTM cell built from Larq quantizers (Larq itself has no quantized LSTM), and the
binary LSTM language model the harness registers as ``BinaryLSTM``.

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
>>> from larq_bamsprod.harness.catalogue.rnn import BinaryLSTMCell
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
from larq_bamsprod.harness.workload import check_positive_int

__all__ = ["BinaryLSTMCell", "binary_lstm"]


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


class _ClippedModel(tf.keras.Model):
    """A functional model whose training step clips the gradients by their global norm.

    Every optimizer compared on the graph gets the same clipping, as the graph's loss and
    schedule are the same for all; ``clip_norm=None`` is Keras' own step.
    """

    clip_norm: float | None = None

    def train_step(self, data):
        if not self.clip_norm:
            return super().train_step(data)
        x, y = data
        variables = self.trainable_variables
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(x, y, y_pred)
            # Under mixed precision the optimizer is a LossScaleOptimizer.
            scaled = (self.optimizer.get_scaled_loss(loss)
                      if hasattr(self.optimizer, "get_scaled_loss") else loss)
        grads = tape.gradient(scaled, variables)
        if hasattr(self.optimizer, "get_unscaled_gradients"):
            grads = self.optimizer.get_unscaled_gradients(grads)
        grads, _ = tf.clip_by_global_norm(grads, self.clip_norm)
        self.optimizer.apply_gradients(zip(grads, variables))
        return self.compute_metrics(x, y, y_pred, None)


def binary_lstm(input_shape: tuple[int], num_classes: int, hidden: int = 128,
                embedding: int | None = None, layers: int = 3, seq_len: int = 35,
                softmax_dim: int | None = None, binary_activations: bool = False,
                dropout: float = 0.0, clip_norm: float | None = 5.0) -> tf.keras.Model:
    """Binary LSTM language model: embedding, ``layers`` binary LSTMs, softmax over words.

    ``Embedding(num_classes, embedding) - [Dropout - RNN(BinaryLSTMCell(hidden))] x layers
    - Dropout - [Dense(softmax_dim)] - Dense(num_classes) - softmax``: the embedding, the
    optional projection and the output layer are real-valued; the LSTMs' input and recurrent
    kernels are binary (:class:`BinaryLSTMCell`). The output is the next word's distribution
    at every position, ``(batch, seq_len, num_classes)``, in float32. Windows are stateless:
    every one starts from a zero state.

    Args:
        input_shape: ``(seq_len,)``, token ids per window.
        num_classes: Vocabulary size.
        hidden: Units of every LSTM. Defaults to `128`.
        embedding: Embedding size. Defaults to `None` (``hidden``).
        layers: Number of binary LSTM layers. Defaults to `3` (the paper's).
        seq_len: Tokens per window (truncated BPTT); the data are cut to it. Defaults to `35`.
        softmax_dim: A real-valued linear projection to this size before the output layer
            (a cheaper 10k-way softmax on CPUs). Defaults to `None` (none).
        binary_activations: Also binarise the LSTMs' inputs and hidden states. Defaults to
            `False`.
        dropout: Dropout rate before every LSTM and before the output. Defaults to `0.0`.
        clip_norm: Clip the gradients by this global norm in every training step, the same
            for every optimizer (``None`` or ``0``: no clipping). Defaults to `5.0`.

    Returns:
        An uncompiled ``tf.keras.Model``.

    Note:
        The paper (section 5.3) gives neither the sizes nor the clipping of its binary
        3-layer LSTM; these defaults are a CPU-sized model with the usual PTB clipping.
    """
    for name, value in (("hidden", hidden), ("layers", layers), ("seq_len", seq_len)):
        check_positive_int(name, value)
    for name, value in (("embedding", embedding), ("softmax_dim", softmax_dim)):
        if value is not None:
            check_positive_int(name, value)
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not (
            0 <= dropout < 1):
        raise ValueError(f"dropout must be in [0, 1), received dropout={dropout!r}")
    if clip_norm is not None and (isinstance(clip_norm, bool) or not isinstance(
            clip_norm, (int, float)) or clip_norm < 0):
        raise ValueError(f"clip_norm must be a number >= 0 or None, received "
                         f"clip_norm={clip_norm!r}")
    if tuple(input_shape) != (seq_len,):
        raise ValueError(f"input_shape must be (seq_len,) = ({seq_len},), received "
                         f"input_shape={tuple(input_shape)!r}")
    tokens = tf.keras.Input(shape=(seq_len,), dtype=tf.int32)
    x = tf.keras.layers.Embedding(
        num_classes, embedding or hidden,
        embeddings_initializer=tf.keras.initializers.RandomUniform(-0.1, 0.1),
        name="embedding")(tokens)
    for k in range(layers):
        if dropout:
            x = tf.keras.layers.Dropout(dropout)(x)
        cell = BinaryLSTMCell(hidden, binary_activations=binary_activations,
                              name=f"binary_lstm_cell_{k}")
        x = tf.keras.layers.RNN(cell, return_sequences=True, name=f"binary_lstm_{k}")(x)
    if dropout:
        x = tf.keras.layers.Dropout(dropout)(x)
    if softmax_dim:
        x = tf.keras.layers.Dense(softmax_dim, name="projection")(x)
    x = tf.keras.layers.Dense(num_classes, name="logits")(x)
    # float32 so that mixed precision keeps a stable softmax, as the image models do
    probabilities = tf.keras.layers.Activation("softmax", dtype="float32", name="softmax")(x)
    model = _ClippedModel(tokens, probabilities, name="BinaryLSTM")
    model.clip_norm = float(clip_norm) if clip_norm else None
    return model
