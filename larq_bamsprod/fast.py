"""Fast paths for BAMSProd's dense update, and the choice between them.

Both optimizer classes hand each dense update to :func:`apply_dense` unless
:func:`choose_path` answers ``"reference"``, in which case they run the reference,
:func:`larq_bamsprod.update_rule.bamsprod_update`, as separate TensorFlow ops. Every path
computes the same thing; ``tests/library/test_fast_path.py`` holds them to the reference.

``"kernel"``
    The compiled CPU op (:mod:`larq_bamsprod.kernels`): one multithreaded pass over g, w,
    m, v, v_hat (36 bytes per float32 parameter), two passes for ``bound_target="mean"``
    (28 + 16 bytes), one op per variable. float32 and float64, CPU only.
``"xla"``
    The reference wrapped in ``tf.function(jit_compile=True)`` per variable, which XLA
    fuses into a few kernels. The default on GPU (no GPU kernel is compiled here), any
    float dtype, inside ``tf.function`` only (eagerly XLA would retrace every step).
``"reference"``
    The separate ops. Used when nothing faster applies (float16 or bfloat16 on CPU; a
    kernel that could not be built; inside code XLA already compiles, such as
    ``model.compile(jit_compile=True)`` or the new optimizer's ``jit_compile``, where
    XLA fuses the reference itself), and whenever ``LARQ_BAMSPROD_DISABLE_FAST=1``.

Choosing: ``LARQ_BAMSPROD_DISABLE_FAST=1`` forces the reference; otherwise
``LARQ_BAMSPROD_FAST`` (``auto``, ``kernel``, ``xla`` or ``reference``), or
:func:`use` as a context manager around the first call (tracing) of a step, asks for one
path. A path that cannot serve a variable (the kernel for float16, a GPU variable, or no
compiled kernel) falls back to the reference. The choice is made when a step is traced.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator

import tensorflow as tf

from larq_bamsprod import kernels
from larq_bamsprod.compat import in_xla_context
from larq_bamsprod.update_rule import StepScalars, bamsprod_update, dense_gradient

PATHS = ("kernel", "xla", "reference")
FAST_ENV = "LARQ_BAMSPROD_FAST"
KERNEL_DTYPES = (tf.float32, tf.float64)

_forced: list[str] = []


@contextlib.contextmanager
def use(path: str) -> Iterator[None]:
    """Ask for ``path`` (``"auto"`` or one of :data:`PATHS`) while tracing in this block."""
    _check_path(path, "path")
    _forced.append(path)
    try:
        yield
    finally:
        _forced.pop()


def _check_path(path: str, name: str) -> None:
    if path not in ("auto", *PATHS):
        raise ValueError(
            f"{name} must be one of 'auto', 'kernel', 'xla', 'reference', received "
            f"{name}={path!r}."
        )


def requested_path() -> str:
    """The path asked for by the environment or :func:`use`: ``auto`` if none."""
    if kernels.disabled():
        return "reference"
    if _forced:
        return _forced[-1]
    path = os.environ.get(FAST_ENV, "").strip().lower() or "auto"
    _check_path(path, FAST_ENV)
    return path


@functools.cache
def _default_device_type() -> str:
    return "GPU" if tf.config.list_logical_devices("GPU") else "CPU"


def _device_type(variable) -> str:
    name = getattr(variable, "device", "") or ""
    device_type = tf.DeviceSpec.from_string(name).device_type if name else None
    return (device_type or _default_device_type()).upper()


def _has_handles(*variables) -> bool:
    try:
        return all(tf.is_tensor(var.handle) for var in variables)
    except (AttributeError, ValueError, TypeError):
        return False


def choose_path(variable, *slots) -> str:
    """The path that will update ``variable`` (and its ``slots``) in the current trace."""
    requested = requested_path()
    if requested == "reference" or in_xla_context():
        return "reference"
    dtype = variable.dtype.base_dtype
    device = _device_type(variable)
    if requested == "auto":
        requested = "xla" if device == "GPU" else "kernel"
    if requested == "xla":
        # Eagerly there is no trace to keep: XLA would retrace every step.
        if tf.executing_eagerly() or not dtype.is_floating:
            return "reference"
        return "xla"
    if (
        dtype in KERNEL_DTYPES
        and device == "CPU"
        and _has_handles(variable, *slots)
        and kernels.load() is not None
    ):
        return "kernel"
    return "reference"


def _bound_mode(scalars: StepScalars) -> int:
    if scalars.lower_scale is None:
        return 0
    return 2 if scalars.target is None else 1


def _kernel_update(grad, var, m, v, v_hat, scalars: StepScalars, use_locking: bool):
    # Unused scalars get a tensor already in the graph, not a new constant.
    unused = scalars.step_size
    return kernels.load().larq_bamsprod_resource_apply(
        var=var.handle,
        m=m.handle,
        v=v.handle,
        v_hat=v_hat.handle,
        grad=grad,
        one_minus_beta_1=scalars.one_minus_beta_1,
        one_minus_beta_2=scalars.one_minus_beta_2,
        epsilon=scalars.epsilon,
        step_size=scalars.step_size,
        lower_scale=unused if scalars.lower_scale is None else scalars.lower_scale,
        upper_scale=unused if scalars.upper_scale is None else scalars.upper_scale,
        target=unused if scalars.target is None else scalars.target,
        bound_mode=_bound_mode(scalars),
        use_locking=use_locking,
    )


def _xla_update(grad, var, m, v, v_hat, scalars: StepScalars):
    # One function per variable and trace, closing over the variables: variables passed as
    # arguments may be traced as opaque objects (optimizer slots created inside the first
    # tf.function call are), and a cached trace would then update another variable.
    @tf.function(jit_compile=True, autograph=False)
    def update(grad, scalars):
        delta, m_new, v_new, v_hat_new = bamsprod_update(grad, m, v, v_hat, scalars)
        m.assign(m_new, read_value=False)
        v.assign(v_new, read_value=False)
        v_hat.assign(v_hat_new, read_value=False)
        var.assign_sub(delta, read_value=False)
        # A tensor to return, so that callers can group or depend on the update.
        return tf.constant(True)

    return update(grad, scalars)


def apply_dense(
    path: str,
    grad: tf.Tensor,
    var: tf.Variable,
    m: tf.Variable,
    v: tf.Variable,
    v_hat: tf.Variable,
    scalars: StepScalars,
    use_locking: bool = False,
):
    """Update ``var``, ``m``, ``v``, ``v_hat`` in place by ``path`` (from
    :func:`choose_path`, not ``"reference"``); returns the op (``None`` when eager)."""
    grad = dense_gradient(grad, var)  # no op when the optimizer already did it
    if path == "kernel":
        return _kernel_update(grad, var, m, v, v_hat, scalars, use_locking)
    if path == "xla":
        return _xla_update(grad, var, m, v, v_hat, scalars)
    raise ValueError(f"apply_dense takes path 'kernel' or 'xla', received path={path!r}.")
