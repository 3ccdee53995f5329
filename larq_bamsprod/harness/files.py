"""Atomic file writes: a result file is either the old one or the new one, never half."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from larq_bamsprod.hyperparameters import plain


def _umask() -> int:
    mask = os.umask(0o022)  # the only way to read it is to set it
    os.umask(mask)
    return mask


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file in the same folder + rename.

    The file gets the mode a plain ``open(path, "w")`` would give it (0666 less the umask),
    not the temporary file's 0600.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True, default=_jsonable) + "\n")


def read_json(path: str | os.PathLike, default: Any = None) -> Any:
    path = Path(path)
    if not path.exists():
        return default
    return json.loads(path.read_text())


def as_json(value: Any) -> Any:
    """``value`` as it reads back from a JSON file: tuples become lists, keys strings, and
    anything JSON cannot hold its ``repr``. Compare recorded settings through it."""
    return json.loads(json.dumps(value, default=repr))


def _jsonable(obj):
    value = plain(obj)  # NumPy scalars and arrays, as the optimizers' get_config cleans them
    if value is obj:
        raise TypeError(f"not JSON-serializable: {obj!r}")
    return value


def check_writable_folder(path: str | os.PathLike, flag: str = "--output") -> None:
    """Raise a ValueError unless ``path`` is a folder that exists or can be made, writable.

    Nothing is left behind: the write test is a temporary file, deleted at once, in
    ``path`` or in its nearest existing parent.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{flag} {str(path)!r} is a file, not a folder; give a new folder or "
                         "the folder of an earlier run")
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"{flag} {str(path)!r} cannot be created: {str(existing)!r} is a "
                         "file; give a folder path")
    try:
        tempfile.TemporaryFile(dir=existing).close()
    except OSError as error:
        raise ValueError(f"{flag} {str(path)!r} is not writable ({error.strerror} in "
                         f"{str(existing)!r}); give a folder you can write to") from None
