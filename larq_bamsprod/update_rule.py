"""BAMSProd's update rule: one pure function on tensors.

Every optimizer class (``larq_bamsprod.BAMSProd``, ``larq_bamsprod.legacy.BAMSProd``) calls
:func:`bamsprod_update`; the tests mirror it with an independent NumPy reference.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from larq_bamsprod.bounds import bound_scales
from larq_bamsprod.hyperparameters import cast_exact


@functools.cache
def square_limit(dtype) -> float:
    """The largest value of ``dtype`` whose square is finite in ``dtype``.

    About 1.8e19 for float32, 255.9 for float16, 1.3e154 for float64. Finite gradients
    beyond it are clipped to it (see :func:`bamsprod_update`).
    """
    dtype = tf.as_dtype(dtype)
    np_dtype = dtype.as_numpy_dtype
    x = np_dtype(np.sqrt(np.float64(dtype.max)))
    while not np.isfinite(np.float64(x) * np.float64(x)) or float(x) ** 2 > float(dtype.max):
        x = np.nextafter(x, np_dtype(0))
    return float(x)


def _mean_without_overflow(v_hat: tf.Tensor) -> tf.Tensor:
    # Only called when the plain mean overflowed: scale by the largest element first.
    largest = tf.reduce_max(v_hat)
    scaled = tf.reduce_mean(v_hat / largest) * largest
    return tf.where(tf.math.is_finite(largest), scaled, largest)


def compute_dtype(dtype) -> tf.DType:
    """The dtype the step scalars are computed in for a ``dtype`` variable: ``dtype``
    itself, but at least float32.

    In float16 ``t`` overflows after 65,504 steps (and ``1/sqrt(t)`` with it); in bfloat16
    ``beta_2 = 0.999`` rounds to 1, so ``v`` would never move.
    """
    dtype = tf.as_dtype(dtype).base_dtype
    return tf.float32 if dtype.is_floating and dtype.size < 4 else dtype


class StepScalars(NamedTuple):
    """Quantities that depend on the step only; computed once per step and dtype, in at
    least float32 (:func:`compute_dtype`), then cast to the variable's dtype."""

    one_minus_beta_1: tf.Tensor  # 1 - beta_1(t), beta_1 already evaluated if a schedule
    one_minus_beta_2: tf.Tensor  # 1 - beta_2: 1e-3 survives bfloat16, 0.999 does not
    epsilon: tf.Tensor
    step_size: tf.Tensor  # eta_t, with any sqrt(t) decay and bias correction folded in
    lower_scale: tf.Tensor | None  # c_l(t) / c, or None without projection
    upper_scale: tf.Tensor | None  # c_u(t) / c
    target: tf.Tensor | None  # float bound target c, or None for the adaptive target


def step_scalars(
    *,
    step: tf.Tensor,
    learning_rate: tf.Tensor,
    beta_1: tf.Tensor,
    beta_2: tf.Tensor,
    epsilon: tf.Tensor,
    gamma: tf.Tensor,
    bound_target: float | str | None,
    lr_decay: str | None,
    bias_correction: bool,
    dtype: tf.DType,
) -> StepScalars:
    """Compute the per-step scalars of :func:`bamsprod_update` for a ``dtype`` variable.

    ``step`` is ``t = iterations + 1``; ``learning_rate`` and ``beta_1`` are the values at
    this step (schedules already evaluated). Everything is computed in
    ``compute_dtype(dtype)`` (float32 for float16 and bfloat16 variables) and only the
    results are cast to ``dtype``.
    """
    work = compute_dtype(dtype)
    t = tf.cast(step, work)
    lr = cast_exact(learning_rate, work)
    b1 = cast_exact(beta_1, work)
    b2 = cast_exact(beta_2, work)
    step_size = lr
    if lr_decay == "sqrt":
        step_size = step_size / tf.sqrt(t)
    if bias_correction:
        # Keras' Adam convention: fold both corrections into the step size. With a
        # scheduled beta_1, beta_1(t)^t is used, as Keras does for its schedules.
        step_size = step_size * tf.sqrt(1.0 - tf.pow(b2, t)) / (1.0 - tf.pow(b1, t))
    lower_scale = upper_scale = target = None
    if bound_target is not None:
        lower_scale, upper_scale = bound_scales(t, cast_exact(gamma, work))
        if not isinstance(bound_target, str):
            target = cast_exact(bound_target, dtype)
    scalars = (1.0 - b1, 1.0 - b2, cast_exact(epsilon, work), step_size, lower_scale,
               upper_scale)
    if work != dtype:
        scalars = tuple(None if x is None else tf.cast(x, dtype) for x in scalars)
    return StepScalars(*scalars, target=target)


def dense_gradient(grad, variable) -> tf.Tensor:
    """``grad`` as a tensor of ``variable``'s dtype and shape: what every path takes.

    Gradients enter the optimizers here, once. A list of numbers or tensors (tf-keras'
    gradient aggregation can hand one over) becomes a tensor; a gradient whose shape
    broadcasts to the variable's (``[1]`` for a ``[1, 1]`` kernel, which Keras' Adam
    accepts) is broadcast to it, and one that does not broadcast is refused by
    ``tf.broadcast_to``. A tensor of the variable's dtype and static shape passes through
    without any op.
    """
    grad = tf.convert_to_tensor(grad, variable.dtype.base_dtype)
    if grad.shape.is_fully_defined() and grad.shape == variable.shape:
        return grad
    if grad.shape.is_fully_defined() and variable.shape.is_fully_defined():
        try:
            fits = tf.broadcast_static_shape(grad.shape, variable.shape) == variable.shape
        except ValueError:
            fits = False
        if not fits:
            raise ValueError(
                f"the gradient of variable {variable.name!r} has shape {grad.shape}, which "
                f"does not broadcast to the variable's shape {variable.shape}; pass a "
                "gradient of the variable's shape."
            )
    return tf.broadcast_to(grad, tf.shape(variable))


def bamsprod_update(
    grad: tf.Tensor,
    m: tf.Tensor,
    v: tf.Tensor,
    v_hat: tf.Tensor,
    scalars: StepScalars,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    """One BAMSProd step for one variable.

    Returns ``(delta, m_new, v_new, v_hat_new)``; the caller applies ``w <- w - delta``.

    .. code-block:: text

        g     = clip(g, -L, L) where g is finite, L = square_limit(dtype)  # g^2 stays finite
        m     = b1 * m + (1 - b1) * g
        v     = b2 * v + (1 - b2) * g^2
        v_hat = max(v_hat, v)
        v_til = clip(v_hat, c * lower_scale, c * upper_scale)   # c = target or mean(v_hat)
        delta = step_size * m / (sqrt(v_til) + epsilon)        # 0 where the divisor is 0

    ``sqrt(v_til) + epsilon`` is 0 only where no gradient has been seen yet (then ``m``
    is 0 too) and ``epsilon`` is 0 or rounds to 0 in the variable's dtype: that step is 0,
    not ``0/0 = NaN``.

    Overflow guards, both inactive for ordinary values: a finite gradient whose square
    would overflow the dtype (``|g| > ~1.8e19`` in float32) is clipped to the largest
    magnitude whose square is finite, so ``m`` and ``v`` agree on its scale and the step
    stays bounded, as Adam's is; NaN and Inf pass through unchanged. If the sum behind
    ``mean(v_hat)`` overflows although every element is finite, the mean is taken after
    scaling by ``max(v_hat)``.
    """
    limit = square_limit(grad.dtype)
    grad = tf.where(tf.math.is_finite(grad), tf.clip_by_value(grad, -limit, limit), grad)
    m = m + (grad - m) * scalars.one_minus_beta_1
    v = v + (tf.square(grad) - v) * scalars.one_minus_beta_2
    v_hat = tf.maximum(v_hat, v)
    v_til = v_hat
    if scalars.lower_scale is not None:
        target = scalars.target
        if target is None:
            target = tf.reduce_mean(v_hat)
            target = tf.cond(
                tf.math.is_inf(target), lambda: _mean_without_overflow(v_hat), lambda: target
            )
        v_til = tf.minimum(
            tf.maximum(v_hat, target * scalars.lower_scale), target * scalars.upper_scale
        )
    # 0/0 (a coordinate that never had a gradient, with epsilon=0 or an epsilon that
    # rounds to 0 in float16) is a step of 0, not NaN.
    delta = tf.math.divide_no_nan(scalars.step_size * m, tf.sqrt(v_til) + scalars.epsilon)
    return delta, m, v, v_hat
