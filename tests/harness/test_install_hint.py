"""The harness extra's install hint says what that extra needs (#28 item 13): over
TensorFlow >= 2.20 pip would put TensorFlow 2.19 and protobuf 3.20 beside it."""

from importlib import metadata

import pytest

from larq_bamsprod.harness import cli


def _installed_tensorflow(monkeypatch, version):
    real = metadata.version

    def fake(dist):
        if dist == "tensorflow":
            return version
        if dist == "tensorflow-cpu":
            raise metadata.PackageNotFoundError(dist)
        return real(dist)

    monkeypatch.setattr(metadata, "version", fake)


@pytest.mark.parametrize("version", ["2.20.0", "2.21.0"])
def test_over_a_newer_tensorflow_the_hint_says_fresh_venv_and_why(monkeypatch, version):
    _installed_tensorflow(monkeypatch, version)
    hint = cli.harness_install_hint()
    assert "pip install 'larq-bamsprod[harness]' in a fresh venv" in hint
    assert "TensorFlow 2.15-2.19" in hint and "protobuf<3.21" in hint
    assert f"here tensorflow is {version}" in hint


@pytest.mark.parametrize("version", ["2.15.1", "2.19.1"])
def test_within_larq_zoos_range_the_hint_is_the_plain_install_line(monkeypatch, version):
    _installed_tensorflow(monkeypatch, version)
    assert cli.harness_install_hint() == (
        "install the harness extra: pip install 'larq-bamsprod[harness]'")
