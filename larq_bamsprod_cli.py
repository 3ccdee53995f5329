"""Launcher of the ``larq-bamsprod`` command: TensorFlow's start-up log kept off the screen.

Importing anything under ``larq_bamsprod`` imports TensorFlow (the library registers its
optimizers with Keras at import), and TensorFlow's C++ start-up messages (CUDA, cuDNN and
cuBLAS registration, oneDNN, CPU features, absl) are written to file descriptor 2 before any
Python setting can stop them; not even ``TF_CPP_MIN_LOG_LEVEL`` silences all of them. So
this module, outside the package, points descriptor 2 at a temporary file while the harness
is imported, then restores it. If the import fails, what was written is shown.
``TF_CPP_MIN_LOG_LEVEL=3`` (unless already set) keeps TensorFlow's later C++ messages
(``failed call to cuInit`` at the first operation) off the screen too; the command itself
sets TensorFlow's Python logger to errors only.

``larq-bamsprod --tf-logs COMMAND ...`` (before the command) keeps everything on screen;
``--verbose N`` is a command's progress display, nothing else.
``python -m larq_bamsprod_cli ...`` is the same command.
"""

from __future__ import annotations

import os
import sys
import tempfile


def wants_tf_logs(argv: list[str]) -> bool:
    """Whether ``argv`` has the top-level ``--tf-logs`` (given before the command name)."""
    for arg in argv:
        if arg == "--tf-logs":
            return True
        if not arg.startswith("-"):
            return False  # the command: what follows is the command's
    return False


def wants_help(argv: list[str]) -> bool:
    """Whether ``argv`` asks for help (``-h``/``--help`` before any ``--``), or nothing."""
    options = argv[:argv.index("--")] if "--" in argv else argv
    return not argv or "-h" in options or "--help" in options


def show_help(argv: list[str]) -> None:
    """Parse ``argv`` (it asks for help, or for nothing) without importing the library.

    Importing ``larq_bamsprod`` imports TensorFlow (8-15 s), and the parser needs none of
    it: its packages are entered here without running their ``__init__`` (which import
    the library), so that only the parser's own modules load (``harness.cli``,
    ``catalogue.names``, ``reports.evidence``: the standard library only). argparse prints
    the help (or a usage error) and exits; the process ends there, stubs and all.
    """
    import importlib.util
    import types

    root = importlib.util.find_spec("larq_bamsprod").submodule_search_locations[0]
    for package in ("larq_bamsprod", "larq_bamsprod.harness",
                    "larq_bamsprod.harness.catalogue", "larq_bamsprod.harness.reports"):
        stub = types.ModuleType(package)
        stub.__path__ = [os.path.join(root, *package.split(".")[1:])]
        sys.modules[package] = stub
    from larq_bamsprod.harness.cli import build_parser

    build_parser().parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if wants_help(argv):
        show_help(argv)  # exits, unless -h was a value (compare --output -h): go on
        for package in [m for m in sys.modules if m.startswith("larq_bamsprod.")]:
            del sys.modules[package]
        del sys.modules["larq_bamsprod"]
    if wants_tf_logs(argv):
        from larq_bamsprod.harness.cli import main as run
    else:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        sys.stderr.flush()
        saved = os.dup(2)
        with tempfile.TemporaryFile() as log:
            os.dup2(log.fileno(), 2)
            try:
                from larq_bamsprod.harness.cli import main as run
            except BaseException:
                os.dup2(saved, 2)
                log.seek(0)
                sys.stderr.write(log.read().decode(errors="replace"))
                raise
            finally:
                os.dup2(saved, 2)
                os.close(saved)
    return run(argv)


def run_preset(settings: dict[str, list[str]], description: str,
               argv: list[str] | None = None) -> int:
    """What an ``examples/`` script does: ``--NAME`` picks one of ``settings`` (``cpu`` by
    default), any further flags are appended, ``--print`` shows the ``compare`` command."""
    import argparse
    import shlex

    parser = argparse.ArgumentParser(description=description)
    group = parser.add_mutually_exclusive_group()
    for name in settings:
        if name != "cpu":
            group.add_argument(f"--{name}", dest="setting", action="store_const", const=name)
    parser.add_argument("--print", action="store_true", help="print the command only")
    args, extra = parser.parse_known_args(argv)
    command = ["compare", *settings[args.setting or "cpu"], *extra]
    if args.print:
        print("larq-bamsprod " + shlex.join(command))
        return 0
    return main(command)


if __name__ == "__main__":
    sys.exit(main())
