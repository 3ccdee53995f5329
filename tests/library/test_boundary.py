"""The optimizer library stands alone: it never imports the harness or the harness' stack.

Checked two ways: statically (every ``import`` statement of every library module, parsed
with ``ast``) and at run time (what ``sys.modules`` holds after importing the package and
training a Larq model in a fresh interpreter). With ``LARQ_BAMSPROD_LIGHT_INSTALL`` set (as
``make test-lib`` sets it in the library-only environment) the installed distributions are
checked too: no harness packages, the expected TensorFlow kept, and the ``larq-bamsprod``
command answering with one line that names the extra to install.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

import larq_bamsprod

PACKAGE = Path(larq_bamsprod.__file__).parent
LIBRARY_MODULES = sorted(
    p for p in PACKAGE.rglob("*.py") if "harness" not in p.relative_to(PACKAGE).parts
)
HARNESS_ONLY = ("larq_bamsprod.harness", "larq_zoo", "tensorflow_datasets", "matplotlib",
                "zookeeper", "tqdm", "optuna")
# Larq is the library's companion, not its dependency: the library must not need it.
NOT_A_DEPENDENCY = ("larq",)
HARNESS_DISTRIBUTIONS = ("larq-zoo", "zookeeper", "tensorflow-datasets", "matplotlib")


def _imported_names(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def _is_under(name: str, prefixes) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_the_library_has_modules_to_check():
    relative = {str(p.relative_to(PACKAGE)) for p in LIBRARY_MODULES}
    assert {"optimizers.py", "legacy.py", "update_rule.py", "kernels/__init__.py"} <= relative


@pytest.mark.parametrize("path", LIBRARY_MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_library_module_imports_nothing_of_the_harness(path):
    bad = [n for n in _imported_names(path) if _is_under(n, HARNESS_ONLY + NOT_A_DEPENDENCY)]
    assert not bad, f"{path.relative_to(PACKAGE)} imports {bad}"


@pytest.mark.parametrize(
    "path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE))
)
def test_no_module_imports_another_modules_private_names(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    bad = [
        f"from {node.module} import {alias.name}"
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("larq_bamsprod")
        for alias in node.names
        if alias.name.startswith("_") or any(
            part.startswith("_") for part in node.module.split("."))
    ]
    assert not bad, bad


_PROBE = """
import json, sys
import larq_bamsprod
import larq as lq
import tensorflow as tf

tf.keras.utils.set_random_seed(0)
x = tf.random.normal((32, 8))
y = tf.cast(tf.reduce_sum(x, axis=1) > 0, tf.int32)
losses = {}
for label, make in (
    ("BAMSProd", lambda: larq_bamsprod.BAMSProd(0.01)),
    ("CaseOptimizer", lambda: lq.optimizers.CaseOptimizer(
        (lq.optimizers.Bop.is_binary_variable, larq_bamsprod.legacy.BAMSProd(0.01)),
        default_optimizer=tf.keras.optimizers.legacy.Adam(0.01))),
):
    model = tf.keras.Sequential([
        tf.keras.Input((8,)),
        lq.layers.QuantDense(16, kernel_quantizer="ste_sign", kernel_constraint="weight_clip"),
        tf.keras.layers.BatchNormalization(),
        tf.keras.layers.Dense(2, activation="softmax"),
    ])
    model.compile(make(), "sparse_categorical_crossentropy")
    history = model.fit(x, y, epochs=20, batch_size=32, verbose=0).history["loss"]
    losses[label] = [history[0], history[-1]]
print(json.dumps({"modules": sorted(sys.modules), "losses": losses,
                  "tf": tf.__version__}))
"""


@pytest.fixture(scope="module")
def probe():
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True,
                            env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_training_a_larq_model_loads_no_harness_module(probe):
    loaded = [m for m in probe["modules"] if _is_under(m, HARNESS_ONLY)]
    assert not loaded, loaded


@pytest.mark.parametrize("label", ["BAMSProd", "CaseOptimizer"])
def test_bamsprod_trains_a_larq_bnn_alone_and_in_case_optimizer(probe, label):
    first, last = probe["losses"][label]
    assert last < 0.8 * first, probe["losses"]


light = pytest.mark.skipif(
    not os.environ.get("LARQ_BAMSPROD_LIGHT_INSTALL"),
    reason="only in the library-only environment (make test-lib sets "
    "LARQ_BAMSPROD_LIGHT_INSTALL=tensorflow==VERSION)",
)


def _installed(dist: str) -> bool:
    try:
        metadata.version(dist)
    except metadata.PackageNotFoundError:
        return False
    return True


@light
def test_plain_install_brings_no_harness_dependency():
    present = [d for d in HARNESS_DISTRIBUTIONS if _installed(d)]
    assert not present, f"installed without the harness extra: {present}"


@light
def test_plain_install_keeps_the_tensorflow_installed_first(probe):
    dist, _, version = os.environ["LARQ_BAMSPROD_LIGHT_INSTALL"].partition("==")
    assert metadata.version(dist) == version
    assert probe["tf"] == version


@light
def test_harness_command_without_the_extra_names_it_in_one_line():
    command = shutil.which("larq-bamsprod", path=str(Path(sys.executable).parent))
    assert command is not None, "the larq-bamsprod console script is not installed"
    result = subprocess.run([command, "compare", "--epochs", "1"], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "pip install 'larq-bamsprod[harness]'" in lines[0]
    assert "larq-zoo" in lines[0]
    tf_version = os.environ["LARQ_BAMSPROD_LIGHT_INSTALL"].partition("==")[2]
    if tuple(int(p) for p in tf_version.split(".")[:2]) >= (2, 20):  # #28 item 13
        assert "in a fresh venv: it needs TensorFlow 2.15-2.19" in lines[0]
