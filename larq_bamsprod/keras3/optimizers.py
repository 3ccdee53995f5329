"""BAMSProd and Bop as Keras 3 optimizers (``keras.optimizers.Optimizer``), in ``keras.ops``.

Nothing here is backend-specific: the same classes run on JAX, TensorFlow and PyTorch,
eager, under ``jit_compile``, in ``model.fit`` and in JAX's ``stateless_apply``.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from larq_bamsprod import arguments
from larq_bamsprod.arguments import BOP_DEFAULTS, DEFAULTS
from larq_bamsprod.keras3.update_rule import bamsprod_update, compute_dtype, step_scalars

__all__ = ["BAMSProd", "Bop"]

Schedule = keras.optimizers.schedules.LearningRateSchedule

KERAS3_RATES = arguments.RateKinds(
    schedule_type=Schedule,
    is_tensor=lambda value: ops.is_tensor(value) or isinstance(value, keras.Variable),
    wrap_callable=lambda name, fn: fn,  # Keras 3's convention: called with no argument
)
"""What Keras 3 takes as a rate: its schedules, and callables of no argument."""


def value_at(hyper, iterations):
    """A float, a schedule evaluated at ``iterations``, or a callable's current value."""
    if isinstance(hyper, Schedule):
        return hyper(iterations)
    if callable(hyper):
        return hyper()
    return hyper


def _float32_rate(value):
    # Keras reads a float rate back from its float32 variable (0.01 -> 0.009999999776...);
    # the shortest decimal that reads back to the same float32 is what the user passed.
    if isinstance(value, float):
        return float(str(np.float32(value)))
    return value


def _serialize(hyper):
    if isinstance(hyper, Schedule):
        return keras.saving.serialize_keras_object(hyper)
    return hyper


def _deserialize(config: dict, names, custom_objects) -> dict:
    config = dict(config)
    for name in names:
        if isinstance(config.get(name), dict):
            config[name] = keras.saving.deserialize_keras_object(
                config[name], custom_objects=custom_objects)
    return config


class _ScalarCache:
    """Per-step scalars keyed by dtype; a plain object so that Keras does not track it."""

    def __init__(self):
        self.values: dict = {}


@keras.saving.register_keras_serializable(package="larq_bamsprod.keras3")
class BAMSProd(keras.optimizers.Optimizer):
    """BAMSProd for Keras 3: AMSGrad with a closing projection of the second moment.

    The algorithm, every hyperparameter, its default and its validation are those of
    :class:`larq_bamsprod.BAMSProd` (its docstring writes the algorithm out); both classes
    are checked against one NumPy reference. What differs is Keras 3's:

    * ``learning_rate`` and ``beta_1`` may be a float, a
      ``keras.optimizers.schedules.LearningRateSchedule`` (evaluated at the number of
      updates done so far) or a callable of no argument (Keras 3's convention);
    * ``**kwargs`` are Keras 3's optimizer arguments (``clipnorm``, ``global_clipnorm``,
      ``use_ema``, ``loss_scale_factor``, ``gradient_accumulation_steps``, ...);
      ``weight_decay`` defaults to ``None`` as in Keras' Adam;
    * the slots are named ``momentum``, ``velocity`` and ``velocity_hat``, as Keras'
      ``Adam(amsgrad=True)`` names them.

    Example:

    >>> import keras
    >>> from larq_bamsprod.keras3 import BAMSProd
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    >>> model.compile(optimizer=BAMSProd(learning_rate=0.01), loss="mse")

    References:
      - Liu et al., 2020, "BAMSProd: A Step towards Generalizing the Adaptive Optimization
        Methods to Deep Binary Model", CVPR 2020 workshops.
    """

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
        args = arguments.check_bamsprod_args(
            KERAS3_RATES,
            learning_rate=arguments.pop_lr(learning_rate, kwargs),
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            gamma=gamma,
            bound_target=bound_target,
            lr_decay=lr_decay,
            bias_correction=bias_correction,
        )
        super().__init__(learning_rate=args.pop("learning_rate"), name=name, **kwargs)
        for key, value in args.items():
            setattr(self, key, value)
        self._scalar_cache = _ScalarCache()

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._momentums, self._velocities, self._velocity_hats = (
            self.add_optimizer_variables(var_list, ["momentum", "velocity", "velocity_hat"])
        )

    def apply(self, grads, trainable_variables=None):
        self._scalar_cache.values = {}
        try:
            return super().apply(grads, trainable_variables)
        finally:
            self._scalar_cache.values = {}

    def _step_scalars(self, learning_rate, dtype):
        # Once per step and dtype, not once per variable.
        key = keras.backend.standardize_dtype(dtype)
        cache = self._scalar_cache.values
        if key not in cache:
            cache[key] = step_scalars(
                step=self.iterations + 1,
                learning_rate=learning_rate,
                beta_1=ops.cast(value_at(self.beta_1, self.iterations), compute_dtype(key)),
                beta_2=self.beta_2,
                epsilon=self.epsilon,
                gamma=self.gamma,
                bound_target=self.bound_target,
                lr_decay=self.lr_decay,
                bias_correction=self.bias_correction,
                dtype=key,
            )
        return cache[key]

    def update_step(self, gradient, variable, learning_rate):
        index = self._get_variable_index(variable)
        m = self._momentums[index]
        v = self._velocities[index]
        v_hat = self._velocity_hats[index]
        gradient = ops.cast(gradient, variable.dtype)
        scalars = self._step_scalars(learning_rate, variable.dtype)
        delta, m_new, v_new, v_hat_new = bamsprod_update(gradient, m, v, v_hat, scalars)
        self.assign(m, m_new)
        self.assign(v, v_new)
        self.assign(v_hat, v_hat_new)
        self.assign_sub(variable, delta)

    def get_config(self):
        config = super().get_config()
        config.update({
            "learning_rate": _float32_rate(config["learning_rate"]),
            "beta_1": _serialize(self.beta_1),
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
            "gamma": self.gamma,
            "bound_target": self.bound_target,
            "lr_decay": self.lr_decay,
            "bias_correction": self.bias_correction,
        })
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        arguments.check_config(cls, config)
        config = _deserialize(config, ("beta_1",), custom_objects)
        return super().from_config(config, custom_objects=custom_objects)


@keras.saving.register_keras_serializable(package="larq_bamsprod.keras3")
class Bop(keras.optimizers.Optimizer):
    """Bop, the binary optimizer (Helwegen et al., 2019), for Keras 3: Larq's rule exactly.

    For each binary weight ``w`` (in ``{-1, +1}``) with gradient ``g``:

    .. code-block:: text

        m = m + gamma * (g - m)                       # exponential moving average
        w = -sign(w) where w * m > threshold, else sign(w)    # flip; sign(0) = +1

    written as Larq's ``larq.optimizers.Bop`` writes it. Give Bop only the binary weights:
    ``keras.optimizers.MultiOptimizer(BinaryRouter(Bop(), keras.optimizers.Adam()))``
    (see :mod:`larq_bamsprod.keras3.routing`).

    Args:
      threshold: how large ``|m|`` must be to flip a weight, ``>= 0``; a float, a
        ``keras.optimizers.schedules.LearningRateSchedule`` or a callable of no argument.
        Defaults to `1e-8` (Larq's).
      gamma: the adaptivity rate, in ``(0, 1]``; a float, schedule or callable, like
        ``threshold``. It is the optimizer's ``learning_rate`` (Keras' learning-rate
        callbacks act on it), as Larq's docs call it analogous to one. Note: BAMSProd's
        ``gamma`` is something else (how fast its bounds close). Defaults to `1e-4`
        (Larq's).
      name: name of the optimizer. Defaults to `"Bop"`.
      **kwargs: Keras 3's optimizer arguments (``clipnorm``, ...), except
        ``learning_rate`` (it is ``gamma``).

    References:
      - Helwegen et al., 2019, "Latent Weights Do Not Exist: Rethinking Binarized Neural
        Network Optimization", NeurIPS.
    """

    def __init__(self, threshold=BOP_DEFAULTS["threshold"], gamma=BOP_DEFAULTS["gamma"],
                 name: str = "Bop", **kwargs):
        if "learning_rate" in kwargs:
            raise TypeError(
                f"Bop has no learning_rate: its rate is gamma, received "
                f"learning_rate={kwargs['learning_rate']!r}; pass gamma= instead."
            )
        args = arguments.check_bop_args(KERAS3_RATES, threshold=threshold, gamma=gamma)
        super().__init__(learning_rate=args["gamma"], name=name, **kwargs)
        self.threshold = args["threshold"]

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._momentums = self.add_optimizer_variables(var_list, "momentum")

    def update_step(self, gradient, variable, learning_rate):
        m = self._momentums[self._get_variable_index(variable)]
        gamma = ops.cast(learning_rate, variable.dtype)
        threshold = ops.cast(value_at(self.threshold, self.iterations), variable.dtype)
        m_new = m + gamma * (ops.cast(gradient, variable.dtype) - m)
        self.assign(m, m_new)
        w = ops.convert_to_tensor(variable)
        flipped = -ops.sign(w * m_new - threshold) * w  # Larq's expression
        one = ops.ones_like(w)
        self.assign(variable, ops.where(flipped >= 0, one, -one))

    def get_config(self):
        config = super().get_config()
        config["gamma"] = _float32_rate(config.pop("learning_rate"))
        config["threshold"] = _serialize(self.threshold)
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        arguments.check_config(cls, config)
        return cls(**_deserialize(config, ("gamma", "threshold"), custom_objects))
