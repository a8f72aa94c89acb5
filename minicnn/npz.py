"""Reading the arrays of an ``.npz`` file from elsewhere, each one's size checked before it is read.

``np.load`` trusts the file: a member whose header declares 10^12 floats is allocated
(``MemoryError: Unable to allocate 3.64 TiB``), and a 2 MB member that inflates to 2 GiB
is inflated in full before anyone can look at it. :class:`NpzReader` looks first, in the
spirit of Keras' ``safe_mode`` and ``tarfile``'s extraction filters:

- on opening, the zip's central directory: its own size (from the end-of-directory record,
  before ``zipfile`` parses it), and the sum of the sizes its members declare uncompressed,
  against ``max_bytes``;
- before reading a member, its npy header (``numpy.lib.format``): the dtype (only the
  kinds the caller expects; never objects, so never a pickle), the shape the caller
  expects, and that the size the header declares is the size the directory declares.

Only then are the data read, in chunks into an array of the checked size, and never more
bytes than the directory declares (``zipfile`` stops inflating there and checks the
CRC at the end), so the memory a member can take is the size the caller accepted. The
compression ratio is not limited: ``np.savez_compressed`` shrinks an array of zeros (a
fresh bias, a moving mean) a thousandfold, and what a member inflates to is bounded by
its declared size anyway. Every problem is an :class:`NpzError` naming the file.
"""

from __future__ import annotations

import math
import os
import zipfile
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format

MAX_DIRECTORY_BYTES = 2**22
"""The largest zip directory read (4 MiB, some 40,000 members): ``zipfile`` parses all of it on
opening, into Python objects some ten times its size, so its size is checked before."""

CHUNK_BYTES = 2**20
"""How much of a member is inflated at a time."""


class NpzError(ValueError):
    """An ``.npz`` file that is damaged or declares more than its reader accepts; the message names it."""


class NpzReader:
    """The arrays of the ``.npz`` file ``path``, read one by one after their headers are checked.

    ``max_bytes`` caps the sum of the sizes the members declare uncompressed, checked on
    opening; None leaves it to the caller, who then reads every array at a shape it knows.
    ``names`` are the arrays' names (the members' without ``.npy``). Use it as a context
    manager, which closes the file.
    """

    def __init__(self, path: str | os.PathLike, max_bytes: int | None):
        self.path = Path(path)
        with open(self.path, "rb") as f:  # FileNotFoundError and BadZipFile go to the caller
            end = zipfile._EndRecData(f)  # private, but the one reader of the end record that parses no more
        if end is not None and end[zipfile._ECD_SIZE] > MAX_DIRECTORY_BYTES:
            raise NpzError(f"{self.path} has a zip directory of {end[zipfile._ECD_SIZE]:,} bytes, more than "
                           f"{MAX_DIRECTORY_BYTES:,}")
        self._zip = zipfile.ZipFile(self.path)
        try:
            self._members = self._check_directory(max_bytes)
        except BaseException:
            self._zip.close()
            raise

    def __enter__(self) -> NpzReader:
        return self

    def __exit__(self, *exc) -> None:
        self._zip.close()

    def _check_directory(self, max_bytes: int | None) -> dict[str, zipfile.ZipInfo]:
        infos = self._zip.infolist()
        declared = sum(info.file_size for info in infos)
        if max_bytes is not None and declared > max_bytes:
            raise NpzError(f"{self.path} declares {declared:,} bytes of arrays uncompressed, more than "
                           f"max_bytes={max_bytes:,}; nothing was read. If you trust the file and have the "
                           "memory, pass a larger max_bytes")
        members = {}
        for info in infos:
            if not info.filename.endswith(".npy"):
                raise NpzError(f"{self.path} holds {info.filename!r}, which is not an .npy array")
            members[info.filename[:-len(".npy")]] = info
        return members

    @property
    def names(self) -> list[str]:
        return list(self._members)

    def read(self, name: str, kinds: str, shape: tuple[int, ...] | None = None,
             max_bytes: int | None = None) -> np.ndarray:
        """The array ``name``, read only if its header declares a dtype of one of the ``kinds``
        (``"f"``: floats, ``"U"``: a string), ``shape`` (if given), at most ``max_bytes``, and as
        many bytes of data as the zip directory declares."""
        with self._zip.open(self._members[name]) as member:
            found, fortran_order, dtype = self._read_header(name, member)
            if dtype.kind not in kinds or dtype.hasobject:
                raise NpzError(f"{name} in {self.path} is an array of {dtype}; expected one of the kinds "
                               f"{kinds!r} (f: floats, U: text)")
            if shape is not None and found != tuple(shape):
                raise NpzError(f"{name} in {self.path} declares the shape {found}; expected {tuple(shape)}. "
                               "Nothing was read")
            nbytes = math.prod(found) * dtype.itemsize
            declared = self._members[name].file_size - member.tell()
            if nbytes != declared:
                raise NpzError(f"{name} in {self.path} declares {found} {dtype} ({nbytes:,} bytes) in its "
                               f"header, but {declared:,} bytes of data in the zip directory")
            if max_bytes is not None and nbytes > max_bytes:
                raise NpzError(f"{name} in {self.path} declares {nbytes:,} bytes, more than {max_bytes:,}")
            data = np.empty(math.prod(found), dtype)
            raw = data.view(np.uint8)
            for start in range(0, nbytes, CHUNK_BYTES):
                chunk = member.read(min(CHUNK_BYTES, nbytes - start))  # short only at the end of the data
                raw[start:start + len(chunk)] = np.frombuffer(chunk, np.uint8)
                if len(chunk) < min(CHUNK_BYTES, nbytes - start):
                    raise NpzError(f"{name} in {self.path} ends after {start + len(chunk):,} of its "
                                   f"{nbytes:,} bytes")
        return data.reshape(found[::-1]).T if fortran_order else data.reshape(found)

    def _read_header(self, name: str, member) -> tuple[tuple[int, ...], bool, np.dtype]:
        """Shape, Fortran order and dtype from the npy header at the start of ``member``."""
        try:
            version = npy_format.read_magic(member)
            if version == (1, 0):
                return npy_format.read_array_header_1_0(member)
            if version == (2, 0):
                return npy_format.read_array_header_2_0(member)
            raise ValueError(f"npy format version {version} is not read here (1.0 and 2.0 are)")
        except (ValueError, EOFError) as exc:
            raise NpzError(f"{name} in {self.path} has no valid npy header: {exc}") from exc
