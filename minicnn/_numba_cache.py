"""A writable folder for Numba's cache of compiled kernels, chosen before any kernel exists.

The kernels are cached Numba functions (``minicnn.kernels.compiled``), and Numba picks
their cache folder when the decorator runs, at import: ``$NUMBA_CACHE_DIR`` if set, else
``__pycache__`` beside the source, else ``~/.cache/numba``. With none writable (a read-only
install and no writable home: a container, a shared cluster install) ``import minicnn``
itself would fail with ``RuntimeError: cannot cache function ...: no locator available``.

So when the user has not set ``NUMBA_CACHE_DIR`` and the package folder is not writable,
this module sets ``NUMBA_CACHE_DIR`` to the first writable of
``$XDG_CACHE_HOME/minicnn/numba``, ``~/.cache/minicnn/numba`` and a private
``<temp dir>/minicnn-numba-<uid>``. With none of them writable, :data:`CACHE` is False:
minicnn's kernels (``minicnn.kernels.compiled``) run without a cache, compiled anew in
each process, and a warning says so once.
"""

from __future__ import annotations

import os
import stat
import sys
import tempfile
import warnings
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def _writable(directory: Path) -> bool:
    """Whether files can be made in ``directory`` (created if missing), tested as Numba does."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=directory).close()
    except OSError:
        return False
    return True


def _private_temp_dir() -> Path | None:
    """``<temp dir>/minicnn-numba-<uid>``, only if it is ours alone.

    Numba loads pickled code from its cache, so a folder another user could have made
    or could write to must not be used.
    """
    if not hasattr(os, "getuid"):
        return None
    directory = Path(tempfile.gettempdir()) / f"minicnn-numba-{os.getuid()}"
    try:
        directory.mkdir(mode=0o700, exist_ok=True)
        info = directory.lstat()
    except OSError:
        return None
    ours = info.st_uid == os.getuid() and stat.S_ISDIR(info.st_mode) and not info.st_mode & 0o022
    return directory if ours else None


def _candidates() -> list[Path]:
    """The fallback folders, in order of preference."""
    folders = []
    if os.environ.get("XDG_CACHE_HOME"):
        folders.append(Path(os.environ["XDG_CACHE_HOME"]) / "minicnn" / "numba")
    try:
        folders.append(Path.home() / ".cache" / "minicnn" / "numba")
    except (RuntimeError, KeyError):  # no HOME and no password entry to find it in
        pass
    return folders


def _fallback_dir() -> Path | None:
    """The first usable fallback folder, or None."""
    for folder in _candidates():
        if _writable(folder):
            return folder
    temp = _private_temp_dir()
    return temp if temp is not None and _writable(temp) else None


def configure() -> bool:
    """Choose the cache folder as the module docstring says; run before any kernel is defined.

    Returns whether the kernels can be cached.
    """
    if os.environ.get("NUMBA_CACHE_DIR") or _writable(PACKAGE_DIR / "__pycache__"):
        return True
    folder = _fallback_dir()
    if folder is None:
        warnings.warn(
            f"minicnn: no writable folder for Numba's cache (the package folder {PACKAGE_DIR}, "
            "$XDG_CACHE_HOME, ~/.cache and the temp folder are not), so kernels are compiled "
            "anew in every process. Set NUMBA_CACHE_DIR to a writable folder to keep them.",
            RuntimeWarning, stacklevel=2,
        )
        return False
    os.environ["NUMBA_CACHE_DIR"] = str(folder)
    if "numba.core.config" in sys.modules:  # Numba read its settings before minicnn came
        sys.modules["numba.core.config"].reload_config()
    return True


CACHE = configure()
"""Whether minicnn's kernels are cached on disk (``cache=`` of every ``njit``)."""
