"""The compiled BAMSProd CPU kernel: build it against the installed TensorFlow, load it.

The kernel (``bamsprod_op.cc``) is one TensorFlow custom op, ``LarqBamsprodResourceApply``,
that updates a variable and its three slots in one pass over memory (two for
``bound_target="mean"``), on the op's intra-op thread pool. It is compiled with the C++
compiler and the flags that ``tf.sysconfig`` reports, once per TensorFlow version, compiler
and source, into a cache directory:

* ``$LARQ_BAMSPROD_KERNEL_DIR`` if set, else ``$XDG_CACHE_HOME/larq_bamsprod/kernels`` (or
  ``~/.cache/larq_bamsprod/kernels``).
* ``make install`` builds it (``python -m larq_bamsprod.kernels build --require``);
  otherwise the first optimizer step that wants it builds it (a few tens of seconds,
  once).
* A build or load that fails never raises: :func:`load` warns once, writes the compiler's
  output next to the cache entry (``<tag>.failed``) and returns ``None``, and the
  optimizers use the pure-TensorFlow update (the reference).
* Retrying is automatic. A process tries at most once. A later process skips the build
  while ``<tag>.failed`` is younger than ``$LARQ_BAMSPROD_KERNEL_RETRY_SECONDS`` (default
  3600, one hour), so that a machine without a compiler does not pay for a failing build
  at every start, and retries once it is older. A different compiler, compiler version,
  TensorFlow or kernel source is a different ``<tag>``, retried at once; so is every
  explicit ``python -m larq_bamsprod.kernels build``.
* The build writes the library and its SHA-256 (``<tag>.sha256``) by atomic renames; a
  library whose checksum is missing or differs (truncated, damaged) is never loaded but
  rebuilt. The cache key holds no path, so every venv or checkout with the same
  TensorFlow, compiler and source shares one build.
* ``LARQ_BAMSPROD_DISABLE_FAST=1`` skips building and loading altogether.

Command line: ``python -m larq_bamsprod.kernels [build [--force] [--require]|status]``.
``build --require`` exits with status 1 when the kernel does not build or load (for CI and
``make install``); plain ``build`` only warns (the optimizers work without the kernel).
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
import time
import warnings
from pathlib import Path
from typing import Any

import tensorflow as tf

SOURCE = Path(__file__).with_name("bamsprod_op.cc")
DISABLE_ENV = "LARQ_BAMSPROD_DISABLE_FAST"
DIR_ENV = "LARQ_BAMSPROD_KERNEL_DIR"
CXX_ENV = "CXX"
RETRY_ENV = "LARQ_BAMSPROD_KERNEL_RETRY_SECONDS"
RETRY_SECONDS = 3600.0

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


def _without_paths(command: list[str]) -> list[str]:
    """``command`` minus what names a place on disk: the source and output files, include
    and library directories (``-I``/``-L``), and the compiler's directory. Two installs of
    the same TensorFlow in different venvs or checkouts then share one cache entry."""
    kept = []
    for arg in command:
        if arg in (str(SOURCE), "OUT"):
            continue
        if arg.startswith(("-I", "-L")):
            arg = arg[:2]
        kept.append(os.path.basename(arg) if os.sep in arg and not arg.startswith("-")
                    else arg)
    return kept


def tag() -> str:
    """Cache key: TensorFlow version, compiler command (minus paths) and version, source
    text."""
    digest = hashlib.sha256()
    digest.update(tf.__version__.encode())
    digest.update(" ".join(_without_paths(compile_command(Path("OUT")))).encode())
    digest.update(SOURCE.read_bytes())
    cxx = shlex.split(os.environ.get(CXX_ENV) or "g++")[0]
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        digest.update(subprocess.run([cxx, "--version"], capture_output=True, timeout=30).stdout)
    return f"bamsprod_op-tf{tf.__version__}-{digest.hexdigest()[:16]}"


def library_path() -> Path:
    return cache_dir() / f"{tag()}.so"


def _checksum_path(library: Path) -> Path:
    return library.with_suffix(".sha256")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_atomically(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


def intact(library: Path) -> bool:
    """True if ``library`` is the file the build wrote: its SHA-256 is the one recorded
    next to it. A truncated or otherwise damaged library (a full disk, a copied cache) is
    not loaded: loading it can kill the process with a bus error, past any ``except``."""
    try:
        return _checksum_path(library).read_text().strip() == _sha256(library)
    except OSError:
        return False


def _discard(library: Path) -> None:
    for path in (library, _checksum_path(library)):
        with contextlib.suppress(OSError):
            path.unlink()


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
    if intact(target) and not force:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(target.with_suffix(".lock")):
        if intact(target) and not force:
            return target  # another process built it while we waited
        if target.exists():
            _log.warning("larq_bamsprod: %s is damaged or unchecked; rebuilding it.", target)
            _discard(target)
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
            # The checksum first, then the library, each by an atomic rename: a library
            # in the cache is whole, and one without its checksum is rebuilt.
            _write_atomically(_checksum_path(target), _sha256(tmp))
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


def _load_library(path: Path):
    """``tf.load_op_library(path)``; a library that does not load is discarded and recorded
    as a failed build, so that it is rebuilt (after the retry delay), not reloaded."""
    try:
        return tf.load_op_library(str(path))
    except Exception as error:  # noqa: BLE001
        message = f"loading {path.name} failed: {error}"
        with contextlib.suppress(OSError):
            path.with_suffix(".failed").write_text(message)
        _discard(path)
        raise RuntimeError(message) from error


def _retry_seconds() -> float:
    text = os.environ.get(RETRY_ENV, "").strip()
    try:
        return float(text) if text else RETRY_SECONDS
    except ValueError:
        raise ValueError(
            f"{RETRY_ENV} must be a number of seconds, received {RETRY_ENV}={text!r}; "
            f"unset it for the default {RETRY_SECONDS:.0f}."
        ) from None


def _recent_failure(failed: Path) -> bool:
    """True if ``failed`` exists and is younger than the retry delay."""
    try:
        age = time.time() - failed.stat().st_mtime
    except OSError:
        return False
    return age < _retry_seconds()


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
            if not intact(path) and _recent_failure(failed):
                raise RuntimeError(
                    f"an earlier build failed less than {_retry_seconds():.0f} s ago, "
                    f"retried after that ({RETRY_ENV}) or by `python -m "
                    f"larq_bamsprod.kernels build` (log: {failed}):\n"
                    + failed.read_text()[-2000:]
                )
            _state["module"] = _load_library(build())
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
    """``build``: compile now (``--force``: even if cached). A failure only warns (exit 0:
    the optimizers still work) unless ``--require`` is given, then it exits 1.
    ``status``: print what the optimizers will use."""
    args = sys.argv[1:] if argv is None else argv
    command = args[0] if args else "build"
    options = set(args[1:])
    unknown = options - {"--force", "--require"}
    if command not in ("build", "status") or unknown or (command == "status" and options):
        print(
            "usage: python -m larq_bamsprod.kernels [build [--force] [--require]|status], "
            f"got {' '.join(args)!r}",
            file=sys.stderr,
        )
        return 2
    if command == "build":
        if disabled():
            print(f"larq_bamsprod: {DISABLE_ENV} is set; not building the kernel.")
            return 0
        try:
            path = build(force="--force" in options)
            _load_library(path)
            print(f"larq_bamsprod: BAMSProd kernel ready: {path}")
        except Exception as error:  # noqa: BLE001
            required = "--require" in options
            print(
                f"{'ERROR' if required else 'WARNING'}: larq_bamsprod could not build or "
                "load its BAMSProd CPU kernel; the optimizers will use the pure-TensorFlow "
                f"update instead.\n{error}",
                file=sys.stderr,
            )
            return 1 if required else 0
        return 0
    for key, value in status().items():
        print(f"{key}: {value}")
    return 0
