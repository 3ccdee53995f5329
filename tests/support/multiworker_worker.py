"""One process of a two-worker ``MultiWorkerMirroredStrategy`` run, or the single-process
run it must match.

Run by ``test_multiworker.py``: ``multiworker_worker.py multi OUT`` with ``TF_CONFIG`` set
(one process per worker), and ``multiworker_worker.py single OUT``. Each trains a tiny Larq
model (binary ``QuantDense``) with the same global batch, once with BAMSProd and once with
legacy BAMSProd inside Larq's CaseOptimizer, and writes the final weights to
``OUT/<mode>-<worker index>.npz``.
"""

from __future__ import annotations

import json
import os
import pathlib
import sys

# isort: off
import larq_bamsprod  # noqa: F401  (selects Keras 2 before TensorFlow is imported)
import larq as lq
import numpy as np
import tensorflow as tf
# isort: on

from tiny_models import regression_data, tiny_larq_model  # noqa: E402

from larq_bamsprod import BAMSProd, legacy  # noqa: E402

GLOBAL_BATCH, EPOCHS = 32, 2
OPTIMIZERS = {
    "new": lambda: BAMSProd(learning_rate=0.05, gamma=0.05),
    "case_optimizer": lambda: lq.optimizers.CaseOptimizer(
        (lq.optimizers.Bop.is_binary_variable, legacy.BAMSProd(learning_rate=0.05, gamma=0.05)),
        default_optimizer=legacy.BAMSProd(learning_rate=0.02),
    ),
}


def _dataset():
    x, y = regression_data()
    options = tf.data.Options()
    # Each global batch of 32 is split into per-worker halves: the same 32 examples per
    # step as in the single-process run.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(GLOBAL_BATCH).with_options(options)


def main(mode: str, out: pathlib.Path) -> None:
    if mode == "multi":
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
    else:
        strategy, index = tf.distribute.get_strategy(), 0
    arrays = {"replicas": np.array(strategy.num_replicas_in_sync)}
    for name, make in OPTIMIZERS.items():
        tf.keras.utils.set_random_seed(0)  # same initial weights in every process
        with strategy.scope():
            model = tiny_larq_model()
            model.compile(make(), loss="mse")
        arrays[f"{name}/initial"] = np.concatenate([w.ravel() for w in model.get_weights()])
        model.fit(_dataset(), epochs=EPOCHS, shuffle=False, verbose=0)
        arrays[f"{name}/final"] = np.concatenate([w.ravel() for w in model.get_weights()])
    np.savez(out / f"{mode}-{index}.npz", **arrays)


if __name__ == "__main__":
    main(sys.argv[1], pathlib.Path(sys.argv[2]))
