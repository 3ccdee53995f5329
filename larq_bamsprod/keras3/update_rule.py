"""BAMSProd's update rule in ``keras.ops``: one pure function, for every Keras 3 backend.

The same rule, guards and scalar handling as :mod:`larq_bamsprod.update_rule` (the tf.keras
classes'), written with backend-agnostic ops; the tests check both against one NumPy
reference (``tests/support/bamsprod_reference.py``).
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import keras
import ml_dtypes
import numpy as np
from keras import ops

from larq_bamsprod.bounds import bound_scales


@functools.cache
def square_limit(dtype: str) -> float:
    """The largest value of ``dtype`` whose square is finite in ``dtype`` (about 1.8e19 for
    float32, 255.9 for float16). Finite gradients beyond it are clipped to it."""
    np_dtype = np.dtype(getattr(ml_dtypes, dtype, dtype))
    bits = np.dtype(f"uint{8 * np_dtype.itemsize}")
    largest = float(ml_dtypes.finfo(np_dtype).max)
    x = np.array(np.sqrt(largest), np_dtype)
    while float(x) ** 2 > largest:
        x = (x.view(bits) - 1).view(np_dtype)  # the next smaller positive value
    return float(x)


def compute_dtype(dtype) -> str:
    """The dtype the step scalars are computed in: ``dtype``, but at least float32 (in
    float16 ``t`` overflows after 65,504 steps; in bfloat16 ``beta_2 = 0.999`` is 1)."""
    dtype = keras.backend.standardize_dtype(dtype)
    return "float32" if dtype in ("float16", "bfloat16") else dtype


class StepScalars(NamedTuple):
    """Quantities that depend on the step only, in the variable's dtype (computed in at
    least float32); see :class:`larq_bamsprod.update_rule.StepScalars`."""

    one_minus_beta_1: Any
    one_minus_beta_2: Any
    epsilon: Any
    step_size: Any  # eta_t, with any sqrt(t) decay and bias correction folded in
    lower_scale: Any  # c_l(t) / c, or None without projection
    upper_scale: Any  # c_u(t) / c
    target: Any  # float bound target c, or None for the adaptive target


def step_scalars(*, step, learning_rate, beta_1, beta_2: float, epsilon: float, gamma: float,
                 bound_target, lr_decay: str | None, bias_correction: bool,
                 dtype) -> StepScalars:
    """The per-step scalars of :func:`bamsprod_update` for a ``dtype`` variable.

    ``step`` is ``t = iterations + 1``; ``learning_rate`` and ``beta_1`` are the values at
    this step (schedules already evaluated).
    """
    work = compute_dtype(dtype)
    t = ops.cast(step, work)
    b1 = ops.cast(beta_1, work) if ops.is_tensor(beta_1) else ops.convert_to_tensor(beta_1, work)
    b2 = ops.convert_to_tensor(beta_2, work)
    step_size = ops.cast(learning_rate, work)
    if lr_decay == "sqrt":
        step_size = step_size / ops.sqrt(t)
    if bias_correction:
        step_size = step_size * ops.sqrt(1.0 - ops.power(b2, t)) / (1.0 - ops.power(b1, t))
    lower_scale = upper_scale = target = None
    if bound_target is not None:
        lower_scale, upper_scale = bound_scales(t, ops.convert_to_tensor(gamma, work))
        if not isinstance(bound_target, str):
            target = ops.convert_to_tensor(bound_target, dtype)
    scalars = (1.0 - b1, 1.0 - b2, ops.convert_to_tensor(epsilon, work), step_size,
               lower_scale, upper_scale)
    scalars = tuple(None if x is None else ops.cast(x, dtype) for x in scalars)
    return StepScalars(*scalars, target=target)


def _mean_without_overflow(v_hat):
    # Only used when the plain mean overflowed: scale by the largest element first.
    largest = ops.max(v_hat)
    scaled = ops.mean(v_hat / largest) * largest
    return ops.where(ops.isfinite(largest), scaled, largest)


def bamsprod_update(grad, m, v, v_hat, scalars: StepScalars):
    """One BAMSProd step for one variable; returns ``(delta, m_new, v_new, v_hat_new)``,
    and the caller applies ``w <- w - delta``.

    .. code-block:: text

        g     = clip(g, -L, L) where g is finite, L = square_limit(dtype)  # g^2 stays finite
        m     = m + (g - m) * (1 - b1)
        v     = v + (g^2 - v) * (1 - b2)
        v_hat = max(v_hat, v)
        v_til = clip(v_hat, c * lower_scale, c * upper_scale)   # c = target or mean(v_hat)
        delta = step_size * m / (sqrt(v_til) + epsilon)        # 0 where the divisor is 0
    """
    limit = square_limit(keras.backend.standardize_dtype(grad.dtype))
    grad = ops.where(ops.isfinite(grad), ops.clip(grad, -limit, limit), grad)
    m = m + (grad - m) * scalars.one_minus_beta_1
    v = v + (ops.square(grad) - v) * scalars.one_minus_beta_2
    v_hat = ops.maximum(v_hat, v)
    v_til = v_hat
    if scalars.lower_scale is not None:
        target = scalars.target
        if target is None:
            mean = ops.mean(v_hat)
            target = ops.cond(ops.isinf(mean), lambda: _mean_without_overflow(v_hat),
                              lambda: mean)
        v_til = ops.minimum(ops.maximum(v_hat, target * scalars.lower_scale),
                            target * scalars.upper_scale)
    # 0/0 (a coordinate that never had a gradient, with an epsilon of 0 in the dtype) is a
    # step of 0, not NaN.
    delta = ops.divide_no_nan(scalars.step_size * m, ops.sqrt(v_til) + scalars.epsilon)
    return delta, m, v, v_hat
