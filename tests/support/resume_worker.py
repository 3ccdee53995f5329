"""Trains a tiny Larq model with BAMSProd, saves it, and resumes in another process.

Run by ``test_resume_process.py`` twice, each time in a fresh interpreter:

``first OUT``: for every case, train N steps, save (``tf.train.Checkpoint`` and
``model.save`` to .h5), train M more steps (the uninterrupted run) and write its weights
and optimizer variables to ``OUT/<case>-uninterrupted.npz``.

``second OUT``: for every case and save method, build a fresh model with other initial
weights, restore from what ``first`` saved, train M steps and write
``OUT/<case>-<method>.npz``.

Op determinism is on, so on CPU both runs must agree bit for bit.
"""

from __future__ import annotations

import pathlib
import re
import sys

# isort: off
import larq_bamsprod  # noqa: F401  (selects Keras 2 before TensorFlow is imported)
import larq as lq
import numpy as np
import tensorflow as tf
# isort: on

from tiny_models import regression_data, tiny_larq_model  # noqa: E402

from larq_bamsprod import BAMSProd, legacy  # noqa: E402

N_STEPS, M_STEPS, BATCH = 5, 4, 32


def _schedules():
    return {
        "learning_rate": tf.keras.optimizers.schedules.ExponentialDecay(0.05, 1, 0.9),
        "beta_1": tf.keras.optimizers.schedules.InverseTimeDecay(0.9, 1, 1.0),
        "gamma": 0.05,
    }


def _case_optimizer():
    return lq.optimizers.CaseOptimizer(
        (lq.optimizers.Bop.is_binary_variable, legacy.BAMSProd(**_schedules())),
        default_optimizer=legacy.BAMSProd(learning_rate=0.01),
    )


CASES = {
    "new": lambda: BAMSProd(**_schedules()),
    "legacy": lambda: legacy.BAMSProd(**_schedules()),
    "case_optimizer": _case_optimizer,
}
METHODS = ("checkpoint", "model_save")


def _train(model, first_step: int, steps: int) -> None:
    x, y = regression_data()
    for i in range(first_step, first_step + steps):
        batch = slice(BATCH * (i % 4), BATCH * (i % 4 + 1))
        model.train_on_batch(x[batch], y[batch])


def optimizer_variables(optimizer, prefix: str = "") -> dict:
    """Every variable of the optimizer (iterations and slots), by a name that does not
    depend on the optimizer's own name scope (which differs after loading)."""
    if isinstance(optimizer, lq.optimizers.CaseOptimizer):
        return {key: v for i, inner in enumerate(optimizer.optimizers)
                for key, v in optimizer_variables(inner, f"{prefix}{i}/").items()}
    legacy_api = isinstance(optimizer, tf.keras.optimizers.legacy.Optimizer)
    variables = optimizer.weights if legacy_api else optimizer.variables
    return {prefix + _canonical(v.name): v for v in variables}


def _canonical(name: str) -> str:
    parts = name.split(":")[0].split("/")
    return "/".join(p for p in parts if not re.fullmatch(r"BAMSProd(_\d+)?|optimizer_case", p))


def _write(path, model) -> None:
    arrays = {f"weight/{i}": w for i, w in enumerate(model.get_weights())}
    for key, v in optimizer_variables(model.optimizer).items():
        arrays[f"optimizer/{key}"] = v.numpy()
    np.savez(path, **arrays)


def _fresh(case: str, seed: int) -> tf.keras.Model:
    tf.keras.backend.clear_session()
    tf.keras.utils.set_random_seed(seed)
    model = tiny_larq_model()
    model.compile(CASES[case](), loss="mse")
    return model


def first(out: pathlib.Path) -> None:
    for case in CASES:
        model = _fresh(case, seed=0)
        _train(model, 0, N_STEPS)
        tf.train.Checkpoint(model=model, optimizer=model.optimizer).write(
            str(out / f"{case}-ckpt"))
        model.save(str(out / f"{case}.h5"))
        _train(model, N_STEPS, M_STEPS)
        _write(out / f"{case}-uninterrupted.npz", model)


def second(out: pathlib.Path) -> None:
    for case in CASES:
        model = _fresh(case, seed=1)  # other initial weights: all must come from the file
        status = tf.train.Checkpoint(model=model, optimizer=model.optimizer).read(
            str(out / f"{case}-ckpt"))
        _train(model, N_STEPS, M_STEPS)
        status.assert_consumed()
        _write(out / f"{case}-checkpoint.npz", model)

        tf.keras.backend.clear_session()
        tf.keras.utils.set_random_seed(1)
        # Larq's CaseOptimizer.from_config deserializes its inner optimizers by bare class
        # name ("BAMSProd"), not the registered "larq_bamsprod.legacy>BAMSProd", so it
        # needs the class passed in (tf-keras 2.19, larq 0.14).
        model = tf.keras.models.load_model(
            str(out / f"{case}.h5"), custom_objects={"BAMSProd": legacy.BAMSProd})
        _train(model, N_STEPS, M_STEPS)
        _write(out / f"{case}-model_save.npz", model)


if __name__ == "__main__":
    tf.config.experimental.enable_op_determinism()
    {"first": first, "second": second}[sys.argv[1]](pathlib.Path(sys.argv[2]))
