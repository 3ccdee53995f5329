"""Launcher of the ``larq-bamsprod`` command: TensorFlow's start-up log kept off the screen.

Importing anything under ``larq_bamsprod`` imports TensorFlow (the library registers its
optimizers with Keras at import), and TensorFlow's C++ start-up messages (CUDA, oneDNN,
absl) are written to file descriptor 2 before any Python setting can stop them; not even
``TF_CPP_MIN_LOG_LEVEL`` silences all of them. So this module, outside the package, points
descriptor 2 at a temporary file while the harness is imported, then restores it. If the
import fails, what was written is shown. ``--verbose`` anywhere on the command line keeps
everything on screen.
"""

from __future__ import annotations

import os
import sys
import tempfile


def main() -> int:
    if "--verbose" in sys.argv[1:]:
        from larq_bamsprod.harness.cli import main as run
    else:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
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
    return run()


if __name__ == "__main__":
    sys.exit(main())
