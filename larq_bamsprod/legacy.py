"""BAMSProd for ``tf.keras.optimizers.legacy.Optimizer``: the kind Larq's
``CaseOptimizer`` accepts, to put BAMSProd where Bop was.

.. code-block:: python

    import larq as lq
    from larq_bamsprod import legacy

    optimizer = lq.optimizers.CaseOptimizer(
        (lq.optimizers.Bop.is_binary_variable, legacy.BAMSProd()),
        default_optimizer=tf.keras.optimizers.legacy.Adam(0.01),
    )

BAMSProd's ``gamma`` is not Bop's: Bop's is the rate of its gradient moving average
(``1 - beta_1`` here); BAMSProd's sets how fast the projection range closes.

``tf.keras.models.load_model`` needs no ``custom_objects`` for such a model: besides
``larq_bamsprod.legacy>BAMSProd``, the bare name ``"BAMSProd"`` is registered, as Larq
registers ``"Bop"``, because ``CaseOptimizer`` records inner optimizers by their ``name``.
Only ``tf.train.Checkpoint`` keeps the inner optimizers' state, and a loaded
``CaseOptimizer`` must be compiled again to train (Larq limitations, the same for Bop):
see ``docs/SERIALIZATION.md``.
"""

from __future__ import annotations

import tensorflow as tf

from larq_bamsprod import fast, optimizers
from larq_bamsprod import hyperparameters as hp
from larq_bamsprod.compat import LearningRateSchedule, LegacyOptimizer, register_serializable
from larq_bamsprod.optimizers import DEFAULTS, SCHEDULABLE, class_docstring
from larq_bamsprod.update_rule import (
    bamsprod_update,
    compute_dtype,
    dense_gradient,
    step_scalars,
)

__all__ = ["BAMSProd"]


_LEGACY_KWARGS = """\
      **kwargs: ``tf.keras.optimizers.legacy.Optimizer``'s keyword arguments
        (``clipnorm``, ``clipvalue``, ``global_clipnorm``, and ``decay``, Keras' time
        decay ``learning_rate / (1 + decay * iterations)``, kept by ``get_config``). The
        deprecated ``lr`` is honoured, with a warning, and wins over ``learning_rate``, as
        in ``tf.keras.optimizers.legacy.Adam``. ``weight_decay``, ``use_ema`` and the new
        API's other arguments are refused with a ``TypeError``, as every legacy Keras
        optimizer refuses them: use :class:`larq_bamsprod.BAMSProd` for those."""


@register_serializable(package="larq_bamsprod.legacy")
class BAMSProd(LegacyOptimizer):
    __doc__ = class_docstring(
        """BAMSProd for ``tf.keras.optimizers.legacy.Optimizer``, the kind Larq's
    ``CaseOptimizer`` takes.

    AMSGrad with a closing projection of the second moment, for BNNs. Moving from Bop:
    BAMSProd's ``gamma`` is not Bop's (see ``gamma`` below), and there is no
    ``threshold``. ``weight_decay`` and ``use_ema`` are refused (see ``**kwargs``).""",
        _LEGACY_KWARGS,
        "larq_bamsprod.legacy.BAMSProd",
    )

    _HAS_AGGREGATE_GRAD = True

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
        super().__init__(name=name, **kwargs)
        for key in ("learning_rate", "beta_1", "beta_2", "epsilon", "gamma"):
            self._set_hyper(key, args[key])
        self.bound_target = args["bound_target"]
        self.lr_decay = args["lr_decay"]
        self.bias_correction = args["bias_correction"]

    def _create_slots(self, var_list):
        for slot in ("m", "v", "vhat"):
            for var in var_list:
                self.add_slot(var, slot)

    def _prepare_local(self, var_device, var_dtype, apply_state):
        # Once per step, device and dtype (tf-keras' `_prepare`), never per variable: each
        # hyperparameter variable is read here once, in at least float32 (compute_dtype).
        work = compute_dtype(var_dtype)
        lr = tf.identity(self._decayed_lr(work))
        beta_1 = self._hyper["beta_1"]
        if isinstance(beta_1, LearningRateSchedule):
            beta_1 = tf.cast(beta_1(self.iterations), work)
        else:
            beta_1 = self._get_hyper("beta_1", work)
        apply_state[(var_device, var_dtype)].update(
            lr_t=lr,
            scalars=step_scalars(
                step=self.iterations + 1,
                learning_rate=lr,
                beta_1=beta_1,
                beta_2=self._get_hyper("beta_2", work),
                epsilon=self._get_hyper("epsilon", work),
                gamma=self._get_hyper("gamma", work),
                bound_target=self.bound_target,
                lr_decay=self.lr_decay,
                bias_correction=self.bias_correction,
                dtype=var_dtype,
            ),
        )

    def _scalars(self, var, apply_state):
        key = (var.device, var.dtype.base_dtype)
        coefficients = (apply_state or {}).get(key) or self._fallback_apply_state(*key)
        return coefficients["scalars"]

    def _resource_apply_dense(self, grad, var, apply_state=None):
        grad = dense_gradient(grad, var)
        m = self.get_slot(var, "m")
        v = self.get_slot(var, "v")
        v_hat = self.get_slot(var, "vhat")
        scalars = self._scalars(var, apply_state)
        path = fast.choose_path(var, m, v, v_hat)
        if path != "reference":
            return fast.apply_dense(path, grad, var, m, v, v_hat, scalars, self._use_locking)
        delta, m_new, v_new, v_hat_new = bamsprod_update(grad, m, v, v_hat, scalars)
        return tf.group(
            m.assign(m_new, read_value=False),
            v.assign(v_new, read_value=False),
            v_hat.assign(v_hat_new, read_value=False),
            var.assign_sub(delta, read_value=False),
        )

    def _resource_apply_sparse(self, grad, var, indices, apply_state=None):
        # Dense equivalent: all moments decay; the base class already summed duplicates.
        grad = tf.convert_to_tensor(grad, var.dtype.base_dtype)
        dense = tf.math.unsorted_segment_sum(grad, indices, tf.shape(var)[0])
        # A subclass's _resource_apply_dense may not take apply_state (Keras allows it).
        if "apply_state" in self._dense_apply_args:
            return self._resource_apply_dense(dense, var, apply_state=apply_state)
        return self._resource_apply_dense(dense, var)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "learning_rate": hp.plain(self._serialize_hyperparameter("learning_rate")),
                "beta_1": hp.plain(self._serialize_hyperparameter("beta_1")),
                "beta_2": hp.plain(self._serialize_hyperparameter("beta_2")),
                "epsilon": hp.plain(self._serialize_hyperparameter("epsilon")),
                "gamma": hp.plain(self._serialize_hyperparameter("gamma")),
                "bound_target": self.bound_target,
                "lr_decay": self.lr_decay,
                "bias_correction": self.bias_correction,
                # The base class' time decay, lr / (1 + decay * iterations): kept as
                # Keras' legacy Adam keeps it, so that a reloaded optimizer decays alike.
                "decay": hp.plain(self._initial_decay),
                "is_legacy_optimizer": True,
            }
        )
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        hp.check_config(cls, config)
        config = hp.deserialize_schedules(config, SCHEDULABLE, custom_objects)
        config.pop("is_legacy_optimizer", None)
        return cls(**config)


class _BareName:
    """What the bare name ``"BAMSProd"`` deserializes to.

    Larq's ``CaseOptimizer.get_config`` records each inner optimizer under its ``name``
    (``{"class_name": optimizer_config["name"], ...}``), not its registered name, and Larq
    registers ``Bop`` under its bare name so that this resolves. ``"BAMSProd"`` does the
    same here for both classes: the config's ``is_legacy_optimizer`` (which the legacy
    class writes) picks this class, otherwise the new-API one (so
    ``model.compile(optimizer="BAMSProd")`` gets the new-API class, as strings get Keras'
    new optimizers). The package-prefixed names remain the primary registration.
    """

    @classmethod
    def from_config(cls, config, custom_objects=None):
        hp.check_config(BAMSProd, config)
        target = BAMSProd if config.get("is_legacy_optimizer") else optimizers.BAMSProd
        return target.from_config(config, custom_objects=custom_objects)


tf.keras.utils.get_custom_objects().setdefault("BAMSProd", _BareName)
