"""Every optimizer of the comparison trains each of two small registered binary models."""

import larq as lq
import numpy as np
import pytest
import tensorflow as tf

from larq_bamsprod.harness import models, registry

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
