"""larq-zoo's training recipes with BAMSProd and Bop (``larq_bamsprod.harness.experiments.zoo``,
CLI)."""

import json
import math
import os
from pathlib import Path
from types import SimpleNamespace

import larq as lq
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from larq_bamsprod import legacy
from larq_bamsprod.harness import cli
from larq_bamsprod.harness.catalogue import data
from larq_bamsprod.harness.experiments import zoo


class ZooTinyImages(tfds.core.GeneratorBasedBuilder):
    """Grey 8x8 images of 4 classes, 32 train and 16 test: a tiny real TFDS dataset."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(8, 8, 1)),
                "label": tfds.features.ClassLabel(num_classes=4),
            }),
            supervised_keys=("image", "label"),
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(32, 0), "test": self._generate_examples(16, 1)}

    def _generate_examples(self, n, seed):
        rng = np.random.default_rng(seed)
        for i in range(n):
            image = rng.integers(0, 256, (8, 8, 1), dtype=np.uint8)
            yield i, {"image": image, "label": i % 4}


@pytest.fixture(scope="module")
def tiny_data_dir(tmp_path_factory):
    data_dir = str(tmp_path_factory.mktemp("tfds"))
    tfds.builder("zoo_tiny_images", data_dir=data_dir).download_and_prepare(
        download_config=tfds.download.DownloadConfig(try_download_gcs=False)
    )
    return data_dir


# The smallest settings that still run the recipes' own code: QuickNet with one block per
# section (its layers, quantizers and optimizer unchanged), ResNetE18 as it is (its spec fixes
# the widths: 11.2M parameters), 32x32 inputs, 2 batches of 4, no validation run, no
# TensorBoard. ResNetE18 trains eagerly and saves nothing: tracing its training step costs
# three times its two eager steps; the QuickNet runs take the tf.function path and save.
TINY = {
    "TrainQuickNet": {"model.section_blocks": (1, 1, 1, 1),
                      "model.section_filters": (8, 16, 32, 64)},
    "TrainBinaryResNetE18": {"use_model_checkpointing": False, "save_weights": False},
}
EAGER = {"TrainBinaryResNetE18"}
QUICK = {"use_tensorboard": False, "validation_frequency": 2}
RUNS = [(recipe, optimizer) for recipe in TINY for optimizer in ("bamsprod", "bop")]
# The recipe's own optimizer, made legacy: what makes TrainQuickNet run on TF >= 2.11.
RUNS.append(("TrainQuickNet", "recipe"))


@pytest.fixture(scope="module", params=RUNS, ids=["-".join(run) for run in RUNS])
def trained(request, tiny_data_dir, tmp_path_factory):
    """One recipe trained for 2 steps with one optimizer; the weights before and after."""
    recipe, optimizer = request.param
    tf.keras.backend.clear_session()
    tf.keras.utils.set_random_seed(0)
    output = tmp_path_factory.mktemp(f"{recipe}-{optimizer}")
    task = zoo.make_recipe(
        recipe, optimizer=optimizer, dataset="zoo_tiny_images", data_dir=tiny_data_dir,
        epochs=1, batch_size=4, steps_per_epoch=2, image_size=32, output=output,
        overrides={**TINY[recipe], **QUICK},
    )
    before = {v.name: v.numpy().copy() for v in task.model.trainable_variables}
    tf.config.run_functions_eagerly(recipe in EAGER)
    try:
        task.run()
    finally:
        tf.config.run_functions_eagerly(False)
    yield SimpleNamespace(task=task, optimizer=optimizer, before=before, output=output)
    tf.keras.backend.clear_session()


def test_recipe_training_loss_is_finite(trained):
    losses = trained.task.model.history.history["loss"]
    assert len(losses) == 1 and math.isfinite(losses[0])


def test_recipe_training_changes_the_weights(trained):
    variables = trained.task.model.trainable_variables
    changed = [v.name for v in variables if not np.array_equal(v.numpy(), trained.before[v.name])]
    assert len(changed) > len(variables) // 2


def test_recipe_trains_with_the_requested_optimizer(trained):
    optimizer = trained.task.model.optimizer
    binary = [v for v in trained.task.model.trainable_variables
              if lq.optimizers.Bop.is_binary_variable(v)]
    assert binary  # the recipes' models have binary kernels
    if trained.optimizer == "bamsprod":
        assert isinstance(optimizer, legacy.BAMSProd)
        assert int(optimizer.iterations) == 2
    elif trained.optimizer == "recipe":  # QuickNet's: Adam on binary kernels, SGD elsewhere
        assert isinstance(optimizer, lq.optimizers.CaseOptimizer)
        adam, sgd = optimizer.optimizers
        assert type(adam) is tf.keras.optimizers.legacy.Adam
        assert type(sgd) is tf.keras.optimizers.legacy.SGD
        assert int(adam.iterations) == 2 and int(sgd.iterations) == 2
        to_adam = [i for i in optimizer.var_opt_mapping.values() if i == 0]
        assert len(to_adam) == len(binary)
    else:
        assert isinstance(optimizer, lq.optimizers.CaseOptimizer)
        bop = optimizer.optimizers[0]
        assert isinstance(bop, lq.optimizers.Bop) and int(bop.iterations) == 2
        to_bop = [i for i in optimizer.var_opt_mapping.values() if i == 0]
        assert len(to_bop) == len(binary)


def test_recipe_run_writes_history_naming_the_optimizer(trained):
    history = json.loads((trained.output / "history.json").read_text())
    expected = {"bamsprod": ["BAMSProd"], "bop": ["CaseOptimizer", "Bop", "Adam"],
                "recipe": ["CaseOptimizer", "Adam", "SGD"]}[trained.optimizer]
    assert history["optimizer_classes"] == expected
    assert history["steps_per_epoch"] == 2 and len(history["history"]["loss"]) == 1


@pytest.mark.parametrize("recipe", sorted(zoo.RECIPES))
def test_every_recipe_builds_its_own_optimizer_as_legacy(recipe, tiny_data_dir):
    task = zoo.make_recipe(recipe, optimizer="recipe", dataset="zoo_tiny_images",
                           data_dir=tiny_data_dir, steps_per_epoch=2, batch_size=4)
    optimizer = task.optimizer
    assert isinstance(optimizer, tf.keras.optimizers.legacy.Optimizer)
    for inner in getattr(optimizer, "optimizers", []):
        assert isinstance(inner, tf.keras.optimizers.legacy.Optimizer)


def test_quicknet_recipe_optimizer_keeps_its_case_split_and_schedules(tiny_data_dir):
    task = zoo.make_recipe("TrainQuickNet", optimizer="recipe", dataset="zoo_tiny_images",
                           data_dir=tiny_data_dir, epochs=10, steps_per_epoch=2, batch_size=4)
    optimizer = task.optimizer
    binary, default = optimizer.optimizers
    assert type(binary) is tf.keras.optimizers.legacy.Adam
    assert type(default) is tf.keras.optimizers.legacy.SGD
    assert float(default.momentum) == pytest.approx(0.9)
    # CosineDecayWithWarmup(peak, warmup=5 epochs, decay=10 epochs) at the end of warm-up.
    assert float(binary.learning_rate(10)) == pytest.approx(1e-2)
    assert float(default.learning_rate(10)) == pytest.approx(0.1)


def test_epoch_schedule_becomes_a_step_schedule_relative_to_epoch_0(tiny_data_dir):
    # TrainBinaryResNetE18: 0.004, times 0.3 at epochs 70, 90 and 110.
    task = zoo.make_recipe("TrainBinaryResNetE18", dataset="zoo_tiny_images",
                           data_dir=tiny_data_dir, steps_per_epoch=3, batch_size=4)
    shape = zoo.recipe_schedule_shape(task)
    steps = [0, 70 * 3 - 1, 70 * 3, 90 * 3, 110 * 3, 120 * 3 - 1]
    values = [float(shape(tf.constant(s, tf.int64))) for s in steps]
    np.testing.assert_allclose(values, [1, 1, 0.3, 0.09, 0.027, 0.027], rtol=1e-6)


def test_optimizer_schedule_shape_peaks_at_one(tiny_data_dir):
    task = zoo.make_recipe("TrainQuickNet", dataset="zoo_tiny_images", data_dir=tiny_data_dir,
                           epochs=10, steps_per_epoch=2, batch_size=4)
    shape = zoo.recipe_schedule_shape(task)
    values = [float(shape(tf.constant(s, tf.int64))) for s in range(20)]
    assert values[0] == 0.0 and values[10] == pytest.approx(1.0) and max(values) <= 1 + 1e-6


def test_recipe_schedule_shape_survives_serialization():
    from larq_zoo.training.learning_schedules import CosineDecayWithWarmup

    # What recipe_schedule_shape returns for QuickNet: the schedule divided by its peak.
    shape = zoo.ScaledSchedule(1 / 0.1, CosineDecayWithWarmup(0.1, 5, 50))
    copy = tf.keras.optimizers.schedules.deserialize(
        json.loads(json.dumps(tf.keras.optimizers.schedules.serialize(shape)))
    )
    assert isinstance(copy, zoo.ScaledSchedule)
    for step in (0, 3, 5, 20, 49):
        assert float(copy(step)) == pytest.approx(float(shape(step)))


def test_bamsprod_run_drops_the_recipes_epoch_rate_callback(tiny_data_dir):
    # The callback would set BAMSProd's rate to Adam's; its shape is in the schedule instead.
    def callbacks(optimizer):
        task = zoo.make_recipe("TrainBinaryResNetE18", optimizer=optimizer,
                               dataset="zoo_tiny_images", data_dir=tiny_data_dir)
        return [type(c).__name__ for c in task.callbacks]

    assert "LearningRateScheduler" in callbacks("recipe")
    assert "LearningRateScheduler" not in callbacks("bamsprod")


def test_steps_per_epoch_caps_training_and_validation_batches(tiny_data_dir):
    task = zoo.make_recipe("TrainQuickNet", dataset="zoo_tiny_images", data_dir=tiny_data_dir,
                           steps_per_epoch=3, batch_size=4)
    assert task.steps_per_epoch == 3
    assert task.dataset.train()[1] == 12 and task.dataset.validation()[1] == 12


def test_resize_to_input_maps_grey_images_to_normalised_rgb(tiny_data_dir):
    task = zoo.make_recipe("TrainQuickNet", dataset="zoo_tiny_images", data_dir=tiny_data_dir,
                           image_size=16)
    image = tf.fill((8, 8, 1), tf.constant(255, tf.uint8))
    x, y = task.preprocessing({"image": image, "label": tf.constant(3, tf.int64)})
    expected = (255.0 - np.array([0.485, 0.456, 0.406]) * 255) / (np.array([0.229, 0.224, 0.225])
                                                                  * 255)
    assert x.shape == (16, 16, 3) and int(y) == 3
    np.testing.assert_allclose(x.numpy()[0, 0], expected, rtol=1e-5)


def test_to_legacy_copies_a_new_api_optimizer_and_its_custom_schedule():
    from larq_zoo.training.learning_schedules import CosineDecayWithWarmup

    schedule = CosineDecayWithWarmup(1e-3, 5, 50)  # not registered with Keras
    new = tf.keras.optimizers.Adam(schedule, epsilon=1e-8, amsgrad=True, clipnorm=1.0)
    old = zoo.to_legacy(new)
    assert type(old) is tf.keras.optimizers.legacy.Adam
    config = old.get_config()
    assert config["epsilon"] == 1e-8 and config["amsgrad"] and config["clipnorm"] == 1.0
    assert isinstance(old.learning_rate, CosineDecayWithWarmup)
    assert old.learning_rate.get_config() == schedule.get_config()


def test_to_legacy_rejects_weight_decay():
    with pytest.raises(ValueError, match="weight_decay=0.1"):
        zoo.to_legacy(tf.keras.optimizers.Adam(weight_decay=0.1))


def test_unknown_optimizer_lists_the_choices():
    with pytest.raises(ValueError, match="valid optimizers: recipe, bamsprod, bop"):
        zoo.make_recipe("TrainQuickNet", optimizer="lamb")


def test_parse_config_reads_python_literals_else_strings():
    assert zoo.parse_config(["model.section_filters=[8,16]", "dataset.name=cifar10"]) == {
        "model.section_filters": [8, 16], "dataset.name": "cifar10"}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        zoo.parse_config(["section_filters"])


def test_cli_recipe_with_unknown_name_lists_the_recipes(capsys):
    assert cli.main(["recipe", "TrainQuikNet"]) == 2
    err = capsys.readouterr().err
    assert "unknown recipe 'TrainQuikNet'" in err
    assert "TrainQuickNet" in err and "TrainBinaryResNetE18" in err and "TrainBiRealNet" in err


@pytest.mark.skipif(
    not Path(data.DEFAULT_FASHION_MNIST_DIR, "train-images-idx3-ubyte.gz").is_file(),
    reason=f"no Fashion-MNIST in {data.DEFAULT_FASHION_MNIST_DIR} (apt-get install "
    "dataset-fashion-mnist)",
)
def test_cli_recipe_trains_on_offline_fashion_mnist(tmp_path, capsys):
    data_dir = str(tmp_path / "tfds")
    # 64 examples per split, built by TFDS from Debian's files as `recipe` would build all.
    data.prepare("fashion_mnist", data_dir=data_dir, max_examples_per_split=64)
    tf.keras.backend.clear_session()
    output = tmp_path / "run"
    argv = ["recipe", "TrainQuickNet", "--optimizer", "bamsprod", "--dataset", "fashion_mnist",
            "--data-dir", data_dir, "--epochs", "1", "--steps-per-epoch", "2",
            "--batch-size", "4", "--image-size", "32", "--output", str(output)]
    argv += [f"--set={k}={v}" for k, v in {**TINY["TrainQuickNet"], **QUICK}.items()]
    assert cli.main(argv) == 0
    history = json.loads((output / "history.json").read_text())
    assert history["dataset"] == "fashion_mnist" and history["optimizer_classes"] == ["BAMSProd"]
    assert math.isfinite(history["history"]["loss"][0])
    assert os.path.isfile(output / "model.index") and os.path.isfile(output / "recipe.json")


def _tree(folder):
    return {p: p.read_bytes() for p in Path(folder).rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def recipe_run(tiny_data_dir, tmp_path_factory):
    """``larq-bamsprod recipe TrainQuickNet`` for 3 steps, as a user runs it (TensorBoard on)."""
    output = tmp_path_factory.mktemp("recipe") / "run"
    argv = ["recipe", "TrainQuickNet", "--dataset", "zoo_tiny_images", "--data-dir",
            tiny_data_dir, "--epochs", "1", "--steps-per-epoch", "3", "--batch-size", "4",
            "--image-size", "32", "--output", str(output)]
    argv += [f"--set={k}={v}" for k, v in TINY["TrainQuickNet"].items()]
    tf.keras.backend.clear_session()
    assert cli.main(argv) == 0
    return SimpleNamespace(argv=argv, output=output)


def test_recipe_output_holds_what_resuming_and_reporting_need_and_no_more(recipe_run,
                                                                         tiny_data_dir):
    output = recipe_run.output
    names = {p.name for p in output.iterdir()}
    assert {"recipe.json", "history.json", "stats.json", "model.index"} <= names
    assert not list(output.glob("*.h5"))  # larq-zoo's final copies: only with save_weights
    # The checkpoint holds the latent weights and BAMSProd's m, v, v_hat: 16 bytes per
    # parameter; everything else (TensorBoard, JSON, checkpoint index) under 1 MB.
    task = zoo.make_recipe("TrainQuickNet", dataset="zoo_tiny_images",
                           data_dir=tiny_data_dir, image_size=32,
                           batch_size=4, overrides=TINY["TrainQuickNet"])
    size = sum(p.stat().st_size for p in output.rglob("*") if p.is_file())
    assert size <= 16 * task.model.count_params() + 2**20, size


def test_rerunning_a_finished_recipe_skips_it_quietly(recipe_run, capsys):
    before = _tree(recipe_run.output)
    assert cli.main(recipe_run.argv) == 0
    out, err = capsys.readouterr()
    assert "holds this recipe's finished run; skipped" in out
    assert "Value in checkpoint could not be found" not in out + err
    assert _tree(recipe_run.output) == before


@pytest.mark.parametrize("change, expected", [
    (["--optimizer", "bop"], "optimizer: 'bamsprod' -> 'bop')"),
    (["--hparam", "bamsprod.learning_rate=0.1"], "hyperparameters.learning_rate: 0.01 -> 0.1"),
    (["--epochs", "2"], "epochs: 1 -> 2"),
    (["--image-size", "40"], "input_shape: [32, 32, 3] -> [40, 40, 3]"),
])
def test_recipe_rerun_with_other_settings_is_refused(recipe_run, capsys, change, expected):
    before = _tree(recipe_run.output)
    assert cli.main(recipe_run.argv + change) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"larq-bamsprod recipe: error: {recipe_run.output} holds a run of "
                          "other settings (")
    assert expected in err
    assert _tree(recipe_run.output) == before


def test_recipe_says_when_images_are_resized_to_the_models_input(tiny_data_dir):
    task = zoo.make_recipe("TrainQuickNet", dataset="zoo_tiny_images", data_dir=tiny_data_dir,
                           image_size=32)
    assert zoo.input_notes(task) == [
        "zoo_tiny_images's 8x8x1 images are resized to 32x32x3, the model's input (set it "
        "with --image-size)"]
