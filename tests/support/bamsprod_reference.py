"""An independent NumPy reference of BAMSProd, written from the formulas of issue #2.

It deliberately does not import ``larq_bamsprod``: it is the specification the optimizer
classes are checked against. Everything is computed in float64.

.. code-block:: text

    g     = clip(g, -L, L) where g is finite, if a square limit L is given (the overflow
                                   guard of a float32/float16 variable; see square_limit)
    b1    = beta_1(t - 1)          # schedules are evaluated at iterations = t - 1
    m     = b1 * m + (1 - b1) * g
    v     = beta_2 * v + (1 - beta_2) * g^2
    v_hat = max(v_hat, v)
    v_til = clip(v_hat, c * (1 - 1/(gamma*t + 1)), c * (1 + 1/(gamma*t)))
                                   # c = bound_target or mean(v_hat); skipped if None
    eta_t = learning_rate(t - 1)                       # / sqrt(t) if lr_decay="sqrt"
    eta_t *= sqrt(1 - beta_2^t) / (1 - b1^t)           # only if bias_correction
    w     = w - eta_t * m / (sqrt(v_til) + epsilon)
"""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from typing import Callable, Union

import numpy as np

Hyper = Union[float, Callable[[int], float]]
"""A float, or a function of ``iterations`` (the number of updates done so far)."""

# Tolerances in the style of tf-keras' `assertAllCloseAccordingToType` (adam_test.py),
# for 25-step trajectories through the clip, with hyperparameters rounded to the variable's
# dtype (see `optimizers_under_test.reference_kwargs`). Largest errors seen here, both
# classes, fast and reference paths: float16 3e-3 (about three float16 ulps of 1.0),
# float32 4.5e-7, float64 4.4e-16.
TOLERANCES = {
    "float16": {"rtol": 3e-3, "atol": 3e-3},
    "float32": {"rtol": 2e-6, "atol": 2e-6},
    "float64": {"rtol": 1e-12, "atol": 1e-12},
}


def square_limit(dtype) -> float:
    """The largest ``dtype`` value x whose exact square is at most ``finfo(dtype).max``."""
    dtype = np.dtype(dtype)
    largest = Fraction(float(np.finfo(dtype).max))
    x = dtype.type(np.sqrt(np.float64(np.finfo(dtype).max)))
    while Fraction(float(x)) ** 2 > largest:
        x = np.nextafter(x, dtype.type(0))
    return float(x)


def _exact_mean(values: np.ndarray) -> float:
    # np.mean overflows when the sum of finite values exceeds the float64 range.
    mean = np.mean(values)
    if np.isinf(mean) and np.all(np.isfinite(values)):
        mean = float(sum(map(Fraction, values.ravel().tolist())) / values.size)
    return mean


def _at(hyper: Hyper, iterations: int) -> float:
    return float(hyper(iterations)) if callable(hyper) else float(hyper)


@dataclasses.dataclass
class ReferenceState:
    """The reference optimizer's state for one variable, plus what the last step did."""

    w: np.ndarray
    m: np.ndarray
    v: np.ndarray
    v_hat: np.ndarray
    iterations: int = 0
    clipped_low: int = 0  # elements raised to c_l(t) in the last step
    clipped_high: int = 0  # elements lowered to c_u(t) in the last step


def init_state(w0) -> ReferenceState:
    w = np.array(w0, dtype=np.float64)
    zeros = np.zeros_like(w)
    return ReferenceState(w=w, m=zeros.copy(), v=zeros.copy(), v_hat=zeros.copy())


def reference_step(
    state: ReferenceState,
    grad,
    *,
    learning_rate: Hyper = 0.01,
    beta_1: Hyper = 0.9,
    beta_2: float = 0.999,
    epsilon: float = 1e-7,
    gamma: float = 1e-3,
    bound_target: float | str | None = "mean",
    lr_decay: str | None = None,  # the documented default; Algorithm 1's is "sqrt"
    bias_correction: bool = True,
    grad_limit: float | None = None,
) -> ReferenceState:
    """Return the state after one BAMSProd step with (dense) gradient ``grad``.

    ``grad_limit``: clip finite gradients to ``[-grad_limit, grad_limit]`` first (pass
    ``square_limit(dtype)`` to model a ``dtype`` variable's overflow guard).
    """
    g = np.asarray(grad, dtype=np.float64)
    if grad_limit is not None:
        g = np.where(np.isfinite(g), np.clip(g, -grad_limit, grad_limit), g)
    t = state.iterations + 1
    b1 = _at(beta_1, state.iterations)
    m = b1 * state.m + (1.0 - b1) * g
    v = beta_2 * state.v + (1.0 - beta_2) * g**2
    v_hat = np.maximum(state.v_hat, v)
    v_til = v_hat
    clipped_low = clipped_high = 0
    if bound_target is not None:
        c = _exact_mean(v_hat) if bound_target == "mean" else float(bound_target)
        low = c * (1.0 - 1.0 / (gamma * t + 1.0))
        high = c * (1.0 + 1.0 / (gamma * t))
        v_til = np.clip(v_hat, low, high)
        clipped_low = int(np.sum(v_hat < low))
        clipped_high = int(np.sum(v_hat > high))
    eta = _at(learning_rate, state.iterations)
    if lr_decay == "sqrt":
        eta = eta / np.sqrt(t)
    elif lr_decay is not None:
        raise ValueError(lr_decay)
    if bias_correction:
        eta = eta * np.sqrt(1.0 - beta_2**t) / (1.0 - b1**t)
    w = state.w - eta * m / (np.sqrt(v_til) + epsilon)
    return ReferenceState(
        w=w, m=m, v=v, v_hat=v_hat, iterations=t,
        clipped_low=clipped_low, clipped_high=clipped_high,
    )


def densify(values, indices, num_rows: int) -> np.ndarray:
    """The dense gradient of an ``IndexedSlices``: rows of repeated indices are summed."""
    values = np.asarray(values, dtype=np.float64)
    dense = np.zeros((num_rows,) + values.shape[1:], dtype=np.float64)
    np.add.at(dense, np.asarray(indices), values)
    return dense
