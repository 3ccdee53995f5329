"""Every optimizer of the comparison trains each of two small registered binary models, and
learns a learnable task with the first."""

import larq as lq
import numpy as np
import pytest
import tensorflow as tf

from larq_bamsprod.harness.catalogue import models, registry

MODELS = {"BinaryCNN": {}, "BinaryMobileNetV2": {"width_multiplier": 0.25}}


@pytest.fixture(scope="module")
def batches():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (16, 28, 28, 1)).astype("float32")
    y = rng.integers(0, 10, 16)
    return x, y


@pytest.mark.parametrize("model_name", list(MODELS))
@pytest.mark.parametrize("optimizer", registry.OPTIMIZER_NAMES)
def test_optimizer_trains_model(optimizer, model_name, batches):
    tf.keras.backend.clear_session()
    model = models.build_model(model_name, (28, 28, 1), 10, seed=0, **MODELS[model_name])
    binary = [v for v in model.trainable_weights if lq.optimizers.Bop.is_binary_variable(v)]
    real = [v for v in model.trainable_weights if not lq.optimizers.Bop.is_binary_variable(v)]
    assert binary and real
    before = [v.numpy().copy() for v in model.trainable_weights]
    model.compile(optimizer=registry.make_optimizer(optimizer),
                  loss="sparse_categorical_crossentropy", run_eagerly=True)  # no tracing: fast
    history = model.fit(*batches, batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    changed = [not np.array_equal(b, v.numpy()) for b, v in zip(before, model.trainable_weights)]
    # Both kinds of variable move: binary kernels (Bop flips them) and real-valued ones.
    assert any(c for c, v in zip(changed, model.trainable_weights) if v.ref() in
               {b.ref() for b in binary})
    assert any(c for c, v in zip(changed, model.trainable_weights) if v.ref() in
               {r.ref() for r in real})


def _learnable_batch(n: int = 32, seed: int = 0):
    """``n`` images of 10 classes: a fixed random template per class plus noise."""
    rng = np.random.default_rng(seed)
    templates = rng.uniform(-1, 1, (10, 28, 28, 1))
    y = np.arange(n) % 10
    x = (templates[y] + 0.3 * rng.standard_normal((n, 28, 28, 1))).astype("float32")
    return x, y


def _training_loss(model, x, y) -> float:
    # Training mode (batch statistics): in inference mode the loss would also change with
    # BatchNorm's moving averages alone, whatever the optimizer does.
    loss = tf.keras.losses.sparse_categorical_crossentropy(y, model(x, training=True))
    return float(tf.reduce_mean(loss))


LEARNING_STEPS = 10
LEARNED_RATIO = 0.6


@pytest.mark.parametrize("optimizer", registry.OPTIMIZER_NAMES)
def test_optimizer_learns_a_learnable_task(optimizer):
    # BinaryCNN, 10 full-batch steps on 32 images, training-mode loss after / before.
    # Seen here (TF 2.19): 0.002-0.014 for the adaptive optimizers, 0.17 sgdm, 0.41 sgd;
    # an optimizer that only adds Gaussian noise to every weight (stddev 1e-3, 1e-2 or 1e-1
    # per step) gives 1.22, 1.15 and 2.8. (BinaryMobileNetV2 learns too slowly for 10
    # steps to tell the two apart: 0.93-1.77 for real optimizers, 0.97-3.4 for noise.)
    tf.keras.backend.clear_session()
    model = models.build_model("BinaryCNN", (28, 28, 1), 10, seed=0)
    model.compile(optimizer=registry.make_optimizer(optimizer),
                  loss="sparse_categorical_crossentropy")
    x, y = _learnable_batch()
    before = _training_loss(model, x, y)
    model.fit(x, y, batch_size=len(x), epochs=LEARNING_STEPS, shuffle=False, verbose=0)
    after = _training_loss(model, x, y)
    assert after < LEARNED_RATIO * before, (before, after)
