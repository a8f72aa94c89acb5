"""Atomic file writes: a reader sees the old file or the complete new one, never half of one."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None],
                 verify: Callable[[Path], None] | None = None) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it to ``path``.

    ``verify(temporary_path)``, if given, runs on the finished temporary file
    and may raise to reject it. The temporary file sits in the same directory
    (the same file system, so ``os.replace`` is atomic) and is deleted
    whatever goes wrong.
    """
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        os.fchmod(fd, _new_file_mode())  # mkstemp's 0600 would make results private by accident
        with os.fdopen(fd, "wb") as f:
            write(f)
        if verify is not None:
            verify(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _new_file_mode() -> int:
    """The permissions ``open()`` would give a new file: 0o666 less the process umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write_json(path: str | os.PathLike, data: Any) -> None:
    """Write ``data`` (plain dicts, lists, numbers, strings) as indented UTF-8 JSON, atomically."""
    atomic_write(path, lambda f: f.write(json.dumps(data, indent=2).encode()))
