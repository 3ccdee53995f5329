"""Trains with BAMSProd on one device and under MirroredStrategy on two virtual CPUs.

Run by ``test_distributed.py`` in a fresh interpreter: the virtual devices must be set up
before TensorFlow initializes its devices, which any earlier test would have done. Prints
one JSON line with the results.
"""

from __future__ import annotations

import json
import sys

# isort: off
import larq_bamsprod  # noqa: F401  (selects Keras 2 before TensorFlow is imported)
import numpy as np
import tensorflow as tf
# isort: on

_cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    _cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
)

from tiny_models import regression_data, tiny_model  # noqa: E402

from larq_bamsprod import BAMSProd, legacy  # noqa: E402

CLASSES = {"new": BAMSProd, "legacy": legacy.BAMSProd}
GLOBAL_BATCH = 32


def _dataset(x, y):
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(GLOBAL_BATCH)


def _train(factory, strategy, initial_weights, x, y):
    with strategy.scope():
        model = tiny_model()
        model.set_weights(initial_weights)
        model.compile(factory(learning_rate=0.05, gamma=0.05), loss="mse")
    before = model.evaluate(_dataset(x, y), verbose=0)
    model.fit(_dataset(x, y), epochs=3, shuffle=False, verbose=0)
    after = model.evaluate(_dataset(x, y), verbose=0)
    return model.get_weights(), before, after, int(model.optimizer.iterations.numpy())


def main() -> None:
    x, y = regression_data()
    tf.keras.utils.set_random_seed(0)
    initial = tiny_model().get_weights()
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    mirrored = tf.distribute.MirroredStrategy(devices)
    results = {"devices": devices, "replicas": mirrored.num_replicas_in_sync}
    for name, factory in CLASSES.items():
        single = _train(factory, tf.distribute.get_strategy(), initial, x, y)
        multi = _train(factory, mirrored, initial, x, y)
        results[name] = {
            "max_abs_diff": max(float(np.max(np.abs(a - b))) for a, b in zip(single[0], multi[0])),
            "max_abs_change": max(float(np.max(np.abs(a - b))) for a, b in zip(single[0], initial)),
            "single_loss": [single[1], single[2]],
            "mirrored_loss": [multi[1], multi[2]],
            "iterations": [single[3], multi[3]],
        }
    sys.stdout.write("RESULTS " + json.dumps(results) + "\n")


if __name__ == "__main__":
    main()
