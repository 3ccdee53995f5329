"""Keras 3 BAMSProd and Bop against their NumPy references, on every execution path:
eager ``apply``; jitted (``jax.jit(stateless_apply)``, JAX's functional training, or
``tf.function(apply, jit_compile=True)``); eager ``stateless_apply`` (JAX and PyTorch;
Keras' TensorFlow backend refuses it); ``model.fit`` with and without ``jit_compile``."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from bamsprod_reference import TOLERANCES, init_state, reference_step, square_limit
from keras import ops
from keras3_support import BACKEND, as_numpy, jit

from larq_bamsprod.keras3 import BAMSProd, Bop

STEPS = 25
SHAPE = (3, 4)

CONFIGS = {
    "default": {},
    "no_bound": {"bound_target": None},
    "float_target": {"bound_target": 0.05, "gamma": 0.2},
    "fast_closing": {"gamma": 0.5},
    "sqrt_decay_no_correction": {"lr_decay": "sqrt", "bias_correction": False},
    "epsilon_zero": {"epsilon": 0.0, "learning_rate": 0.05},
}


def _gradients(seed=0, steps=STEPS, shape=SHAPE):
    rng = np.random.default_rng(seed)
    grads = rng.normal(size=(steps, *shape)) * rng.uniform(0.01, 3.0, size=(steps, 1, 1))
    grads[:, 0, 0] = 0.0  # a coordinate that never has a gradient (0/0 with epsilon=0)
    return grads.astype(np.float32)


def _w0(shape=SHAPE):
    return np.random.default_rng(1).normal(size=shape).astype(np.float32)


def _reference(grads, kwargs, dtype="float32"):
    state = init_state(_w0())
    for grad in grads:
        state = reference_step(state, grad, grad_limit=square_limit(dtype), **kwargs)
    return state


def _run_eager(optimizer, grads):
    var = keras.Variable(_w0())
    for grad in grads:
        optimizer.apply([ops.convert_to_tensor(grad)], [var])
    return as_numpy([var])[0]


def _run_stateless(optimizer, grads, compiled):
    if BACKEND == "tensorflow":
        pytest.skip("Keras' TensorFlow backend refuses stateless_apply (tf.distribute)")
    var = keras.Variable(_w0())
    optimizer.build([var])
    step = jit(optimizer.stateless_apply) if compiled else optimizer.stateless_apply
    weights = [var.value]
    opt_vars = [v.value for v in optimizer.variables]
    for grad in grads:
        weights, opt_vars = step(opt_vars, [ops.convert_to_tensor(grad)], weights)
    return as_numpy(weights)[0]


def _run_jit(optimizer, grads):
    """JAX: ``stateless_apply`` under ``jax.jit``; TensorFlow: ``apply`` under
    ``tf.function(jit_compile=True)``."""
    if BACKEND != "tensorflow":
        return _run_stateless(optimizer, grads, compiled=True)
    var = keras.Variable(_w0())
    step = jit(lambda grad: optimizer.apply([grad], [var]))
    for grad in grads:
        step(ops.convert_to_tensor(grad))
    return as_numpy([var])[0]


class _GradientIsInput(keras.layers.Layer):
    """``sum(w * x)``: with the loss ``mean(y_pred)`` and batch size 1, the gradient of
    ``w`` at step t is the t-th input row itself."""

    def build(self, input_shape):
        self.w = self.add_weight(shape=SHAPE, initializer=keras.initializers.Constant(_w0()))

    def call(self, x):
        return ops.sum(ops.reshape(x, (-1, *SHAPE)) * self.w, axis=(1, 2))


def _run_fit(optimizer, grads, jit_compile):
    if jit_compile and BACKEND == "torch":
        pytest.skip("no jit_compile on the torch backend")
    model = keras.Sequential([keras.Input((SHAPE[0] * SHAPE[1],)), _GradientIsInput()])
    model.compile(optimizer, loss=lambda y_true, y_pred: ops.mean(y_pred),
                  jit_compile=jit_compile)
    x = grads.reshape(len(grads), -1)
    model.fit(x, np.zeros(len(grads)), batch_size=1, shuffle=False, epochs=1, verbose=0)
    return as_numpy(model.weights)[0]


PATHS = {
    "eager": _run_eager,
    "stateless": lambda opt, g: _run_stateless(opt, g, compiled=False),
    "jit": _run_jit,
    "fit": lambda opt, g: _run_fit(opt, g, jit_compile=False),
    "fit_jit": lambda opt, g: _run_fit(opt, g, jit_compile=True),
}


# Every path with the defaults; every config on the cheap eager and jitted paths.
CASES = [("default", path) for path in PATHS] + [
    (config, path) for config in list(CONFIGS)[1:] for path in ("eager", "jit")]


@pytest.mark.parametrize("config,path", CASES, ids=[f"{c}-{p}" for c, p in CASES])
def test_bamsprod_matches_the_numpy_reference(config, path):
    grads = _gradients()
    w = PATHS[path](BAMSProd(**CONFIGS[config]), grads)
    np.testing.assert_allclose(w, _reference(grads, CONFIGS[config]).w,
                               **TOLERANCES["float32"])


@pytest.mark.parametrize("path", ["eager", "jit", "fit_jit"])
def test_bamsprod_schedules_are_evaluated_at_the_updates_done_so_far(path):
    schedules = {
        "learning_rate": keras.optimizers.schedules.ExponentialDecay(0.05, 1, 0.9),
        "beta_1": keras.optimizers.schedules.InverseTimeDecay(0.9, 1, 1.0),
    }
    grads = _gradients()
    w = PATHS[path](BAMSProd(**schedules), grads)
    reference = {"learning_rate": lambda i: 0.05 * 0.9**i, "beta_1": lambda i: 0.9 / (1 + i)}
    np.testing.assert_allclose(w, _reference(grads, reference).w, **TOLERANCES["float32"])


def test_bamsprod_float16_variable_matches_the_reference():
    grads = _gradients().astype(np.float16)
    var = keras.Variable(_w0().astype(np.float16), dtype="float16")
    optimizer = BAMSProd(learning_rate=0.05)
    for grad in grads:
        optimizer.apply([ops.convert_to_tensor(grad)], [var])
    assert keras.backend.standardize_dtype(var.dtype) == "float16"
    state = init_state(_w0().astype(np.float16))
    for grad in grads:
        state = reference_step(state, grad, learning_rate=0.05, beta_2=float(np.float16(0.999)),
                               grad_limit=square_limit("float16"))
    np.testing.assert_allclose(as_numpy([var])[0], state.w, rtol=1e-2, atol=1e-2)


def test_bamsprod_huge_finite_gradient_keeps_the_step_bounded():
    var = keras.Variable(np.ones(4, np.float32))
    BAMSProd().apply([ops.convert_to_tensor(np.full(4, 1e30, np.float32))], [var])
    assert np.all(np.isfinite(as_numpy([var])[0]))


# Bop, as larq.optimizers.Bop writes it (larq/optimizers.py, _resource_apply_dense):
#   m_t = m + gamma * (g - m);  w_t = lq.math.sign(-sign(w * m_t - threshold) * w)
# with lq.math.sign(x) = +1 for x >= 0, -1 otherwise.
def _bop_reference(w, grads, gamma, threshold):
    w = np.asarray(w, np.float64)
    m = np.zeros_like(w)
    for grad in grads:
        m = m + gamma * (grad - m)
        w = np.where(-np.sign(w * m - threshold) * w >= 0, 1.0, -1.0)
    return w, m


@pytest.mark.parametrize("path", PATHS)
def test_bop_matches_larqs_rule(path):
    grads = _gradients() * 1e-3
    kwargs = {"gamma": 0.3, "threshold": 5e-4}
    w = PATHS[path](Bop(**kwargs), grads)
    expected, _ = _bop_reference(_w0(), grads, **kwargs)
    flipped_somewhere = np.any(expected != np.sign(_w0()))
    assert flipped_somewhere  # the test exercises flips, not only the sign of w0
    np.testing.assert_array_equal(w, expected)


def test_bop_gamma_is_its_learning_rate_and_threshold_may_be_a_schedule():
    threshold = keras.optimizers.schedules.PiecewiseConstantDecay([10], [1e-3, 1.0])
    optimizer = Bop(gamma=0.5, threshold=threshold)
    assert float(optimizer.learning_rate) == 0.5
    grads = _gradients() * 1e-2
    w = _run_eager(optimizer, grads)
    m, out = np.zeros(SHAPE), np.sign(_w0())
    for i, grad in enumerate(grads):
        m = m + 0.5 * (grad - m)
        out = np.where(-np.sign(out * m - threshold(i).__float__()) * out >= 0, 1.0, -1.0)
    np.testing.assert_array_equal(w, out)


# Larq's own Bop (tf-keras), where Larq is installed: the same weights and gradients, run
# in a process that imports larq_bamsprod (Keras 2 for Larq) before TensorFlow.
_LARQ_BOP = """
import json, sys
import numpy as np
import larq_bamsprod
import tensorflow as tf
import larq as lq
w0, grads, gamma, threshold = json.loads(sys.stdin.read())
var = tf.Variable(np.array(w0, np.float32))
bop = lq.optimizers.Bop(gamma=gamma, threshold=threshold)
for grad in grads:
    bop.apply_gradients([(tf.constant(np.array(grad, np.float32)), var)])
print(json.dumps(var.numpy().tolist()))
"""


def test_bop_matches_larqs_own_bop_where_larq_is_installed():
    if importlib.util.find_spec("larq") is None:
        pytest.skip("Larq is not installed here")
    grads = _gradients() * 1e-3
    kwargs = {"gamma": 0.3, "threshold": 5e-4}
    payload = json.dumps([_w0().tolist(), grads.tolist(), kwargs["gamma"],
                          kwargs["threshold"]])
    result = subprocess.run([sys.executable, "-c", _LARQ_BOP], input=payload,
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr[-2000:]
    larq_w = np.array(json.loads(result.stdout.strip().splitlines()[-1]))
    np.testing.assert_array_equal(_run_eager(Bop(**kwargs), grads), larq_w)
