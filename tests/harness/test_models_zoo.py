"""Every larq-zoo entry of the registry builds at 28x28x1 and 32x32x3 (slow: ~13 builds x 2)."""

import larq as lq
import numpy as np
import pytest
import tensorflow as tf

from larq_bamsprod.harness.catalogue.models import MODELS, ZOO_MIN_INPUT, build_model

ZOO = [name for name in MODELS if name not in ("BinaryCNN", "BinaryResNet34",
                                                "BinaryMobileNetV2", "BinaryLSTM")]


@pytest.mark.slow
@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3)], ids=["28x28x1", "32x32x3"])
@pytest.mark.parametrize("name", ZOO)
def test_zoo_model_maps_a_batch_to_class_probabilities(name, shape):
    tf.keras.backend.clear_session()
    model = build_model(name, shape, 10, seed=0)
    assert model.input_shape == (None, *shape)
    y = model(np.zeros((2, *shape), np.float32), training=False).numpy()
    assert y.shape == (2, 10)
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-5)
    assert any(lq.optimizers.Bop.is_binary_variable(v) for v in model.trainable_weights)
    resized = [layer for layer in model.layers if isinstance(layer, tf.keras.layers.Resizing)]
    assert len(resized) == (shape[0] < ZOO_MIN_INPUT.get(name, 0))
