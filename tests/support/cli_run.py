"""The ``larq-bamsprod`` command run as a user runs it: a subprocess of the launcher."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_cli(*argv, env_extra: dict | None = None, drop_env: tuple[str, ...] = (),
            timeout: float = 600, **popen) -> subprocess.CompletedProcess:
    """``python -m larq_bamsprod_cli ARGV`` with this checkout first on ``PYTHONPATH``."""
    env = {k: v for k, v in os.environ.items() if k not in drop_env}
    env.update(PYTHONPATH=str(REPO), **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "larq_bamsprod_cli", *map(str, argv)],
                          env=env, capture_output=True, text=True, timeout=timeout, **popen)


def refusal_line(result: subprocess.CompletedProcess, prog: str) -> str:
    """The one line a refused command wrote to stderr (exit status 2, no traceback)."""
    assert result.returncode == 2, (result.returncode, result.stderr[-3000:])
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr[-3000:]
    assert lines[0].startswith(f"{prog}: error: "), lines[0]
    return lines[0]
