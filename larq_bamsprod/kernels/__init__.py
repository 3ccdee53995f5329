"""The compiled BAMSProd CPU kernel: build it against the installed TensorFlow, load it.

The kernel (``bamsprod_op.cc``) is one TensorFlow custom op, ``LarqBamsprodResourceApply``,
that updates a variable and its three slots in one pass over memory (two for
``bound_target="mean"``), on the op's intra-op thread pool. It is compiled with the C++
compiler and the flags that ``tf.sysconfig`` reports, once per TensorFlow version, compiler
and source, into a cache directory:

* ``$LARQ_BAMSPROD_KERNEL_DIR`` if set, else ``$XDG_CACHE_HOME/larq_bamsprod/kernels`` (or
  ``~/.cache/larq_bamsprod/kernels``).
* ``make install`` builds it (``python -m larq_bamsprod.kernels build``); otherwise the
  first optimizer step that wants it builds it (a few tens of seconds, once).
* A build or load that fails never raises: :func:`load` warns once, writes the compiler's
  output next to the cache entry (``<tag>.failed``; delete it to retry) and returns
  ``None``, and the optimizers use the pure-TensorFlow update (the reference).
* ``LARQ_BAMSPROD_DISABLE_FAST=1`` skips building and loading altogether.

Command line: ``python -m larq_bamsprod.kernels [build|status]``.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Any

import tensorflow as tf

SOURCE = Path(__file__).with_name("bamsprod_op.cc")
DISABLE_ENV = "LARQ_BAMSPROD_DISABLE_FAST"
DIR_ENV = "LARQ_BAMSPROD_KERNEL_DIR"
CXX_ENV = "CXX"

_log = logging.getLogger("larq_bamsprod")
_lock = threading.Lock()
_state: dict[str, Any] = {"loaded": False, "module": None, "error": None}


def disabled() -> bool:
    """True when ``LARQ_BAMSPROD_DISABLE_FAST`` is set to anything but ``""``/``0``."""
    return os.environ.get(DISABLE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def cache_dir() -> Path:
    if os.environ.get(DIR_ENV):
        return Path(os.environ[DIR_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "larq_bamsprod" / "kernels"


def _cpu_has_avx2() -> bool:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(
        line.startswith("flags") and " avx2" in line for line in text.splitlines()
    )


def compile_command(output: Path) -> list[str]:
    """The compiler command line for ``output`` (flags from ``tf.sysconfig``)."""
    cxx = shlex.split(os.environ.get(CXX_ENV) or "g++")
    # -ffp-contract=off: no fused multiply-add, so each element is rounded as TensorFlow's
    # separate ops round it and the kernel matches the reference path.
    flags = ["-shared", "-fPIC", "-O3", "-ffp-contract=off", "-fno-math-errno"]
    if _cpu_has_avx2():
        flags.append("-mavx2")
    return [
        *cxx,
        *flags,
        *tf.sysconfig.get_compile_flags(),
        str(SOURCE),
        "-o",
        str(output),
        *tf.sysconfig.get_link_flags(),
    ]


def tag() -> str:
    """Cache key: TensorFlow version, compiler command (minus paths) and source text."""
    digest = hashlib.sha256()
    digest.update(tf.__version__.encode())
    digest.update(" ".join(compile_command(Path("OUT"))).encode())
    digest.update(SOURCE.read_bytes())
    cxx = shlex.split(os.environ.get(CXX_ENV) or "g++")[0]
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        digest.update(subprocess.run([cxx, "--version"], capture_output=True, timeout=30).stdout)
    return f"bamsprod_op-tf{tf.__version__}-{digest.hexdigest()[:16]}"


def library_path() -> Path:
    return cache_dir() / f"{tag()}.so"


@contextlib.contextmanager
def _file_lock(path: Path):
    """Serialise builds between processes (pytest workers, two trainings at once)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock, the atomic rename still keeps files whole
        yield
        return
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build(force: bool = False) -> Path:
    """Compile the kernel into the cache (if not there yet) and return the library's path.

    Raises ``RuntimeError`` with the compiler's output if the build fails.
    """
    target = library_path()
    failed = target.with_suffix(".failed")
    if target.exists() and not force:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(target.with_suffix(".lock")):
        if target.exists() and not force:
            return target  # another process built it while we waited
        _log.warning(
            "larq_bamsprod: compiling the BAMSProd CPU kernel for TensorFlow %s into %s "
            "(once; about a minute). %s=1 skips it.", tf.__version__, target.parent,
            DISABLE_ENV,
        )
        fd, tmp_name = tempfile.mkstemp(suffix=".so", dir=target.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        command = compile_command(tmp)
        try:
            if shutil.which(command[0]) is None:
                raise RuntimeError(f"C++ compiler {command[0]!r} not found (set $CXX)")
            result = subprocess.run(command, capture_output=True, text=True, timeout=1800)
            if result.returncode != 0:
                raise RuntimeError(
                    f"compiling {SOURCE.name} failed (exit {result.returncode}):\n"
                    f"$ {shlex.join(command)}\n{result.stderr[-4000:]}"
                )
            os.replace(tmp, target)
        except (OSError, subprocess.SubprocessError, RuntimeError) as error:
            with contextlib.suppress(OSError):
                failed.write_text(str(error))
            raise RuntimeError(str(error)) from error
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()
        with contextlib.suppress(OSError):
            failed.unlink()
    return target


def load():
    """Return the loaded op module, building it first if needed, or ``None`` (with one
    warning per process) if it is disabled or cannot be built or loaded."""
    if disabled():
        return None
    with _lock:
        if _state["loaded"]:
            return _state["module"]
        _state["loaded"] = True
        try:
            path = library_path()
            failed = path.with_suffix(".failed")
            if not path.exists() and failed.exists():
                raise RuntimeError(
                    f"an earlier build failed (log: {failed}; delete it to retry):\n"
                    + failed.read_text()[-2000:]
                )
            _state["module"] = tf.load_op_library(str(build()))
        except Exception as error:  # noqa: BLE001  (any failure means: use the fallback)
            _state["error"] = str(error)
            warnings.warn(
                "larq_bamsprod: the compiled BAMSProd kernel is unavailable, using the "
                f"pure-TensorFlow update (same results, slower). Reason: {error}",
                RuntimeWarning,
                stacklevel=2,
            )
        return _state["module"]


def status() -> dict[str, Any]:
    """What :func:`load` found: for reports and the benchmark."""
    module = load()
    return {
        "available": module is not None,
        "disabled": disabled(),
        "library": str(library_path()),
        "error": _state["error"],
    }


def main(argv: list[str] | None = None) -> int:
    """``build``: compile now (exit 0 with a warning if it fails: the fallback still works).
    ``status``: print what the optimizers will use."""
    args = sys.argv[1:] if argv is None else argv
    command = args[0] if args else "build"
    if command not in ("build", "status"):
        print(f"usage: python -m larq_bamsprod.kernels [build|status], got {command!r}")
        return 2
    if command == "build":
        if disabled():
            print(f"larq_bamsprod: {DISABLE_ENV} is set; not building the kernel.")
            return 0
        try:
            path = build(force="--force" in args)
            tf.load_op_library(str(path))
            print(f"larq_bamsprod: BAMSProd kernel ready: {path}")
        except Exception as error:  # noqa: BLE001
            print(
                "WARNING: larq_bamsprod could not build its BAMSProd CPU kernel; the "
                f"optimizers will use the pure-TensorFlow update instead.\n{error}",
                file=sys.stderr,
            )
        return 0
    for key, value in status().items():
        print(f"{key}: {value}")
    return 0
