"""minicnn.datasets.idx: IDX files read, malformed ones refused naming them, sizes capped."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from minicnn import datasets
from minicnn.datasets import DatasetError, read_idx

from .fakes import BOMB_ZEROS, GOOD, expect_error, idx_bytes, peak_memory


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, ">i2", ">i4", ">f4", ">f8"])
def test_read_idx_round_trips(tmp_path, dtype, gz):
    expected = (np.arange(24).reshape(2, 3, 4) * 37 - 300).astype(dtype)
    content = idx_bytes(expected)
    path = tmp_path / "a.idx"
    path.write_bytes(gzip.compress(content) if gz else content)
    got = read_idx(path)
    assert got.shape == (2, 3, 4)
    assert got.dtype.isnative and got.dtype == np.dtype(dtype).newbyteorder("=")
    np.testing.assert_array_equal(got, expected)


def test_read_idx_decodes_big_endian_values(tmp_path):
    """A reader that forgot the byte order would read 1 as 16777216."""
    path = tmp_path / "a.idx"
    path.write_bytes(struct.pack(">2xBBI3i", 0x0C, 1, 3, 1, -2, 70000))
    np.testing.assert_array_equal(read_idx(path), [1, -2, 70000])


MALFORMED = {
    "truncated": (GOOD[:-1], "truncated"),
    "trailing": (GOOD + b"\0", "trailing"),
    "magic": (b"\x01" + GOOD[1:], "not an IDX file"),
    "dtype": (GOOD[:2] + b"\x0a" + GOOD[3:], "0x0a"),
    "header": (GOOD[:6], "header"),
    "gzip-truncated": (gzip.compress(GOOD * 50)[:30], "gzip"),
    "gzip-corrupt": (gzip.compress(GOOD)[:12] + b"\xff" * 20, "gzip"),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_read_idx_rejects_malformed_file_naming_it(tmp_path, case):
    content, problem = MALFORMED[case]
    path = tmp_path / f"bad-{case}.idx"
    path.write_bytes(content)
    with pytest.raises(DatasetError, match=problem) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_idx_header_declaring_too_much_is_refused_before_decompressing(tmp_path, gzipped_zeros):
    """Two gzip members: an IDX header declaring 513 MiB, then 513 MiB of zeros."""
    path = tmp_path / "bomb-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(struct.pack(">2xBBI", 0x08, 1, BOMB_ZEROS)) + gzipped_zeros)
    assert path.stat().st_size < 2**20
    check = expect_error(lambda: read_idx(path))
    assert peak_memory(check) < 32 * 2**20
    for part in (str(path), f"{BOMB_ZEROS:,} bytes", f"{datasets.MAX_BYTES:,} bytes", "max_bytes="):
        assert part in check.message


def test_gzip_stream_is_not_read_past_the_declared_size(tmp_path, gzipped_zeros):
    """A well-formed small IDX file followed by a 513 MiB tail of zeros: the tail is not inflated."""
    path = tmp_path / "tail-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.arange(12, dtype=np.uint8))) + gzipped_zeros)
    check = expect_error(lambda: read_idx(path))
    assert peak_memory(check) < 32 * 2**20
    assert "trailing bytes" in check.message and str(path) in check.message


def test_max_bytes_is_the_declared_data_size_limit(tmp_path):
    path = tmp_path / "a.idx.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.arange(12, dtype=">i4").reshape(3, 4))))
    np.testing.assert_array_equal(read_idx(path, max_bytes=48), np.arange(12).reshape(3, 4))
    with pytest.raises(DatasetError, match=r"\(3, 4\) of int32, 48 bytes.* 47 bytes") as info:
        read_idx(path, max_bytes=47)
    assert str(path) in str(info.value)
