"""The binary LSTM cell and the two paper-reproduction scripts (binary VAE, binary LSTM LM).

The cell is checked against a NumPy LSTM step written here from the textbook equations
with ``numpy.where(w >= 0, 1, -1)`` kernels, not from the cell's code. The scripts run
as subprocesses in ``--quick`` mode, both at once to keep this file short.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import larq_bamsprod  # noqa: F401  (must precede TensorFlow: selects Keras 2)

# isort: split
import larq as lq
import numpy as np
import pytest
import tensorflow as tf

from larq_bamsprod.harness.catalogue.rnn import BinaryLSTMCell

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
import synthetic_fmnist  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def reference_lstm_step(x, h, c, w, u, b, binary_activations):
    """One LSTM step with sign()-binarised kernels scaled by 1/sqrt(fan_in); gates i,f,g,o."""
    sign = lambda a: np.where(a >= 0, 1.0, -1.0)  # noqa: E731  (Larq: sign(0) = +1)
    if binary_activations:
        x, h = sign(x), sign(h)
    z = x @ sign(w) / np.sqrt(w.shape[0]) + h @ sign(u) / np.sqrt(u.shape[0]) + b
    i, f, g, o = np.split(z, 4, axis=-1)
    c_new = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
    h_new = _sigmoid(o) * np.tanh(c_new)
    return h_new, c_new


def _built_cell(units=5, input_dim=3, binary_activations=False, seed=0):
    cell = BinaryLSTMCell(units, binary_activations=binary_activations)
    cell.build((None, input_dim))
    rng = np.random.default_rng(seed)
    for var in (cell.kernel, cell.recurrent_kernel, cell.bias):
        var.assign(rng.uniform(-1, 1, var.shape).astype(np.float32))
    return cell, rng


@pytest.mark.parametrize("binary_activations", [False, True])
def test_binary_lstm_cell_matches_numpy_reference(binary_activations):
    cell, rng = _built_cell(binary_activations=binary_activations)
    x = rng.normal(size=(4, 3)).astype(np.float32)
    h = rng.normal(size=(4, 5)).astype(np.float32)
    c = rng.normal(size=(4, 5)).astype(np.float32)
    out, (h_new, c_new) = cell(tf.constant(x), [tf.constant(h), tf.constant(c)])
    with lq.context.quantized_scope(False):  # latent (real-valued) weights
        w, u, b = (v.numpy() for v in (cell.kernel, cell.recurrent_kernel, cell.bias))
    h_ref, c_ref = reference_lstm_step(x, h, c, w, u, b, binary_activations)
    np.testing.assert_allclose(h_new.numpy(), h_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(c_new.numpy(), c_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(out.numpy(), h_new.numpy())


def test_binary_lstm_cell_runs_a_sequence_like_the_reference():
    cell, rng = _built_cell()
    layer = tf.keras.layers.RNN(cell, return_sequences=True)
    xs = rng.normal(size=(2, 6, 3)).astype(np.float32)
    got = layer(tf.constant(xs)).numpy()
    with lq.context.quantized_scope(False):
        w, u, b = (v.numpy() for v in (cell.kernel, cell.recurrent_kernel, cell.bias))
    h = c = np.zeros((2, 5), np.float32)
    for t in range(6):
        h, c = reference_lstm_step(xs[:, t], h, c, w, u, b, False)
        np.testing.assert_allclose(got[:, t], h, rtol=1e-5, atol=1e-6)


def test_binary_lstm_kernels_are_found_by_bop_is_binary_variable():
    cell, _ = _built_cell()
    layer = tf.keras.layers.RNN(cell)
    layer(tf.zeros([1, 2, 3]))
    found = {v.name.split("/")[-1]: lq.optimizers.Bop.is_binary_variable(v)
             for v in layer.trainable_variables}
    assert found == {"kernel:0": True, "recurrent_kernel:0": True, "bias:0": False}


def test_binary_lstm_kernels_get_straight_through_gradients_and_bop_flips_them():
    cell, rng = _built_cell()
    layer = tf.keras.layers.RNN(cell)
    xs = tf.constant(rng.normal(size=(2, 4, 3)).astype(np.float32))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(xs) ** 2)
    grads = tape.gradient(loss, layer.trainable_variables)
    assert all(float(tf.reduce_sum(tf.abs(g))) > 0 for g in grads)
    optimizer = lq.optimizers.CaseOptimizer(
        (lq.optimizers.Bop.is_binary_variable, lq.optimizers.Bop(threshold=0.0, gamma=1.0)),
        default_optimizer=tf.keras.optimizers.legacy.SGD(0.0),
    )
    optimizer.apply_gradients(zip(grads, layer.trainable_variables))
    with lq.context.quantized_scope(False):
        for var in (cell.kernel, cell.recurrent_kernel):
            assert set(np.unique(var.numpy())) <= {-1.0, 1.0}


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"units": 0}, "units must be a positive integer, received units=0"),
        ({"units": 4, "kernel_scale": -1.0}, "kernel_scale must be"),
        ({"units": 4, "kernel_scale": "sqrt"}, "kernel_scale must be"),
    ],
)
def test_binary_lstm_cell_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        BinaryLSTMCell(**kwargs)


def test_binary_lstm_cell_config_round_trip():
    cell = BinaryLSTMCell(7, binary_activations=True, kernel_scale=0.5)
    clone = BinaryLSTMCell.from_config(cell.get_config())
    assert (clone.units, clone.binary_activations, clone.kernel_scale) == (7, True, 0.5)
    assert clone.kernel_quantizer.precision == 1
    assert clone.input_quantizer is not None


# --------------------------------------------------------------------------- scripts
@pytest.fixture(scope="module")
def quick_runs(tmp_path_factory):
    """Run both examples with --quick at the same time; return their output folders."""
    base = tmp_path_factory.mktemp("examples")
    # A tiny Fashion-MNIST built by TFDS from synthetic files: no Debian package needed.
    data_dir = synthetic_fmnist.make(base / "fmnist", n=512)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    procs = {}
    for name, extra in (("binary_vae", ["--data-dir", data_dir]), ("binary_lstm_ptb", [])):
        out = base / name
        procs[name] = (
            out,
            subprocess.Popen(
                [sys.executable, str(ROOT / "examples" / f"{name}.py"), "--quick",
                 "--output", str(out), *extra],
                cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                text=True,
            ),
        )
    results = {}
    for name, (out, proc) in procs.items():
        log, _ = proc.communicate(timeout=600)
        results[name] = (out, proc.returncode, log)
    return results


def _finished(quick_runs, name):
    out, code, log = quick_runs[name]
    assert code == 0, log[-3000:]
    return out


@pytest.mark.slow
def test_vae_quick_writes_json_and_png(quick_runs):
    out = _finished(quick_runs, "binary_vae")
    assert (out / "beta_sweeps.png").stat().st_size > 0
    results = json.loads((out / "results.json").read_text())
    assert set(results["sweeps"]) == {"beta_1", "beta_2"}
    assert all(len(labels) == 2 for labels in results["sweeps"].values())
    for run in results["runs"].values():
        assert len(run["epochs"]) == 1


@pytest.mark.slow
def test_vae_quick_loss_is_finite_and_decreases_over_steps(quick_runs):
    out = _finished(quick_runs, "binary_vae")
    results = json.loads((out / "results.json").read_text())
    for label, run in results["runs"].items():
        steps = run["step_loss"]
        assert all(v is not None and math.isfinite(v) for v in steps), label
        assert np.mean(steps[-3:]) < np.mean(steps[:3]), (label, steps)


@pytest.mark.slow
def test_lstm_quick_runs_the_harness_graph_with_finite_perplexities(quick_runs):
    # The script is a setting of `larq-bamsprod compare --model BinaryLSTM --dataset ptb`.
    out = _finished(quick_runs, "binary_lstm_ptb")
    assert (out / "curves.png").stat().st_size > 0
    summary = json.loads((out / "results.json").read_text())
    assert summary["metric"] == "perplexity"
    assert [r["optimizer"] for r in summary["rows"]] == ["bamsprod", "bop"]
    for row in summary["rows"]:
        assert math.isfinite(row["final_test_perplexity_mean"])
        assert row["final_test_perplexity_mean"] > 1
    assert "final test perplexity" in (out / "results.md").read_text()


def _import_example(name):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_vae_sweeps_bamsprod_with_algorithm_1s_sqrt_decay_unless_told_otherwise():
    # Section 5.1's sweep is of the paper's algorithm (and docs/RESULTS.md ran it so), while
    # the library's default is lr_decay=None.
    vae = _import_example("binary_vae")
    args = vae.parse_args([])
    assert args.lr_decay == "sqrt"
    optimizer = vae.make_sweep_optimizer(args.optimizer, 0.8, 0.99, None, args.lr_decay)
    assert optimizer.get_config()["lr_decay"] == "sqrt"
    assert vae._swept_hyperparameters(args)["lr_decay"] == "sqrt"
    args = vae.parse_args(["--lr-decay", "none"])
    optimizer = vae.make_sweep_optimizer(args.optimizer, 0.8, 0.99, None, args.lr_decay)
    assert optimizer.get_config()["lr_decay"] is None
    assert vae.parse_args(["--optimizer", "adam"]).lr_decay is None


def test_vae_refuses_lr_decay_for_an_optimizer_without_it(capsys):
    vae = _import_example("binary_vae")
    with pytest.raises(SystemExit) as exc:
        vae.parse_args(["--optimizer", "adam", "--lr-decay", "sqrt"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--lr-decay is BAMSProd's; --optimizer 'adam' has none" in err
