"""AdaBound and AMSBound (Luo et al., ICLR 2019) for ``tf.keras.optimizers.legacy``.

Both classes subclass ``tf.keras.optimizers.legacy.Optimizer`` (Bop's base class), so they
also fit in Larq's ``CaseOptimizer``. The update rule is the pure function
:func:`adabound_update`; the per-step scalars come from :func:`adabound_step_scalars`, once
per step and dtype (``_prepare_local``), not once per variable.
"""

from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf

from larq_bamsprod import hyperparameters as hp
from larq_bamsprod.bounds import bound_scales
from larq_bamsprod.compat import LearningRateSchedule, LegacyOptimizer, register_serializable

__all__ = ["AMSBound", "AdaBound", "AdaBoundScalars", "adabound_step_scalars", "adabound_update"]

_SCHEDULABLE = ("learning_rate",)


class AdaBoundScalars(NamedTuple):
    """Quantities that depend on the step only; computed once per step and dtype."""

    beta_1: tf.Tensor
    beta_2: tf.Tensor
    epsilon: tf.Tensor
    weight_decay: tf.Tensor | None  # None when weight_decay == 0: no op is built
    step_size: tf.Tensor  # lr(t) * sqrt(1 - beta_2^t) / (1 - beta_1^t)
    lower_bound: tf.Tensor  # final_lr(t) * (1 - 1 / (gamma * t + 1))
    upper_bound: tf.Tensor  # final_lr(t) * (1 + 1 / (gamma * t))


def adabound_step_scalars(
    *,
    step: tf.Tensor,
    learning_rate: tf.Tensor,
    base_learning_rate: tf.Tensor,
    beta_1: tf.Tensor,
    beta_2: tf.Tensor,
    epsilon: tf.Tensor,
    final_lr: tf.Tensor,
    gamma: tf.Tensor,
    weight_decay: float,
    dtype: tf.DType,
) -> AdaBoundScalars:
    """Compute the per-step scalars of :func:`adabound_update` in ``dtype``.

    ``step`` is ``t = iterations + 1``; ``learning_rate`` is the value at this step (a
    schedule already evaluated), ``base_learning_rate`` the one ``final_lr`` is paired with.
    """
    t = tf.cast(step, dtype)
    lr = hp.cast_exact(learning_rate, dtype)
    b1 = hp.cast_exact(beta_1, dtype)
    b2 = hp.cast_exact(beta_2, dtype)
    gamma = hp.cast_exact(gamma, dtype)
    step_size = lr * tf.sqrt(1.0 - tf.pow(b2, t)) / (1.0 - tf.pow(b1, t))
    # The reference's workaround for PyTorch schedulers: final_lr follows the decay of lr.
    final = hp.cast_exact(final_lr, dtype) * lr / hp.cast_exact(base_learning_rate, dtype)
    lower_scale, upper_scale = bound_scales(t, gamma)  # the same shape as BAMSProd's range
    return AdaBoundScalars(
        beta_1=b1,
        beta_2=b2,
        epsilon=hp.cast_exact(epsilon, dtype),
        weight_decay=hp.cast_exact(weight_decay, dtype) if weight_decay else None,
        step_size=step_size,
        lower_bound=final * lower_scale,
        upper_bound=final * upper_scale,
    )


def adabound_update(
    grad: tf.Tensor,
    var: tf.Tensor,
    m: tf.Tensor,
    v: tf.Tensor,
    v_hat: tf.Tensor | None,
    scalars: AdaBoundScalars,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor | None]:
    """One AdaBound step (AMSBound when ``v_hat`` is given) for one variable.

    Returns ``(delta, m_new, v_new, v_hat_new)``; the caller applies ``w <- w - delta``.
    ``v_hat_new`` is ``None`` when ``v_hat`` is.

    .. code-block:: text

        g     = grad + weight_decay * w
        m     = b1 * m + (1 - b1) * g
        v     = b2 * v + (1 - b2) * g^2
        v_hat = max(v_hat, v)                              # AMSBound; AdaBound uses v
        eta   = clip(step_size / (sqrt(v_hat) + epsilon), lower_bound, upper_bound)
        delta = eta * m
    """
    if scalars.weight_decay is not None:
        grad = grad + scalars.weight_decay * var
    m = scalars.beta_1 * m + (1.0 - scalars.beta_1) * grad
    v = scalars.beta_2 * v + (1.0 - scalars.beta_2) * tf.square(grad)
    denominator = v
    if v_hat is not None:
        v_hat = tf.maximum(v_hat, v)
        denominator = v_hat
    eta = tf.clip_by_value(
        scalars.step_size / (tf.sqrt(denominator) + scalars.epsilon),
        scalars.lower_bound,
        scalars.upper_bound,
    )
    return eta * m, m, v, v_hat


ADABOUND_DOC = r"""AdaBound: Adam whose per-coordinate learning rates are clipped into bounds
    that close on an SGD learning rate.

    Luo, Xiong, Liu and Sun, "Adaptive Gradient Methods with Dynamic Bound of Learning
    Rate", ICLR 2019 (Algorithm 2; AMSBound is Algorithm 3), as implemented by the
    authors' reference code (github.com/Luolc/AdaBound, PyTorch). At step
    ``t = 1, 2, ...`` with gradient ``g`` of the variable ``w``:

    .. code-block:: text

        g     = g + weight_decay * w                   # L2 penalty, as the reference
        m     = beta_1 * m + (1 - beta_1) * g
        v     = beta_2 * v + (1 - beta_2) * g^2
        v_hat = max(v_hat, v)                          # amsbound=True only
        a_t   = lr(t) * sqrt(1 - beta_2^t) / (1 - beta_1^t)
        f_t   = final_lr * lr(t) / base_learning_rate  # = final_lr without a schedule
        eta   = clip(a_t / (sqrt(v_hat or v) + epsilon),
                     f_t * (1 - 1 / (gamma * t + 1)),  # lower bound, rises from 0
                     f_t * (1 + 1 / (gamma * t)))      # upper bound, falls from inf
        w     = w - eta * m

    Early on the bounds ``[0, inf)`` leave Adam (AMSGrad) untouched; after about
    ``1 / gamma`` steps they have closed on ``f_t`` and the update is momentum SGD with
    learning rate ``f_t``.

    Args:
      learning_rate: Adam's step ``lr``: a float > 0, a
        ``tf.keras.optimizers.schedules.LearningRateSchedule``, or a callable taking the
        step (number of updates done so far). Defaults to `1e-3`.
      beta_1: decay of the first moment, a float in ``[0, 1)``. Defaults to `0.9`.
      beta_2: decay of the second moment, a float in ``[0, 1)``. Defaults to `0.999`.
      final_lr: the SGD learning rate the bounds close on, a float > 0. Defaults to `0.1`.
      gamma: speed at which the bounds close, a float > 0 (about ``1 / gamma`` steps).
        Defaults to `1e-3`.
      epsilon: added to ``sqrt(v)`` for numerical stability, ``>= 0``.
        Defaults to `1e-8` (the reference's).
      weight_decay: L2 penalty added to the gradient before the moments, ``>= 0``.
        Defaults to `0`.
      amsbound: use AMSGrad's running maximum ``v_hat`` (AMSBound). Defaults to `False`.
      base_learning_rate: the learning rate ``final_lr`` is paired with (see the Note), a
        float > 0 or ``None`` for ``learning_rate`` itself (its value at step 0 if it is a
        schedule). Defaults to `None`.
      name: name of the optimizer. Defaults to `"AdaBound"`.
      **kwargs: the base class' keyword arguments (``clipnorm``, ``clipvalue``,
        ``global_clipnorm``, ``decay``, and ``lr`` as a deprecated alias of
        ``learning_rate``).

    Example:

    >>> import larq_bamsprod
    >>> import tensorflow as tf
    >>> from larq_bamsprod.harness.catalogue.adabound import AdaBound
    >>> opt = AdaBound(learning_rate=1e-3, final_lr=0.1)
    >>> var = tf.Variable([1.0, -1.0])
    >>> _ = opt.apply_gradients([(tf.constant([0.5, -0.5]), var)])
    >>> var.numpy().round(4)  # the first step is Adam's: lr * sign(g)
    array([ 0.999, -0.999], dtype=float32)

    Note:
      The code follows the reference implementation where it differs from the paper:

      * **Bounds.** ``final_lr * (1 -+ ...)`` with ``gamma``, as the reference; the paper's
        experiments write ``0.1 -+ 0.1 / ((1 - beta_2) t + 1)``, i.e. ``gamma = 1 - beta_2``.
      * **Bias correction** is folded into ``a_t`` (Algorithm 2 has none), and
        ``epsilon`` is added to ``sqrt(v)`` before the clip.
      * **No ``1 / sqrt(t)``.** Algorithm 2 divides the clipped rate by ``sqrt(t)``; the
        reference does not. Pass ``learning_rate = lr0 / sqrt(step + 1)`` as a schedule to
        get it: the bounds follow the schedule (next point), so the result is exactly
        ``clip(lr0 / sqrt(v), bounds) / sqrt(t)``.
      * **Schedules.** The reference scales ``final_lr`` by ``lr(t) / base_lr`` so that a
        learning-rate scheduler also decays the SGD rate the bounds close on. Here
        ``lr(t)`` is the learning rate of this step (schedule, ``decay`` and any later
        assignment to ``optimizer.learning_rate``, e.g. by ``ReduceLROnPlateau``, included)
        and ``base_lr`` is ``base_learning_rate``, by default the constructor's float
        ``learning_rate`` or the schedule's value at step 0. ``get_config`` stores it, so a
        rebuilt optimizer keeps the same pairing after the learning rate was changed.
      * **Sparse gradients** (``tf.IndexedSlices``) are applied as their dense
        equivalent: duplicate indices are summed and the moments of every row decay each
        step, as in Keras' Adam. The reference refuses them.
      * ``gamma`` must be ``> 0`` (the reference accepts ``0`` but then divides by zero).

    References:
      - Luo et al., 2019. https://openreview.net/forum?id=Bkg3g2R9FX
      - Reference implementation: https://github.com/Luolc/AdaBound
      - Reddi et al., 2018, "On the Convergence of Adam and Beyond" (AMSGrad).
"""


@register_serializable(package="larq_bamsprod")
class AdaBound(LegacyOptimizer):
    __doc__ = ADABOUND_DOC

    _HAS_AGGREGATE_GRAD = True

    def __init__(
        self,
        learning_rate=1e-3,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        final_lr: float = 0.1,
        gamma: float = 1e-3,
        epsilon: float = 1e-8,
        weight_decay: float = 0.0,
        amsbound: bool = False,
        base_learning_rate: float | None = None,
        name: str = "AdaBound",
        **kwargs,
    ):
        learning_rate = kwargs.pop("lr", learning_rate)
        learning_rate = hp.check_schedule_or_float("learning_rate", learning_rate, low_open=0.0)
        beta_1 = hp.check_float("beta_1", beta_1, in_unit_interval=True)
        beta_2 = hp.check_float("beta_2", beta_2, in_unit_interval=True)
        final_lr = hp.check_float("final_lr", final_lr, low_open=0.0)
        gamma = hp.check_float("gamma", gamma, low_open=0.0)
        epsilon = hp.check_float("epsilon", epsilon, low=0.0)
        weight_decay = hp.check_float("weight_decay", weight_decay, low=0.0)
        if not isinstance(amsbound, bool):
            raise TypeError(f"amsbound must be a bool, received amsbound={amsbound!r}.")
        if base_learning_rate is not None:
            base_learning_rate = hp.check_float(
                "base_learning_rate", base_learning_rate, low_open=0.0
            )
        elif not isinstance(learning_rate, LearningRateSchedule):
            base_learning_rate = learning_rate
        super().__init__(name=name, **kwargs)
        self._set_hyper("learning_rate", learning_rate)
        self._set_hyper("decay", self._initial_decay)
        self._set_hyper("beta_1", beta_1)
        self._set_hyper("beta_2", beta_2)
        self._set_hyper("final_lr", final_lr)
        self._set_hyper("gamma", gamma)
        self.epsilon = epsilon
        self.weight_decay = weight_decay
        self.amsbound = amsbound
        self.base_learning_rate = base_learning_rate

    def _create_slots(self, var_list):
        for var in var_list:
            self.add_slot(var, "m")
        for var in var_list:
            self.add_slot(var, "v")
        if self.amsbound:
            for var in var_list:
                self.add_slot(var, "vhat")

    def _base_learning_rate(self, var_dtype):
        if self.base_learning_rate is not None:
            # Rounded as the float32 learning-rate variable is, so that lr / base is
            # exactly 1 until the learning rate changes.
            return tf.cast(tf.constant(self.base_learning_rate, tf.float32), var_dtype)
        # A schedule without an explicit base: its value at step 0, as the reference's
        # base_lr is the learning rate before the scheduler first acts.
        schedule = self._hyper["learning_rate"]
        return tf.cast(schedule(tf.constant(0, var_dtype)), var_dtype)

    def _prepare_local(self, var_device, var_dtype, apply_state):
        super()._prepare_local(var_device, var_dtype, apply_state)
        coefficients = apply_state[(var_device, var_dtype)]
        coefficients["scalars"] = adabound_step_scalars(
            step=self.iterations + 1,
            learning_rate=coefficients["lr_t"],
            base_learning_rate=self._base_learning_rate(var_dtype),
            beta_1=self._get_hyper("beta_1", var_dtype),
            beta_2=self._get_hyper("beta_2", var_dtype),
            epsilon=self.epsilon,
            final_lr=self._get_hyper("final_lr", var_dtype),
            gamma=self._get_hyper("gamma", var_dtype),
            weight_decay=self.weight_decay,
            dtype=var_dtype,
        )

    def _scalars(self, var, apply_state) -> AdaBoundScalars:
        key = (var.device, var.dtype.base_dtype)
        coefficients = (apply_state or {}).get(key) or self._fallback_apply_state(*key)
        return coefficients["scalars"]

    def _resource_apply_dense(self, grad, var, apply_state=None):
        m = self.get_slot(var, "m")
        v = self.get_slot(var, "v")
        v_hat = self.get_slot(var, "vhat") if self.amsbound else None
        delta, m_new, v_new, v_hat_new = adabound_update(
            grad, var, m, v, v_hat, self._scalars(var, apply_state)
        )
        updates = [m.assign(m_new, read_value=False), v.assign(v_new, read_value=False)]
        if v_hat is not None:
            updates.append(v_hat.assign(v_hat_new, read_value=False))
        # The new moments and delta were computed from the old w (weight decay reads it)
        # before this assignment, so the order of the group does not matter.
        updates.append(var.assign_sub(delta, read_value=False))
        return tf.group(*updates)

    def _resource_apply_sparse(self, grad, var, indices, apply_state=None):
        # Dense equivalent: all moments decay; the base class already summed duplicates.
        dense = tf.math.unsorted_segment_sum(grad, indices, tf.shape(var)[0])
        return self._resource_apply_dense(dense, var, apply_state)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "learning_rate": self._serialize_hyperparameter("learning_rate"),
                "decay": self._initial_decay,
                "beta_1": self._serialize_hyperparameter("beta_1"),
                "beta_2": self._serialize_hyperparameter("beta_2"),
                "final_lr": self._serialize_hyperparameter("final_lr"),
                "gamma": self._serialize_hyperparameter("gamma"),
                "epsilon": self.epsilon,
                "weight_decay": self.weight_decay,
                "amsbound": self.amsbound,
                "base_learning_rate": self.base_learning_rate,
                "is_legacy_optimizer": True,
            }
        )
        return {k: hp.plain(v) for k, v in config.items()}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = hp.deserialize_schedules(config, _SCHEDULABLE, custom_objects)
        config.pop("is_legacy_optimizer", None)
        return cls(**config)


@register_serializable(package="larq_bamsprod")
class AMSBound(AdaBound):
    __doc__ = (
        ADABOUND_DOC.replace(
            "AdaBound: Adam whose per-coordinate learning rates are clipped into bounds\n"
            "    that close on an SGD learning rate.",
            "AMSBound: AdaBound with AMSGrad's running maximum of the second moment.\n\n"
            "    ``AMSBound(...)`` is ``AdaBound(..., amsbound=True)``; it takes every argument\n"
            "    of :class:`AdaBound` but ``amsbound``.",
        )
        .replace('Defaults to `"AdaBound"`', 'Defaults to `"AMSBound"`')
        .replace("opt = AdaBound(", "opt = AMSBound(")
        .replace("import AdaBound", "import AMSBound")
        .replace(
            "      amsbound: use AMSGrad's running maximum ``v_hat`` (AMSBound). "
            "Defaults to `False`.\n",
            "",
        )
    )

    def __init__(
        self,
        learning_rate=1e-3,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        final_lr: float = 0.1,
        gamma: float = 1e-3,
        epsilon: float = 1e-8,
        weight_decay: float = 0.0,
        base_learning_rate: float | None = None,
        name: str = "AMSBound",
        **kwargs,
    ):
        super().__init__(
            learning_rate=learning_rate,
            beta_1=beta_1,
            beta_2=beta_2,
            final_lr=final_lr,
            gamma=gamma,
            epsilon=epsilon,
            weight_decay=weight_decay,
            amsbound=True,
            base_learning_rate=base_learning_rate,
            name=name,
            **kwargs,
        )

    def get_config(self):
        config = super().get_config()
        del config["amsbound"]  # implied by the class
        return config
