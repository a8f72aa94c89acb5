"""What every dataset module shares: the error, the size limit, the argument and checksum checks.

No file is decompressed beyond ``max_bytes`` (:data:`MAX_BYTES`, 512 MiB by default, far
above the largest real file); every reader and loader takes ``max_bytes=`` to raise it.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

Split = tuple[np.ndarray, np.ndarray]
"""``(images, labels)`` of one split (train or test)."""


class DatasetError(ValueError):
    """A dataset file is missing, corrupt, too large, or not the data it is named after."""


MAX_BYTES = 512 * 2**20
"""Default limit on the decompressed size of one dataset file (or archive), in bytes."""


def checked_max_bytes(max_bytes: int, caller: str) -> int:
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, (int, np.integer)) or max_bytes < 1:
        raise ValueError(f"{caller}: max_bytes must be a positive whole number of bytes; "
                         f"got {max_bytes!r}")
    return int(max_bytes)


def checked_dir(data_dir: str | os.PathLike, caller: str, argument: str = "data_dir") -> Path:
    """``data_dir`` as an existing folder, or an error naming the argument."""
    if isinstance(data_dir, bytes) or not isinstance(data_dir, (str, os.PathLike)):
        raise TypeError(f"{caller}: {argument} must be a folder path (str or os.PathLike); "
                        f"got {data_dir!r} ({type(data_dir).__name__})")
    directory = Path(data_dir).expanduser()
    if not directory.is_dir():
        problem = "is not a folder" if directory.exists() else "does not exist"
        raise DatasetError(f"{caller}: {argument} {directory} {problem}")
    return directory


def too_large(path: Path, amount: str, max_bytes: int) -> str:
    """The error message for data beyond the size limit."""
    return (f"{path}: {amount} bytes of data, more than the limit of {max_bytes:,} bytes "
            f"({max_bytes / 2**20:,.0f} MiB); reading stopped there. If the file is genuine, "
            "pass a larger max_bytes= to raise the limit.")


def file_sha256(path: Path) -> str:
    """SHA-256 of the file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def check_sha256(path: Path, got: str, expected: str, of: str) -> None:
    """Raise DatasetError unless the SHA-256 ``got`` (of the file or its content) is ``expected``."""
    if got != expected:
        raise DatasetError(
            f"{path}: checksum mismatch (SHA-256 of the {of} is {got}, expected {expected}); "
            "the file is corrupt or not the dataset it is named after"
        )
