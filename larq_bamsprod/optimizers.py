"""BAMSProd for the Keras 2.11+ optimizer API (``tf.keras.optimizers.Optimizer``).

For Larq's ``CaseOptimizer`` use :class:`larq_bamsprod.legacy.BAMSProd`, which subclasses
``tf.keras.optimizers.legacy.Optimizer`` (Bop's base class). Both classes call the same
update rule, :func:`larq_bamsprod.update_rule.bamsprod_update`.
"""

from __future__ import annotations

import tensorflow as tf

from larq_bamsprod import fast
from larq_bamsprod import hyperparameters as hp
from larq_bamsprod.arguments import DEFAULTS
from larq_bamsprod.compat import Optimizer, register_serializable
from larq_bamsprod.update_rule import (
    StepScalars,
    bamsprod_update,
    compute_dtype,
    dense_gradient,
    step_scalars,
)

_HYPER_NAMES = tuple(DEFAULTS)
SCHEDULABLE = ("learning_rate", "beta_1")
"""Hyperparameters that may be a schedule (or a callable of the step)."""

BAMSPROD_DOC = r"""{summary}

    Liu et al., "BAMSProd: A Step towards Generalizing the Adaptive Optimization Methods
    to Deep Binary Model", CVPR 2020 workshops (Algorithm 1). At step ``t = 1, 2, ...``
    with gradient ``g`` (the straight-through-estimator gradient for binary weights):

    .. code-block:: text

        b1    = beta_1(t)                               # float or schedule
        m     = b1 * m + (1 - b1) * g
        v     = beta_2 * v + (1 - beta_2) * g^2
        v_hat = max(v_hat, v)                           # AMSGrad
        c     = bound_target, or mean(v_hat) over the variable if bound_target="mean"
        v_til = clip(v_hat, c * (1 - 1/(gamma*t + 1)), c * (1 + 1/(gamma*t)))
                                                        # skipped if bound_target=None
        eta_t = learning_rate(t)                        # / sqrt(t) if lr_decay="sqrt"
        eta_t = eta_t * sqrt(1 - beta_2^t) / (1 - b1^t) # only if bias_correction=True
        w     = w - eta_t * m / (sqrt(v_til) + epsilon)

    The range ``[c_l(t), c_u(t)]`` starts at ``[0, inf)`` and closes on ``c`` at a speed
    set by ``gamma`` (about ``1/gamma`` steps); see :mod:`larq_bamsprod.bounds`.

    Args:
      learning_rate: ``eta``: a float > 0, a
        ``tf.keras.optimizers.schedules.LearningRateSchedule``, a callable taking the
        step (number of updates done so far) and returning a float, or a callable taking
        no argument (Keras' convention: the legacy class calls it at every step, the
        new-API class once, when it is built, as Keras' optimizers of each API do).
        Defaults to `0.01`.
      beta_1: decay of the first moment, in ``[0, 1)``; a float, schedule or callable of
        the step, like ``learning_rate``. The paper's decaying ``beta_1t = beta_1 / t`` is
        ``InverseTimeDecay(beta_1, decay_steps=1, decay_rate=1)`` and Corollary 4's
        ``beta_1 (beta_1/sqrt(beta_2))^(t-1)`` is
        ``ExponentialDecay(beta_1, 1, beta_1 / sqrt(beta_2))``. Defaults to `0.9`.
      beta_2: decay of the second moment, a float in ``[0, 1)``. Defaults to `0.999`.
      epsilon: added to ``sqrt(v_til)`` for numerical stability, ``>= 0``. ``0`` is
        safe: where ``sqrt(v_til) + epsilon`` is 0 (no gradient seen yet, so ``m = 0``
        too) the step is 0, not NaN; the same holds for an ``epsilon`` that rounds to 0
        in a float16 variable. Defaults to `1e-7` (Keras' Adam).
      gamma: speed at which the projection range closes, ``> 0``. Defaults to `1e-3`
        (AdaBound's). Not Bop's ``gamma``: Bop's (default `1e-4`) is the rate of its
        gradient moving average, ``1 - beta_1`` in BAMSProd's terms; a ``gamma`` tuned
        for Bop means nothing here.
      bound_target: ``c``: ``"mean"`` (the mean of ``v_hat`` over each variable,
        recomputed every step), a float ``> 0`` (one fixed target), or ``None`` (no
        projection: AMSGrad, with step ``eta_t`` as set by ``lr_decay``). Defaults to
        `"mean"`.
      lr_decay: ``None`` for ``eta_t = eta`` (decay it with a ``learning_rate``
        schedule, as with Keras' Adam) or ``"sqrt"`` for Algorithm 1's
        ``eta_t = eta / sqrt(t)``, on top of any schedule. Defaults to `None`, a
        departure from the paper: tuned on five binary graphs, every study chose
        ``None`` (docs/RESULTS.md; README, "Defaults"). ``lr_decay="sqrt"`` restores
        Algorithm 1's step size (exactly, with ``bias_correction=False``).
      bias_correction: fold Adam's bias corrections into ``eta_t`` (Keras' Adam
        convention; Algorithm 1 has none). Defaults to `True`.
      name: name of the optimizer. Defaults to `"BAMSProd"`.
{kwargs}

    Example:

    >>> import larq_bamsprod
    >>> import tensorflow as tf
    >>> opt = {example_class}(learning_rate=0.01)
    >>> var = tf.Variable([1.0, -1.0])
    >>> _ = opt.apply_gradients([(tf.constant([0.5, -0.5]), var)])
    >>> var.numpy().round(4)
    array([ 0.99, -0.99], dtype=float32)

    Note:
      The paper leaves the bound functions and their target open. ``c_l``, ``c_u`` take
      AdaBound's shape scaled by ``c``; the default target ``"mean"`` is the layer-wise
      scale of ``v_hat``, so late in training each layer's update becomes normalised
      momentum SGD (``eta_t m / sqrt(mean v_hat)``). ``bias_correction=True`` departs
      from Algorithm 1 (which has none) because without it the first steps are about
      ``1/sqrt(1 - beta_2) / (1/(1 - beta_1)) ~ 3.2x`` larger than later ones. Sparse
      gradients (``tf.IndexedSlices``) are applied as their dense equivalent: duplicate
      indices are summed, and the moments of every row decay each step, as in Keras'
      Adam. The evidence for each default is in ``docs/RESULTS.md``.

      Non-finite gradients are not filtered: a NaN/Inf gradient propagates into ``m``,
      ``v`` and ``v_hat`` as in Keras' Adam, and with ``bound_target="mean"`` it reaches
      the whole variable through ``mean(v_hat)``. Under mixed precision Keras'
      ``LossScaleOptimizer`` skips such steps (weights and slots unchanged; tested); without
      it, clip gradients. Finite gradients whose square would overflow the dtype
      (``|g| > ~1.8e19`` in float32, ``> 255.875`` in float16) are clipped to the largest
      magnitude whose square is finite, where Keras' Adam would make ``v`` Inf.

      float16 and bfloat16 variables: the step-dependent scalars (``t``, the bias
      corrections, ``eta_t``, the bounds' scales, ``1 - beta_1``, ``1 - beta_2``) are
      computed in float32 and cast to the variable's dtype, so that neither ``t`` overflows
      float16 after 65,504 steps nor ``beta_2 = 0.999`` rounds to 1 in bfloat16 (both
      would stop training); the element-wise update runs in the variable's dtype. A
      gradient is converted to the variable's dtype once (a list is accepted) and a
      gradient whose shape broadcasts to the variable's is broadcast, on every path.

      Inside Larq's ``CaseOptimizer`` (legacy class), Keras' ``ReduceLROnPlateau`` and
      ``LearningRateScheduler`` callbacks fail (``CaseOptimizer`` has no ``lr``; a Larq
      limitation). Give the inner optimizers a schedule instead:
      ``legacy.BAMSProd(learning_rate=tf.keras.optimizers.schedules.PiecewiseConstantDecay(
      [10_000], [1e-2, 1e-3]))`` (tested). What ``.h5``, ``.keras``, SavedModel and
      ``tf.train.Checkpoint`` keep of each class, alone and inside ``CaseOptimizer``, is in
      ``docs/SERIALIZATION.md``; in short, only a checkpoint resumes a ``CaseOptimizer``.

    References:
      - Liu et al., 2020. https://openaccess.thecvf.com/content_CVPRW_2020/html/w40/Liu_BAMSProd_A_Step_Towards_Generalizing_the_Adaptive_Optimization_Methods_to_CVPRW_2020_paper.html
      - Reddi et al., 2018, "On the Convergence of Adam and Beyond" (AMSGrad).
      - Luo et al., 2019, "Adaptive Gradient Methods with Dynamic Bound of Learning Rate".
"""

_NEW_API_KWARGS = """\
      **kwargs: ``tf.keras.optimizers.Optimizer``'s keyword arguments (``clipnorm``,
        ``clipvalue``, ``global_clipnorm``, ``weight_decay``, ``use_ema``,
        ``ema_momentum``, ``jit_compile``, ...); ``weight_decay`` defaults to ``None`` (no
        decay pass over the variables), as in Keras' Adam. The deprecated ``lr`` is
        honoured, with a warning, and wins over ``learning_rate``, as in
        ``tf.keras.optimizers.legacy.Adam`` (the new Keras optimizers ignore it)."""


def class_docstring(summary: str, kwargs: str, example_class: str) -> str:
    """BAMSPROD_DOC for one class: its summary line, ``**kwargs`` entry and example."""
    return BAMSPROD_DOC.format(summary=summary, kwargs=kwargs, example_class=example_class)


class _ScalarCache:
    """Per-step scalars keyed by (graph, dtype); a plain object so Keras won't track it."""

    def __init__(self):
        self.values: dict = {}


@register_serializable(package="larq_bamsprod")
class BAMSProd(Optimizer):
    __doc__ = class_docstring(
        """BAMSProd for the Keras 2.11+ optimizer API (``tf.keras.optimizers.Optimizer``).

    AMSGrad with a closing projection of the second moment, for BNNs. Larq's
    ``CaseOptimizer`` takes legacy optimizers only: use :class:`larq_bamsprod.legacy.BAMSProd`
    there.""",
        _NEW_API_KWARGS,
        "larq_bamsprod.BAMSProd",
    )

    def __init__(
        self,
        learning_rate=DEFAULTS["learning_rate"],
        beta_1=DEFAULTS["beta_1"],
        beta_2: float = DEFAULTS["beta_2"],
        epsilon: float = DEFAULTS["epsilon"],
        gamma: float = DEFAULTS["gamma"],
        bound_target=DEFAULTS["bound_target"],
        lr_decay: str | None = DEFAULTS["lr_decay"],
        bias_correction: bool = DEFAULTS["bias_correction"],
        name: str = "BAMSProd",
        **kwargs,
    ):
        args = hp.check_bamsprod_args(
            learning_rate=hp.pop_lr(learning_rate, kwargs),
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            gamma=gamma,
            bound_target=bound_target,
            lr_decay=lr_decay,
            bias_correction=bias_correction,
        )
        # The base class' default weight_decay=0 would still cost two passes over every
        # variable per step (variable -= variable * 0 * lr); None builds none, as in Adam.
        kwargs.setdefault("weight_decay", None)
        super().__init__(name=name, **kwargs)
        self._learning_rate = self._build_learning_rate(args.pop("learning_rate"))
        for key, value in args.items():
            setattr(self, key, value)
        self._scalar_cache = _ScalarCache()

    def build(self, var_list):
        super().build(var_list)
        if getattr(self, "_built", False):
            return
        self._built = True
        self._momentums = [self.add_variable_from_reference(v, "m") for v in var_list]
        self._velocities = [self.add_variable_from_reference(v, "v") for v in var_list]
        self._velocity_hats = [
            self.add_variable_from_reference(v, "vhat") for v in var_list
        ]

    def apply_gradients(self, grads_and_vars, *args, **kwargs):
        self._scalar_cache.values = {}
        return super().apply_gradients(grads_and_vars, *args, **kwargs)

    def _step_scalars(self, dtype: tf.DType) -> StepScalars:
        # Computed once per step, graph and dtype, not once per variable.
        key = (id(tf.compat.v1.get_default_graph()), dtype)
        cache = self._scalar_cache.values
        if key not in cache:
            cache[key] = step_scalars(
                step=self.iterations + 1,
                learning_rate=self.learning_rate,
                beta_1=hp.value_at(self.beta_1, self.iterations, compute_dtype(dtype)),
                beta_2=self.beta_2,
                epsilon=self.epsilon,
                gamma=self.gamma,
                bound_target=self.bound_target,
                lr_decay=self.lr_decay,
                bias_correction=self.bias_correction,
                dtype=dtype,
            )
        return cache[key]

    def update_step(self, gradient, variable):
        index = self._index_dict[self._var_key(variable)]
        m = self._momentums[index]
        v = self._velocities[index]
        v_hat = self._velocity_hats[index]
        if isinstance(gradient, tf.IndexedSlices):
            # Dense equivalent: all moments decay; duplicate indices were summed by Keras.
            gradient = tf.math.unsorted_segment_sum(
                gradient.values, gradient.indices, tf.shape(variable)[0]
            )
        gradient = dense_gradient(gradient, variable)
        scalars = self._step_scalars(variable.dtype)
        path = fast.choose_path(variable, m, v, v_hat)
        if path != "reference":
            fast.apply_dense(path, gradient, variable, m, v, v_hat, scalars)
            return
        delta, m_new, v_new, v_hat_new = bamsprod_update(gradient, m, v, v_hat, scalars)
        m.assign(m_new)
        v.assign(v_new)
        v_hat.assign(v_hat_new)
        variable.assign_sub(delta)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "learning_rate": hp.plain(self._serialize_hyperparameter(self._learning_rate)),
                "beta_1": hp.serialize(self.beta_1),
                "beta_2": self.beta_2,
                "epsilon": self.epsilon,
                "gamma": self.gamma,
                "bound_target": self.bound_target,
                "lr_decay": self.lr_decay,
                "bias_correction": self.bias_correction,
            }
        )
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        hp.check_config(cls, config)
        config = hp.deserialize_schedules(config, SCHEDULABLE, custom_objects)
        config.pop("is_legacy_optimizer", None)
        return cls(**config)
