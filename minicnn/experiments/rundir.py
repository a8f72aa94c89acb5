"""An experiment's output folder: one run at a time, and parts that say which run they belong to.

- :class:`RunLock` holds the folder for one process. A second run on it fails at once,
  naming the holder's pid, host and start time. The lock is an ``flock`` on
  ``.lock``, which the kernel drops when the holder dies however it dies, so a lock
  left by a dead process is simply taken over. Processes that train for the run
  (parallel workers) hold ``.lock.workers`` shared while they write
  (:func:`worker_hold`): the lock waits for them on release, and is refused while any lives.
- A run folder is marked as one by its manifest, ``.minicnn-run.json`` (:func:`write_manifest`),
  written when the run starts; ``--resume`` and ``--merge`` accept only a folder that
  holds it (:func:`check_manifest`), so they never write into a folder of other files.
- The folder's bookkeeping never follows a symbolic link: the lock and the parts are
  opened with ``O_NOFOLLOW``, a part is checked with ``lstat`` before it is written, and
  :func:`refuse_links` refuses a folder that holds any link (gathered from elsewhere, a
  link could point at any file of the user's).
- Parts (``fold_<k>.json``, ``test.json``, epoch checkpoints) carry a *run record*:
  the configuration and the SHA-256 of the data. :func:`write_part` adds it and
  :func:`read_part` refuses a part whose record differs, so a resumed run or a merge
  never mixes parts of different runs.
"""

from __future__ import annotations

import errno
import fcntl
import json
import math
import os
import re
import socket
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from minicnn.files import atomic_write_json

LOCK_NAME = ".lock"
WORKERS_LOCK_NAME = ".lock.workers"
MANIFEST_NAME = ".minicnn-run.json"
MANIFEST_FORMAT = "minicnn run 1"
WORKERS_GONE_TIMEOUT = 60.0
"""Seconds a released lock waits for the run's workers to end before it lets the folder go."""


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
            fd = open_no_follow(self.path, os.O_RDWR | os.O_CREAT)
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
        if not _take_workers_lock(self.path.parent, wait=0):
            self._release()
            raise RunDirError(f"{self.path.parent} is still written by the workers of an earlier run, "
                              "which have not stopped yet; try again in a minute")
        me = {"pid": os.getpid(), "host": socket.gethostname(),
              "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, json.dumps(me).encode(), 0)
        return self

    def __exit__(self, *exc_info) -> None:
        _take_workers_lock(self.path.parent, wait=WORKERS_GONE_TIMEOUT)
        self._release()

    def _release(self) -> None:
        self.path.unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = None

    def _still_at_path(self, fd: int) -> bool:
        try:
            return os.lstat(self.path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            return False

    def _holder(self) -> str:
        try:
            holder = read_json_no_follow(self.path)
            return f"pid {holder['pid']} on {holder['host']}, started {holder['started']}"
        except (OSError, ValueError, KeyError, TypeError, RunDirError):
            return "a process that has not written its name yet"


def _take_workers_lock(directory: Path, wait: float) -> bool:
    """Whether no worker holds ``directory``, waiting up to ``wait`` s; if so, removes the workers' lock."""
    path = directory / WORKERS_LOCK_NAME
    fd = open_no_follow(path, os.O_RDWR | os.O_CREAT)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                path.unlink(missing_ok=True)
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return False
                time.sleep(0.05)
    finally:
        os.close(fd)


@contextmanager
def worker_hold(directory: str | os.PathLike) -> Iterator[None]:
    """Within the block, this process holds ``directory`` as a worker of the run that locked it.

    A shared ``flock`` on ``.lock.workers``: the run's :class:`RunLock` waits for it to be
    dropped before it releases the folder, and a new run refuses the folder while it is held.
    """
    fd = open_no_follow(Path(directory) / WORKERS_LOCK_NAME, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


def open_no_follow(path: str | os.PathLike, flags: int) -> int:
    """``os.open(path, flags | O_NOFOLLOW)`` (mode 0644 if created); RunDirError if ``path`` is a symlink."""
    try:
        return os.open(path, flags | os.O_NOFOLLOW, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise RunDirError(_link_message(Path(path))) from None
        raise


def read_json_no_follow(path: str | os.PathLike) -> Any:
    """The JSON in the file ``path``, never read through a symlink (RunDirError if it is one)."""
    fd = open_no_follow(path, os.O_RDONLY)
    with os.fdopen(fd, "rb") as f:
        return json.loads(f.read())


def refuse_link(path: str | os.PathLike) -> None:
    """RunDirError if ``path`` is a symbolic link (checked with ``lstat``, before writing it)."""
    if os.path.islink(path):
        raise RunDirError(_link_message(Path(path)))


def refuse_links(directory: str | os.PathLike) -> None:
    """RunDirError naming the first symbolic link in ``directory`` or its subfolders (links not followed)."""
    for root, folders, files in os.walk(directory):
        for name in sorted(folders + files):
            refuse_link(Path(root) / name)


def _link_message(path: Path) -> str:
    return (f"{path} is a symbolic link (to {os.readlink(path) if path.is_symlink() else '?'}); a run "
            "folder's files are never followed through links, which could point at any file: "
            "replace it by the file itself, or remove it")


def write_manifest(directory: str | os.PathLike, record: Mapping[str, Any]) -> None:
    """Mark ``directory`` as the folder of the run ``record``: its manifest, written when the run starts."""
    path = Path(directory) / MANIFEST_NAME
    refuse_link(path)
    atomic_write_json(path, {"format": MANIFEST_FORMAT, "run": dict(record), "sessions": []})


def check_manifest(directory: str | os.PathLike, record: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The run record in ``directory``'s manifest; RunDirError unless the folder is a minicnn run.

    Also refused: any symbolic link in the folder, and (with ``record``) a manifest of
    another run, naming the settings that differ.
    """
    directory = Path(directory)
    path = directory / MANIFEST_NAME
    if not os.path.lexists(path):
        raise RunDirError(f"{directory} is not the folder of a minicnn run: it has no {MANIFEST_NAME}, "
                          "which every run writes when it starts; refusing to write into it")
    try:
        manifest = read_json_no_follow(path)
        if manifest.get("format") != MANIFEST_FORMAT or not isinstance(manifest.get("run"), dict):
            raise ValueError(f"expected format {MANIFEST_FORMAT!r} and a run record")
    except (OSError, ValueError, AttributeError) as exc:
        raise RunDirError(f"{path} is damaged ({type(exc).__name__}: {exc}); refusing to write into "
                          f"{directory}") from None
    refuse_links(directory)
    if record is not None and manifest["run"] != record:
        raise RunDirError(f"{directory} holds another run ({path}): "
                          + "; ".join(record_differences(manifest["run"], record)))
    return manifest["run"]


def begin_session(directory: str | os.PathLike) -> list[dict[str, Any]]:
    """Record in the manifest that a session of the run starts now; returns every session, this one last.

    Each session is ``{"started": ISO time, "seconds": its own wall time}``. A session that
    ended without saying so (killed by SIGKILL, a power loss) gets the time up to the last
    file it wrote in the folder (at least every epoch's checkpoint).
    """
    path = Path(directory) / MANIFEST_NAME
    manifest = read_json_no_follow(path)
    bookkeeping = (MANIFEST_NAME, LOCK_NAME, WORKERS_LOCK_NAME)  # written by this session, not that one
    last_write = max((os.lstat(Path(root) / name).st_mtime for root, _, files in os.walk(directory)
                      for name in files if name not in bookkeeping), default=0.0)
    for session in manifest.setdefault("sessions", []):
        if session["seconds"] is None:
            started = datetime.fromisoformat(session["started"]).timestamp()
            session["seconds"] = max(0.0, last_write - started)
    manifest["sessions"].append({"started": datetime.now(timezone.utc).isoformat(), "seconds": None})
    refuse_link(path)
    atomic_write_json(path, manifest)
    return [dict(session) for session in manifest["sessions"]]


def end_session(directory: str | os.PathLike, seconds: float) -> None:
    """Record in the manifest that this session (the last one begun) took ``seconds``."""
    path = Path(directory) / MANIFEST_NAME
    manifest = read_json_no_follow(path)
    manifest["sessions"][-1]["seconds"] = seconds
    refuse_link(path)
    atomic_write_json(path, manifest)


def check_merge_folder(directory: str | os.PathLike) -> None:
    """RunDirError unless ``directory`` is a run's folder (its manifest) or holds nothing but parts.

    ``--merge`` writes results.json and learning_curves.png there; in any other folder
    they could replace files of the user's.
    """
    directory = Path(directory)
    refuse_links(directory)
    if os.path.lexists(directory / MANIFEST_NAME):
        check_manifest(directory)
        return
    parts = re.compile(r"fold_\d+\.json|test\.json")
    others = sorted(p.name for p in directory.iterdir()
                    if not parts.fullmatch(p.name) and p.name not in (LOCK_NAME, WORKERS_LOCK_NAME))
    if others:
        raise RunDirError(f"{directory} is not the folder of a minicnn run (it has no {MANIFEST_NAME}) and "
                          f"holds other files than parts ({', '.join(others)}); refusing to write "
                          "results.json and learning_curves.png there: gather the parts in a new folder")


def run_record(config: Mapping[str, Any], data_sha256: str) -> dict[str, Any]:
    """What identifies a run: its configuration and its data's fingerprint."""
    return {"config": dict(config), "data_sha256": data_sha256}


def write_part(path: str | os.PathLike, part: Mapping[str, Any], record: Mapping[str, Any]) -> None:
    """Write ``part`` with ``"run": record`` added, atomically; NonFiniteScoreError on NaN or infinity."""
    _check_finite(part, Path(path).name)
    refuse_link(path)
    atomic_write_json(path, {**part, "run": dict(record)})


def read_part(path: str | os.PathLike, record: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A part written by :func:`write_part`, without its ``"run"`` key.

    RunDirError, naming the file and the settings that differ, if ``record`` is
    given and the part's record is another one.
    """
    path = Path(path)
    try:
        part = read_json_no_follow(path)
        stored = part.pop("run")
    except (OSError, ValueError, KeyError, AttributeError, TypeError) as exc:
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
    others = sorted(p.name for p in Path(directory).iterdir() if p.name not in (LOCK_NAME, WORKERS_LOCK_NAME))
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
