"""An experiment's output folder: one run at a time, and parts that say which run they belong to.

- :class:`RunLock` holds the folder for one process. A second run on it fails at once,
  naming the holder's pid, host and start time. The lock is an ``flock`` on
  ``.lock``, which the kernel drops when the holder dies however it dies, so a lock
  left by a dead process is simply taken over.
- Parts (``fold_<k>.json``, ``test.json``, epoch checkpoints) carry a *run record*:
  the configuration and the SHA-256 of the data. :func:`write_part` adds it and
  :func:`read_part` refuses a part whose record differs, so a resumed run or a merge
  never mixes parts of different runs.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import socket
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from minicnn.files import atomic_write_json

LOCK_NAME = ".lock"


class RunDirError(RuntimeError):
    """The output folder is held by another run, or holds parts of a different run."""


class NonFiniteScoreError(ValueError):
    """A score or history value is NaN or infinite: the training diverged."""


class RunLock:
    """Holds ``directory`` (created if missing) for this process: ``with RunLock(out): ...``.

    The lock file ``directory/.lock`` holds ``{"pid", "host", "started"}`` of the
    holder and is removed on release. RunDirError if a live process holds it.
    """

    def __init__(self, directory: str | os.PathLike):
        self.path = Path(directory) / LOCK_NAME
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while self._fd is None:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise RunDirError(f"{self.path.parent} is in use by another run ({self._holder()}); "
                                  "wait for it to end or choose another folder") from None
            if self._still_at_path(fd):  # else a releasing holder unlinked it under us: retry
                self._fd = fd
            else:
                os.close(fd)
        me = {"pid": os.getpid(), "host": socket.gethostname(),
              "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, json.dumps(me).encode(), 0)
        return self

    def __exit__(self, *exc_info) -> None:
        self.path.unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = None

    def _still_at_path(self, fd: int) -> bool:
        try:
            return os.stat(self.path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            return False

    def _holder(self) -> str:
        try:
            holder = json.loads(self.path.read_text())
            return f"pid {holder['pid']} on {holder['host']}, started {holder['started']}"
        except (OSError, ValueError, KeyError, TypeError):
            return "a process that has not written its name yet"


def run_record(config: Mapping[str, Any], data_sha256: str) -> dict[str, Any]:
    """What identifies a run: its configuration and its data's fingerprint."""
    return {"config": dict(config), "data_sha256": data_sha256}


def write_part(path: str | os.PathLike, part: Mapping[str, Any], record: Mapping[str, Any]) -> None:
    """Write ``part`` with ``"run": record`` added, atomically; NonFiniteScoreError on NaN or infinity."""
    _check_finite(part, Path(path).name)
    atomic_write_json(path, {**part, "run": dict(record)})


def read_part(path: str | os.PathLike, record: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A part written by :func:`write_part`, without its ``"run"`` key.

    RunDirError, naming the file and the settings that differ, if ``record`` is
    given and the part's record is another one.
    """
    path = Path(path)
    try:
        part = json.loads(path.read_text())
        stored = part.pop("run")
    except (OSError, ValueError, KeyError, AttributeError) as exc:
        raise RunDirError(f"{path} is not a part of a minicnn run ({type(exc).__name__}: {exc})") from None
    if record is not None and stored != record:
        raise RunDirError(f"{path} belongs to another run: {'; '.join(record_differences(stored, record))}")
    return part


def check_parts(directory: str | os.PathLike, record: Mapping[str, Any]) -> None:
    """RunDirError unless every part in ``directory`` (fold files, test.json, checkpoints) has ``record``."""
    directory = Path(directory)
    parts = [*directory.glob("fold_*.json"), *directory.glob("test.json"),
             *directory.glob("checkpoints/*/epoch_*.json")]
    for path in parts:
        read_part(path, record)


def check_empty(directory: str | os.PathLike) -> None:
    """RunDirError if ``directory`` holds anything besides our lock (another run finished there meanwhile)."""
    others = sorted(p.name for p in Path(directory).iterdir() if p.name != LOCK_NAME)
    if others:
        raise RunDirError(f"{directory} is not empty (it holds {', '.join(others)}): another run wrote "
                          "there meanwhile; choose a new folder, or --resume it")


def record_differences(stored: Mapping[str, Any], wanted: Mapping[str, Any]) -> list[str]:
    """Human-readable differences between two run records, e.g. ``["epochs: 4 there, 10 here"]``."""
    old, new = stored.get("config", {}), wanted.get("config", {})
    differences = [f"{key}: {old.get(key)!r} there, {new.get(key)!r} here"
                   for key in sorted(set(old) | set(new)) if old.get(key) != new.get(key)]
    if stored.get("data_sha256") != wanted.get("data_sha256"):
        differences.append("the data differ (another SHA-256 of the arrays)")
    return differences


def _check_finite(value: Any, where: str) -> None:
    """NonFiniteScoreError naming ``where`` if ``value`` holds a NaN or infinite float anywhere."""
    if isinstance(value, float) and not math.isfinite(value):
        raise NonFiniteScoreError(f"{where}: refusing to write {value} (a non-finite score); "
                                  "the training diverged: try a smaller learning rate")
    if isinstance(value, Mapping):
        for key, item in value.items():
            _check_finite(item, f"{where}: {key}")
    elif isinstance(value, (list, tuple)):
        for item in value:
            _check_finite(item, where)
