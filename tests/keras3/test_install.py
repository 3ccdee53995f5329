"""In the Keras 3 + JAX stack (make install-keras3: keras and jax, then this project with
its keras3 extra), installing the project brought no TensorFlow."""

from __future__ import annotations

import os
from importlib import metadata

import pytest

pytestmark = pytest.mark.skipif(
    not os.environ.get("LARQ_BAMSPROD_KERAS3_INSTALL"),
    reason="only in the Keras 3 + JAX stack (make test-keras3 sets "
    "LARQ_BAMSPROD_KERAS3_INSTALL=1)",
)

TENSORFLOW = ("tensorflow", "tensorflow-cpu", "tensorflow-intel", "tf-keras", "tf-nightly")


def _installed(dist: str) -> bool:
    try:
        metadata.version(dist)
    except metadata.PackageNotFoundError:
        return False
    return True


def test_the_project_is_installed_here():
    assert _installed("larq-bamsprod")


def test_installing_the_project_with_keras3_brought_no_tensorflow():
    present = [dist for dist in TENSORFLOW if _installed(dist)]
    assert not present, f"installed with the keras3 extra: {present}"
