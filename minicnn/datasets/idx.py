"""The IDX format of MNIST and its drop-ins: two zero bytes, a type code, the number of
dimensions and each dimension (big-endian), then the data.

:func:`read_idx` reads one file, gzipped or raw, into the array it stores, checking the
declared size against ``max_bytes`` before reading the data (so no gzip bomb inflates).
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from minicnn.datasets.base import MAX_BYTES, DatasetError, checked_max_bytes

# IDX type codes -> big-endian dtypes (http://yann.lecun.com/exdb/mnist/, bottom of the page).
IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(path: str | os.PathLike, *, max_bytes: int = MAX_BYTES) -> np.ndarray:
    """The array stored in an IDX file (gzipped or raw), native-endian, shaped by its header.

    Raises DatasetError naming the file if it is not well-formed IDX (a truncated file or
    trailing bytes would otherwise shift or silently drop samples), or if its header
    declares more than ``max_bytes`` of data.
    """
    path = Path(path)
    max_bytes = checked_max_bytes(max_bytes, "read_idx")
    return parse(read_content(path, max_bytes), path)


def read_content(path: Path, max_bytes: int) -> bytes:
    """The file's IDX bytes (gunzipped when they start with the gzip magic, whatever the name).

    Reads the header first and refuses a declared size above ``max_bytes`` before reading
    on; then reads one byte more than declared, enough to detect trailing data, so a gzip
    stream is never decompressed beyond what its header announces.
    """
    with path.open("rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        f = gzip.GzipFile(fileobj=raw) if gzipped else raw
        try:
            head = f.read(4)
            if len(head) < 4 or head[:2] != b"\0\0" or head[2] not in IDX_DTYPES:
                return head  # parse says what is wrong
            dtype, ndim = IDX_DTYPES[head[2]], head[3]
            dims = f.read(4 * ndim)
            if len(dims) < 4 * ndim:
                return head + dims
            shape = struct.unpack(f">{ndim}I", dims)
            _check_size(path, shape, dtype, max_bytes)
            return head + dims + f.read(math.prod(shape) * dtype.itemsize + 1)
        except (EOFError, OSError, zlib.error) as exc:
            raise DatasetError(f"{path}: corrupt or truncated gzip data ({exc})") from exc


def _check_size(path: Path, shape: tuple[int, ...], dtype: np.dtype, max_bytes: int) -> None:
    """Refuse an IDX file whose header declares more than ``max_bytes`` of data."""
    size = math.prod(shape) * dtype.itemsize
    if size > max_bytes:
        raise DatasetError(
            f"{path}: the IDX header declares {shape} of {dtype.name}, {size:,} bytes, more than "
            f"the limit of {max_bytes:,} bytes ({max_bytes / 2**20:,.0f} MiB); reading stopped "
            "after the header. If the file is genuine, pass a larger max_bytes= to raise the limit."
        )


def parse(data: bytes, path: Path) -> np.ndarray:
    """Decode IDX bytes; ``path`` only names the file in errors."""
    if len(data) < 4 or data[:2] != b"\0\0":
        raise DatasetError(f"{path}: not an IDX file (it does not start with two zero bytes)")
    code, ndim = data[2], data[3]
    if code not in IDX_DTYPES:
        raise DatasetError(f"{path}: unknown IDX data type code 0x{code:02x}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetError(f"{path}: truncated IDX header ({ndim} dimensions announced)")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    dtype = IDX_DTYPES[code]
    expected, got = math.prod(shape) * dtype.itemsize, len(data) - header
    if got != expected:
        problem = "truncated" if got < expected else "trailing bytes"
        raise DatasetError(
            f"{path}: {problem}: shape {shape} of {dtype.name} needs {expected} data bytes, "
            f"the file has {'more' if got > expected else got}"
        )
    return np.frombuffer(data, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))
