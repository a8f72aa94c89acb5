"""NpzReader (minicnn.npz): sizes from the zip directory and the npy headers are checked before any
array is allocated or read; what is read is what np.load would read."""

import struct
import tracemalloc
import zlib

import numpy as np
import pytest
from npz_files import deflated_zeros, member, npy_header, write_zip

from minicnn.npz import NpzError, NpzReader


def peak_bytes(run) -> int:
    """The most memory Python and NumPy held at once while ``run()`` ran (and raised, if it did)."""
    tracemalloc.start()
    try:
        run()
    except NpzError:
        pass
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak


def test_arrays_read_as_np_load_reads_them(tmp_path):
    arrays = {"c": np.arange(12, dtype=np.float32).reshape(3, 4),
              "f": np.asfortranarray(np.arange(6, dtype=np.float64).reshape(2, 3)),
              "big_endian": np.arange(5, dtype=">f4"), "scalar": np.array("text"), "empty": np.zeros((0, 3))}
    np.savez(tmp_path / "a.npz", **arrays)
    with NpzReader(tmp_path / "a.npz", max_bytes=10_000) as data:
        assert data.names == list(arrays)
        for name, value in arrays.items():
            read = data.read(name, "fU", shape=value.shape)
            assert read.dtype == value.dtype
            np.testing.assert_array_equal(read, value)


def test_the_sum_of_the_declared_sizes_is_checked_on_opening(tmp_path):
    np.savez(tmp_path / "a.npz", a=np.zeros(100, np.float32), b=np.zeros(100, np.float32))
    with NpzReader(tmp_path / "a.npz", max_bytes=2 * (400 + 128)):
        pass
    with pytest.raises(NpzError, match=r"a\.npz declares 1,056 bytes of arrays uncompressed, more than "
                                       r"max_bytes=1,055; nothing was read"):
        NpzReader(tmp_path / "a.npz", max_bytes=1055)


def test_a_zip_bomb_is_refused_from_its_directory_without_inflating(tmp_path):
    head = npy_header((2**27,))  # 512 MiB of zeros in a 0.5 MB member
    write_zip(tmp_path / "bomb.npz", {"w.npy": (deflated_zeros(head, 2**29), len(head) + 2**29, 0)})
    assert (tmp_path / "bomb.npz").stat().st_size < 2**20
    peak = peak_bytes(lambda: NpzReader(tmp_path / "bomb.npz", max_bytes=2**28))
    assert peak < 2**20
    with pytest.raises(NpzError, match=r"bomb\.npz declares 536,871,040 bytes"):
        NpzReader(tmp_path / "bomb.npz", max_bytes=2**28)


def test_a_zip_directory_too_large_to_parse_is_refused_before_parsing(tmp_path):
    end_record = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, 2**23, 0, 0)
    (tmp_path / "d.npz").write_bytes(end_record)  # a directory of 8 MiB, said to start at 0
    with pytest.raises(NpzError, match=r"d\.npz has a zip directory of 8,388,608 bytes, more than 4,194,304"):
        NpzReader(tmp_path / "d.npz", max_bytes=2**30)


def test_a_header_of_another_shape_is_refused_before_the_data_are_read(tmp_path):
    head = npy_header((2**27,))
    write_zip(tmp_path / "bomb.npz", {"w.npy": (deflated_zeros(head, 2**29), len(head) + 2**29, 0)})
    with NpzReader(tmp_path / "bomb.npz", max_bytes=2**30) as data:
        assert peak_bytes(lambda: data.read("w", "f", shape=(3, 4))) < 2**20
        with pytest.raises(NpzError, match=r"w in .*bomb\.npz declares the shape \(134217728,\); "
                                           r"expected \(3, 4\)\. Nothing was read"):
            data.read("w", "f", shape=(3, 4))


def test_a_header_declaring_1e12_floats_is_refused_before_allocating(tmp_path):
    write_zip(tmp_path / "h.npz", {"w.npy": member(npy_header((10**12,)))})
    with NpzReader(tmp_path / "h.npz", max_bytes=2**20) as data:
        assert peak_bytes(lambda: data.read("w", "f")) < 2**20
        with pytest.raises(NpzError, match=r"w in .*h\.npz declares \(1000000000000,\) float32 "
                                           r"\(4,000,000,000,000 bytes\) in its header, but 0 bytes"):
            data.read("w", "f")


def test_a_stream_inflating_past_its_declared_size_is_not_read_past_it(tmp_path):
    data = npy_header((3,)) + np.array([1, 2, 3], np.float32).tobytes()
    stream = deflated_zeros(data, 2**26)  # the data, then 64 MiB of zeros the directory does not declare
    write_zip(tmp_path / "tail.npz", {"w.npy": (stream, len(data), zlib.crc32(data))})
    with NpzReader(tmp_path / "tail.npz", max_bytes=2**20) as archive:
        result = []
        assert peak_bytes(lambda: result.append(archive.read("w", "f", shape=(3,)))) < 2**20
    np.testing.assert_array_equal(result[0], [1, 2, 3])


@pytest.mark.parametrize("header,data,message", [
    (npy_header((2,), "|O"), b"", r"w in .*x\.npz is an array of object; expected one of the kinds 'f'"),
    (npy_header((2,), "<i8"), bytes(16), r"is an array of int64; expected one of the kinds 'f'"),
    (npy_header((2,)), bytes(4), r"declares \(2,\) float32 \(8 bytes\) in its header, but 4 bytes"),
    (b"\x93NUMPY\x03\x00" + bytes(8), b"", r"has no valid npy header: npy format version \(3, 0\)"),
    (b"not an npy file at all", b"", r"w in .*x\.npz has no valid npy header"),
])
def test_bad_members_are_named_with_the_file(tmp_path, header, data, message):
    write_zip(tmp_path / "x.npz", {"w.npy": member(header + data)})
    with NpzReader(tmp_path / "x.npz", max_bytes=2**20) as archive, pytest.raises(NpzError, match=message):
        archive.read("w", "f")


def test_a_member_that_is_not_an_array_is_refused(tmp_path):
    write_zip(tmp_path / "x.npz", {"evil.pkl": member(b"cos\nsystem\n")})
    with pytest.raises(NpzError, match=r"x\.npz holds 'evil\.pkl', which is not an \.npy array"):
        NpzReader(tmp_path / "x.npz", max_bytes=2**20)


def test_read_refuses_a_member_larger_than_its_own_limit(tmp_path):
    np.savez(tmp_path / "a.npz", config=np.array("x" * 100))  # 400 bytes as NumPy stores text
    with NpzReader(tmp_path / "a.npz", max_bytes=2**20) as data:
        assert str(data.read("config", "U", shape=(), max_bytes=400)) == "x" * 100
        with pytest.raises(NpzError, match=r"config in .*a\.npz declares 400 bytes, more than 399"):
            data.read("config", "U", shape=(), max_bytes=399)
