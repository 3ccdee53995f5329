"""Launcher of the ``larq-bamsprod`` command: TensorFlow's start-up log kept off the screen.

TensorFlow's C++ start-up messages (CUDA, cuDNN and cuBLAS registration, oneDNN, CPU
features, absl) are written to file descriptor 2 before any Python setting can stop them;
not even ``TF_CPP_MIN_LOG_LEVEL`` silences all of them. ``import larq_bamsprod`` no longer
imports TensorFlow, so this module, outside the package, points descriptor 2 at a
temporary file while the harness and TensorFlow are imported, then restores it. If the
import fails, what was written is shown.
``TF_CPP_MIN_LOG_LEVEL=3`` (unless already set) keeps TensorFlow's later C++ messages
(``failed call to cuInit`` at the first operation) off the screen too; the command itself
sets TensorFlow's Python logger to errors only.

``larq-bamsprod --tf-logs COMMAND ...`` (before the command) keeps everything on screen;
``--verbose N`` is a command's progress display, nothing else.
``python -m larq_bamsprod_cli ...`` is the same command.
"""

from __future__ import annotations

import importlib.util
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
    """Parse ``argv`` (it asks for help, or for nothing) before TensorFlow is imported.

    The parser needs none of it (its choices come from ``catalogue.names``, and
    ``import larq_bamsprod`` imports no TensorFlow), so help comes at once: argparse
    prints it (or a usage error) and exits.
    """
    from larq_bamsprod.harness.cli import build_parser

    build_parser().parse_args(argv)


def _import_harness():
    from larq_bamsprod.harness.cli import main as run

    # The commands (and --help's parser) import TensorFlow later; import it now, while
    # descriptor 2 points where its start-up log should go.
    if importlib.util.find_spec("tensorflow") is not None:
        import tensorflow  # noqa: F401
    return run


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if wants_help(argv):
        show_help(argv)  # argparse prints the help and exits
    if wants_tf_logs(argv):
        run = _import_harness()
    else:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        sys.stderr.flush()
        saved = os.dup(2)
        with tempfile.TemporaryFile() as log:
            os.dup2(log.fileno(), 2)
            try:
                run = _import_harness()
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
