"""Building the compiled kernel: ``build --require`` can fail CI, plain ``build`` only
warns, and a failed build is retried automatically (issue #13).

A fake compiler (``$CXX``, a shell script) records its calls; ``LARQ_BAMSPROD_KERNEL_DIR``
points at a temporary cache, so nothing here touches the real kernel.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tensorflow as tf

from larq_bamsprod import kernels

FAILING = """#!/bin/sh
echo "$@" >> "{log}"
[ "$1" = "--version" ] && exit 0
echo "fake compiler: error" >&2
exit 1
"""
# Exits 0 and writes a file that is not a shared library: the build "succeeds", the
# load fails.
GARBAGE = """#!/bin/sh
echo "$@" >> "{log}"
[ "$1" = "--version" ] && exit 0
while [ $# -gt 0 ]; do
  if [ "$1" = "-o" ]; then echo "not a library" > "$2"; fi
  shift
done
exit 0
"""


@pytest.fixture
def fake_compiler(monkeypatch, tmp_path):
    """``install(script)``: make ``script`` the compiler; returns a function counting the
    compile calls (not ``--version``) made so far."""
    cache = tmp_path / "cache"
    monkeypatch.setenv(kernels.DIR_ENV, str(cache))
    monkeypatch.delenv(kernels.DISABLE_ENV, raising=False)
    monkeypatch.delenv(kernels.RETRY_ENV, raising=False)
    log = tmp_path / "calls.log"

    def install(script: str):
        cxx = tmp_path / "fake-cxx"
        cxx.write_text(script.format(log=log))
        cxx.chmod(cxx.stat().st_mode | stat.S_IEXEC)
        monkeypatch.setenv(kernels.CXX_ENV, str(cxx))
        return lambda: sum(
            1 for line in (log.read_text().splitlines() if log.exists() else [])
            if line.strip() != "--version"
        )

    install.cache = cache
    return install


def _fresh_process_state(monkeypatch):
    # What a new Python process starts with.
    monkeypatch.setattr(kernels, "_state", {"loaded": False, "module": None, "error": None})


def _run_cli(*args):
    # The package under test, not another installed copy, runs in the subprocess.
    root = str(Path(kernels.__file__).parents[2])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (root, os.environ.get("PYTHONPATH")) if p))
    return subprocess.run([sys.executable, "-m", "larq_bamsprod.kernels", *args],
                          capture_output=True, text=True, env=env, timeout=300)


def test_build_require_exits_non_zero_when_the_compiler_fails(fake_compiler):
    fake_compiler(FAILING)
    done = _run_cli("build", "--require")
    assert done.returncode == 1, done.stderr[-2000:]
    assert "ERROR: larq_bamsprod could not build" in done.stderr
    assert "fake compiler: error" in done.stderr


def test_plain_build_only_warns_when_the_compiler_fails(fake_compiler):
    fake_compiler(FAILING)
    done = _run_cli("build")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "WARNING: larq_bamsprod could not build" in done.stderr


def test_build_require_exits_non_zero_when_the_library_does_not_load(fake_compiler, capsys):
    fake_compiler(GARBAGE)
    assert kernels.main(["build", "--require"]) == 1
    assert "loading" in capsys.readouterr().err
    # The unloadable library is not kept, so the next attempt rebuilds it.
    assert not list(fake_compiler.cache.glob("*.so"))
    assert list(fake_compiler.cache.glob("*.failed"))


def test_build_rejects_unknown_options(capsys):
    assert kernels.main(["build", "--requier"]) == 2
    assert "usage" in capsys.readouterr().err


def test_failed_build_is_retried_once_the_marker_is_older_than_the_delay(
    fake_compiler, monkeypatch
):
    calls = fake_compiler(FAILING)
    _fresh_process_state(monkeypatch)
    with pytest.warns(RuntimeWarning, match="kernel is unavailable"):
        assert kernels.load() is None
    assert calls() == 1
    (failed,) = fake_compiler.cache.glob("*.failed")

    # Same process: no second attempt.
    assert kernels.load() is None
    assert calls() == 1
    # A new process within the delay: no attempt, and the warning says when it retries.
    _fresh_process_state(monkeypatch)
    with pytest.warns(RuntimeWarning, match="retried after that"):
        assert kernels.load() is None
    assert calls() == 1
    # A new process after the delay: a new attempt, without deleting anything by hand.
    old = time.time() - kernels.RETRY_SECONDS - 60
    os.utime(failed, (old, old))
    _fresh_process_state(monkeypatch)
    with pytest.warns(RuntimeWarning, match="kernel is unavailable"):
        assert kernels.load() is None
    assert calls() == 2


def test_retry_delay_can_be_set_and_an_explicit_build_always_retries(
    fake_compiler, monkeypatch
):
    calls = fake_compiler(FAILING)
    _fresh_process_state(monkeypatch)
    with pytest.warns(RuntimeWarning):
        kernels.load()
    assert calls() == 1
    monkeypatch.setenv(kernels.RETRY_ENV, "0")
    _fresh_process_state(monkeypatch)
    with pytest.warns(RuntimeWarning):
        kernels.load()
    assert calls() == 2
    monkeypatch.delenv(kernels.RETRY_ENV)
    assert kernels.main(["build"]) == 0
    assert calls() == 3
    monkeypatch.setenv(kernels.RETRY_ENV, "soon")
    _fresh_process_state(monkeypatch)
    with pytest.warns(RuntimeWarning, match="RETRY_SECONDS=.*'soon'"):
        kernels.load()


def _packed_square_roots(library: Path) -> int:
    listing = subprocess.run(["objdump", "-d", "--no-show-raw-insn", str(library)],
                             capture_output=True, text=True, timeout=120).stdout
    return len(re.findall(r"\bv?sqrtp[sd]\b", listing))


@pytest.mark.skipif(shutil.which("objdump") is None or platform.machine() != "x86_64",
                    reason="reads x86-64 instructions with binutils' objdump")
def test_per_element_loops_are_vectorised():
    # The update's sqrt is in every mode's last loop; a packed sqrt (SSE/AVX sqrtps or
    # sqrtpd) shows that loop was vectorised. A per-element branch (the old divide_no_nan,
    # decided per element instead of once per call) left only scalar sqrtss (#28 item 19:
    # the update then took 4x fused AMSGrad's time on BinaryResNetE18).
    module = kernels.load()
    if module is None:
        pytest.skip(f"the BAMSProd kernel could not be built here: {kernels._state['error']}")
    assert _packed_square_roots(kernels.library_path()) > 0


# --- the cache: whole libraries only, one entry per TensorFlow, compiler and source -----

# Copies a library built before ("compiles" in no time) to the -o path.
COPYING = """#!/bin/sh
echo "$@" >> "{log}"
[ "$1" = "--version" ] && echo "copying-cxx 1.0" && exit 0
while [ $# -gt 0 ]; do
  if [ "$1" = "-o" ]; then cp "{library}" "$2"; fi
  shift
done
exit 0
"""

TRAIN_ONE_STEP = """
import larq_bamsprod, numpy as np, tensorflow as tf
from larq_bamsprod import kernels, legacy
model = tf.keras.Sequential([tf.keras.layers.Dense(1, input_shape=(3,))])
model.compile(legacy.BAMSProd(), loss="mse")
model.fit(np.ones((8, 3), "float32"), np.ones((8, 1), "float32"), epochs=1, verbose=0)
print("kernel available:", kernels.status()["available"])
"""


@pytest.fixture(scope="session")
def built_library() -> Path:
    """The real kernel library, found before any test points the cache elsewhere."""
    if kernels.load() is None:
        pytest.skip(f"the BAMSProd kernel could not be built here: {kernels._state['error']}")
    return kernels.library_path()


def test_truncated_library_in_the_cache_is_rebuilt_and_the_next_process_trains(
    built_library, fake_compiler, monkeypatch
):
    # #28 item 15: a truncated .so in the cache killed every later run (bus error, exit
    # 135) until the cache was deleted by hand.
    calls = fake_compiler(COPYING.replace("{library}", str(built_library)))
    _fresh_process_state(monkeypatch)
    cached = kernels.build()
    assert calls() == 1
    data = cached.read_bytes()
    cached.write_bytes(data[: len(data) // 2])

    root = str(Path(kernels.__file__).parents[2])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (root, os.environ.get("PYTHONPATH")) if p))
    done = subprocess.run([sys.executable, "-c", TRAIN_ONE_STEP], capture_output=True,
                          text=True, env=env, timeout=600)
    assert done.returncode == 0, (done.returncode, done.stderr[-3000:])
    assert "kernel available: True" in done.stdout
    assert calls() == 2  # rebuilt once
    assert cached.read_bytes() == data


def test_library_whose_checksum_differs_is_rebuilt_not_loaded(built_library, fake_compiler):
    calls = fake_compiler(COPYING.replace("{library}", str(built_library)))
    cached = kernels.build()
    damaged = bytearray(cached.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    cached.write_bytes(bytes(damaged))
    assert not kernels.intact(cached)
    assert kernels.build() == cached
    assert calls() == 2
    assert kernels.intact(cached)


def test_two_install_paths_share_one_cache_key(monkeypatch, tmp_path):
    # "minus paths": another venv or checkout of the same TensorFlow and source must not
    # recompile (23-61 s inside the first training step).
    def key_for(root: Path, source_text: bytes) -> str:
        source = root / "larq_bamsprod" / "kernels" / "bamsprod_op.cc"
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_bytes(source_text)
        site = root / "venv" / "lib" / "site-packages" / "tensorflow"
        monkeypatch.setattr(kernels, "SOURCE", source)
        monkeypatch.setattr(tf.sysconfig, "get_compile_flags",
                            lambda: [f"-I{site}/include", "--std=c++17"])
        monkeypatch.setattr(tf.sysconfig, "get_link_flags",
                            lambda: [f"-L{site}", "-l:libtensorflow_framework.so.2"])
        return kernels.tag()

    text = kernels.SOURCE.read_bytes()
    assert key_for(tmp_path / "a", text) == key_for(tmp_path / "b", text)
    assert key_for(tmp_path / "c", text + b"\n// changed\n") != key_for(tmp_path / "a", text)
