"""The projection range [c_l(t), c_u(t)] of BAMSProd's second moment.

The paper (Liu et al., 2020, section 4) asks only that c_l be non-decreasing from 0, c_u
non-increasing from infinity, and that both converge to one target tied to the
quantization error. It gives neither the functions nor a computable target. The choices
made here, and why:

* **Shape.** ``c_l(t) = c * (1 - 1 / (gamma * t + 1))`` and
  ``c_u(t) = c * (1 + 1 / (gamma * t))``: the bound functions of AdaBound/AMSBound (Luo
  et al., ICLR 2019), scaled by the target ``c``. ``c_l(0) = 0``, ``c_u(0^+) = inf``, both
  monotone, both reach ``c``; ``gamma`` sets how fast the range closes (about ``1/gamma``
  steps). ``c_l(t) <= c <= c_u(t)`` for every ``t > 0``.
* **Target.** The paper's limit ``L_inf D_inf sum_t sqrt(||w_t - alpha*||^2_H)`` needs the
  optimum ``alpha*`` and the horizon ``T``, neither known online, and it is not in the
  units of ``v`` (squared gradients). The default, ``bound_target="mean"``, is the mean of
  ``v_hat`` over each variable (layer), recomputed every step: the scale of the second
  moment itself. As the range closes, every coordinate of a layer is divided by the same
  ``sqrt(mean(v_hat))``: the step becomes layer-wise normalised momentum SGD, so the
  per-coordinate learning rates that the paper blames for accumulating the STE's
  quantization error are pulled together, while the layer keeps Adam's scale invariance.
  A float ``bound_target=c`` uses one fixed target for every variable; ``None`` skips the
  projection (AMSGrad, with the step size set by ``lr_decay``).
"""

from __future__ import annotations

from typing import Any

BOUND_TARGETS = ("mean",)
"""The names accepted for an adaptive ``bound_target``."""


def bound_scales(step: Any, gamma: Any) -> tuple[Any, Any]:
    """Return ``(1 - 1/(gamma*t + 1), 1 + 1/(gamma*t))`` for step ``t >= 1``.

    Multiplying the target ``c`` by these gives ``c_l(t)`` and ``c_u(t)``. They depend on
    the step only, so optimizers compute them once per step, not once per variable.
    Plain arithmetic: ``step`` and ``gamma`` may be tensors of TensorFlow or of any Keras 3
    backend.
    """
    gamma_t = gamma * step
    return 1.0 - 1.0 / (gamma_t + 1.0), 1.0 + 1.0 / gamma_t
