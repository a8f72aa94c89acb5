"""Atomic file writes: a reader sees the old file or the complete new one, never half of one.

The new content goes to a hidden temporary file beside the target, named
``.<name>.<host>-<pid>-<random>.part``, which is flushed to the disk (``fsync``), then
renamed over the target, and then the folder is flushed too, so that the rename itself
survives a power loss. Without the first ``fsync`` a file system may commit the rename
before the data, and a power loss leaves an empty or partial "atomic" file; without the
second, the old file may come back.
A process killed mid-write leaves its ``.part`` file behind; the next write of
the same path from the same host removes it once its process is gone.
"""

from __future__ import annotations

import json
import math
import os
import re
import socket
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

_FILE_KINDS = {
    stat.S_ISDIR: "a directory",
    stat.S_ISCHR: "a character device",
    stat.S_ISBLK: "a block device",
    stat.S_ISFIFO: "a named pipe (FIFO)",
    stat.S_ISSOCK: "a socket",
}


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None],
                 verify: Callable[[Path], None] | None = None) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it to ``path``.

    ``verify(temporary_path)``, if given, runs on the finished temporary file
    and may raise to reject it. The temporary file sits in the same directory
    (the same file system, so ``os.replace`` is atomic) and is deleted
    whatever goes wrong. The file is ``fsync``-ed before the rename and its folder
    after it, so once this returns the new content survives a power loss.

    Only a regular file is ever replaced: a directory, device, FIFO or socket at
    ``path`` is a FileExistsError naming it. A symlink is written through: its
    target is replaced atomically and the link stays a link. A replaced file
    keeps its permissions; a new one gets those ``open()`` would give it.
    """
    target = Path(os.path.realpath(path))
    if not target.parent.is_dir():
        raise FileNotFoundError(f"{path}: cannot write it, the folder {target.parent} does not exist")
    mode = _replaceable_mode(target, path)
    _remove_stale_parts(target)
    prefix = f".{target.name}.{_host()}-{os.getpid()}-"
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=prefix, suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)  # mkstemp's 0600 would make results private by accident
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if verify is not None:
            verify(tmp)
        _replaceable_mode(target, path)  # again: something may have appeared while writing
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_folder(target.parent)


def _fsync_folder(folder: Path) -> None:
    """Flush ``folder``'s entries (a rename into it) to the disk."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _replaceable_mode(target: Path, path: str | os.PathLike) -> int:
    """The permissions for the new ``target``; FileExistsError if it is not a regular file."""
    try:
        info = target.stat()
    except FileNotFoundError:
        return _new_file_mode()
    for is_kind, kind in _FILE_KINDS.items():
        if is_kind(info.st_mode):
            name = f"{path} (a symlink to {target})" if os.path.islink(path) else str(path)
            raise FileExistsError(
                f"{name} is {kind}, not a regular file; refusing to replace it. Choose another path."
            )
    return stat.S_IMODE(info.st_mode)


def _new_file_mode() -> int:
    """The permissions ``open()`` would give a new file: 0o666 less the process umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _host() -> str:
    """This machine's name, as safe to put in a file name."""
    return re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname()) or "host"


def _remove_stale_parts(target: Path) -> None:
    """Delete ``target``'s temporary files left by dead processes of this host.

    A ``.part`` file of a process still running (a concurrent write) is kept, and so
    are those of other hosts, whose processes cannot be checked from here.
    """
    prefix = f".{target.name}.{_host()}-"
    pattern = re.compile(r"(\d+)-[a-z0-9_]+\.part")
    try:
        names = [p.name for p in target.parent.iterdir()]
    except OSError:
        return  # the write itself will report an unusable directory
    for name in names:
        match = name.startswith(prefix) and pattern.fullmatch(name[len(prefix):])
        if match and not _process_alive(int(match.group(1))):
            (target.parent / name).unlink(missing_ok=True)


def _process_alive(pid: int) -> bool:
    """Whether a process with this id runs on this host (possibly another user's)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, but belongs to another user
    return True


def atomic_write_json(path: str | os.PathLike, data: Any) -> None:
    """Write ``data`` (plain dicts, lists, numbers, strings) as indented UTF-8 JSON, atomically.

    Strict JSON only: a NaN or infinity anywhere is a ValueError naming the file and the
    key path of the value (``["folds"][2]["loss"]``), since other tools reject such files.
    """
    where = _non_finite_key_path(data)
    if where is not None:
        raise ValueError(f"{path}: refusing to write the non-finite number at {where} "
                         "(JSON has no NaN or Infinity)")
    try:
        text = json.dumps(data, indent=2, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{path}: cannot write as JSON: {exc}") from exc
    atomic_write(path, lambda f: f.write(text.encode()))


def _non_finite_key_path(data: Any, where: str = "") -> str | None:
    """The key path (``["a"][0]``) of the first NaN or infinity in ``data``, or None."""
    if isinstance(data, float):
        return None if math.isfinite(data) else f"{where or 'the top level'} ({data})"
    items = data.items() if isinstance(data, dict) else (
        enumerate(data) if isinstance(data, (list, tuple)) else ())
    for key, value in items:
        found = _non_finite_key_path(value, f"{where}[{json.dumps(key)}]")
        if found is not None:
            return found
    return None
