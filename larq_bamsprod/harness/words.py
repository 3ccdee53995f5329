"""Words of the harness's messages and reports."""

from __future__ import annotations


def plural(count: int, word: str) -> str:
    """``word`` for one, ``word + "s"`` otherwise: ``f"{n} {plural(n, 'epoch')}"``."""
    return word if count == 1 else f"{word}s"


def error_summary(err: BaseException) -> str:
    """``"ValueError: Negative dimension size ..."``: the error's kind and the first line of
    its message that says something (Keras puts "Exception encountered when calling layer
    ..." first)."""
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    said = [line for line in lines if not line.startswith("Exception encountered")]
    return f"{type(err).__name__}: {(said or lines or [''])[0]}"
