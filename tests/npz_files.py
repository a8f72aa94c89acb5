"""Hand-made .npz files that np.savez would never write: zip bombs and lying npy headers.

A zip member is written from a raw deflate stream with the sizes and CRC given, so a test
can declare any size, and a 2 GiB member costs a 2 MB stream made of one repeated block.
"""

import io
import struct
import zipfile
import zlib

import numpy as np


def npy_header(shape: tuple, descr: str = "<f4", fortran_order: bool = False) -> bytes:
    """The npy (version 1.0) header of an array of ``shape`` and ``descr``, without its data."""
    out = io.BytesIO()
    header = {"descr": descr, "fortran_order": fortran_order, "shape": shape}
    np.lib.format.write_array_header_1_0(out, header)
    return out.getvalue()


def deflate(data: bytes) -> bytes:
    """``data`` as a raw deflate stream (as zip members hold it)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush()


def deflated_zeros(head: bytes, zeros: int, block: int = 2**20) -> bytes:
    """A raw deflate stream of ``head`` then ``zeros`` zero bytes, made of one compressed block repeated.

    After a full flush the compressor starts afresh, so every block of zeros compresses to
    the same bytes, and a 2 GiB stream costs one block's work and 2 MB."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    start = compressor.compress(head) + compressor.flush(zlib.Z_FULL_FLUSH)
    zero_block = compressor.compress(bytes(block)) + compressor.flush(zlib.Z_FULL_FLUSH)
    assert compressor.compress(bytes(block)) + compressor.flush(zlib.Z_FULL_FLUSH) == zero_block
    count, rest = divmod(zeros, block)
    return start + zero_block * (count - 1) + compressor.compress(bytes(rest)) + compressor.flush()


def write_zip(path, members: dict[str, tuple[bytes, int, int]]) -> None:
    """A zip of deflated ``members``: name -> (raw deflate stream, declared uncompressed size, CRC-32)."""
    local, central = io.BytesIO(), io.BytesIO()
    for name, (stream, size, crc) in members.items():
        encoded = name.encode()
        offset = local.tell()
        local.write(struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, zipfile.ZIP_DEFLATED, 0, 0x21,
                                crc, len(stream), size, len(encoded), 0) + encoded + stream)
        central.write(struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, zipfile.ZIP_DEFLATED, 0, 0x21,
                                  crc, len(stream), size, len(encoded), 0, 0, 0, 0, 0, offset) + encoded)
    directory = central.getvalue()
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(members), len(members), len(directory),
                      local.tell(), 0)
    with open(path, "wb") as f:
        f.write(local.getvalue() + directory + end)


def member(data: bytes) -> tuple[bytes, int, int]:
    """An honest member holding ``data``, for :func:`write_zip`."""
    return deflate(data), len(data), zlib.crc32(data)


def members_of(path) -> dict[str, tuple[bytes, int, int]]:
    """Every member of the zip at ``path``, honest, for :func:`write_zip`."""
    with zipfile.ZipFile(path) as archive:
        return {name: member(archive.read(name)) for name in archive.namelist()}
