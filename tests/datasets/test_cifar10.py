"""minicnn.datasets.cifar10: CIFAR-10's binary version found, verified, downloaded and decoded;
damaged, pickled or oversized archives refused."""

from __future__ import annotations

import hashlib
import io
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest

from minicnn import datasets
from minicnn.datasets import DatasetError, cifar10, load_cifar10, load_cifar10_binary

from .fakes import expect_error, peak_memory, serve

# --- CIFAR-10 ---------------------------------------------------------------------------------


def cifar_arrays(per_batch=(2, 1, 3, 1, 2), n_test=3) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Random (images NHWC uint8, labels) for each of the six batch files."""
    rng = np.random.default_rng(1)
    names = [*datasets.CIFAR10_TRAIN, datasets.CIFAR10_TEST]
    sizes = [*per_batch, n_test]
    return {name: (rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8),
                   rng.integers(0, 10, n, dtype=np.uint8)) for name, n in zip(names, sizes, strict=True)}


def cifar_bytes(images: np.ndarray, labels: np.ndarray) -> bytes:
    """CIFAR-10 binary records: a label byte, then the red, green and blue 32x32 planes."""
    return b"".join(bytes([label]) + b"".join(image[:, :, c].tobytes() for c in range(3))
                    for image, label in zip(images, labels, strict=True))


def add_member(tar: tarfile.TarFile, name: str, content: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(content)
    tar.addfile(info, io.BytesIO(content))


def cifar_archive(path: Path, batches, extra=()) -> bytes:
    """Write a cifar-10-binary.tar.gz laid out like the real one; return its bytes.

    ``batches`` maps file names to (images, labels) or to the raw content; ``extra`` are
    (name, content) members put first.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, content in extra:
            add_member(tar, name, content)
        add_member(tar, "cifar-10-batches-bin/batches.meta.txt", b"airplane\nautomobile\n")
        for name, batch in batches.items():
            content = batch if isinstance(batch, bytes) else cifar_bytes(*batch)
            add_member(tar, f"cifar-10-batches-bin/{name}", content)
    return path.read_bytes()


def assert_cifar(result, batches) -> None:
    (x_train, y_train), (x_test, y_test) = result
    train = [batches[name] for name in datasets.CIFAR10_TRAIN]
    assert x_train.shape == (9, 32, 32, 3) and y_train.shape == (9,)
    assert x_test.shape == (3, 32, 32, 3) and y_test.shape == (3,)
    assert {a.dtype for a in (x_train, y_train, x_test, y_test)} == {np.dtype(np.uint8)}
    np.testing.assert_array_equal(x_train, np.concatenate([x for x, _ in train]))
    np.testing.assert_array_equal(y_train, np.concatenate([y for _, y in train]))
    np.testing.assert_array_equal(x_test, batches[datasets.CIFAR10_TEST][0])
    np.testing.assert_array_equal(y_test, batches[datasets.CIFAR10_TEST][1])


@pytest.fixture
def cifar(monkeypatch):
    """The batches, and a function writing them as a verified archive at a given folder."""
    batches = cifar_arrays()

    def write(folder: Path, extra=()) -> bytes:
        content = cifar_archive(folder / datasets.CIFAR10_ARCHIVE, batches, extra)
        monkeypatch.setitem(datasets.CIFAR10_SHA256, datasets.CIFAR10_ARCHIVE,
                            hashlib.sha256(content).hexdigest())
        return content

    return batches, write


def test_cifar10_records_are_decoded_channels_last():
    """Byte 1 + c*1024 + h*32 + w of a record is channel c of pixel (h, w)."""
    record = bytearray(3073)
    record[0] = 7
    record[1 + 1 * 1024 + 2 * 32 + 5] = 200  # green of pixel (2, 5)
    x, y = cifar10._records(bytes(record), Path("x"), "test_batch.bin")
    assert x.shape == (1, 32, 32, 3) and y.tolist() == [7]
    assert x[0, 2, 5, 1] == 200 and x.sum() == 200


@pytest.mark.parametrize("where", ["data_dir", "data_dir/cifar10", "MINICNN_DATA", "cache"])
def test_load_cifar10_finds_the_verified_archive(tmp_path, cifar, monkeypatch, where):
    batches, write = cifar
    folder = {"data_dir": tmp_path / "d", "data_dir/cifar10": tmp_path / "d" / "cifar10",
              "MINICNN_DATA": tmp_path / "shared" / "cifar10",
              "cache": tmp_path / "xdg" / "minicnn" / "cifar10"}[where]
    write(folder)
    (tmp_path / "d").mkdir(exist_ok=True)
    if where == "MINICNN_DATA":
        monkeypatch.setenv("MINICNN_DATA", str(tmp_path / "shared"))
    data_dir = tmp_path / "d" if where.startswith("data_dir") else None
    assert_cifar(load_cifar10(data_dir, download=False), batches)


def test_load_cifar10_rejects_checksum_mismatch_naming_file(tmp_path, cifar, monkeypatch):
    _, write = cifar
    good = hashlib.sha256(write(tmp_path)).hexdigest()
    monkeypatch.setitem(datasets.CIFAR10_SHA256, datasets.CIFAR10_ARCHIVE, "0" * 64)
    with pytest.raises(DatasetError, match="checksum mismatch") as info:
        load_cifar10(tmp_path)
    assert str(tmp_path / datasets.CIFAR10_ARCHIVE) in str(info.value) and good in str(info.value)


def test_cifar10_published_checksum():
    assert datasets.CIFAR10_SHA256 == {
        "cifar-10-binary.tar.gz": "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd"}
    assert datasets.CIFAR10_MIRRORS[0] + datasets.CIFAR10_ARCHIVE == (
        "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz")


def test_load_cifar10_downloads_into_the_cache_once(tmp_path, cifar, monkeypatch):
    batches, write = cifar
    content = write(tmp_path / "elsewhere")
    requested = serve(monkeypatch, {datasets.CIFAR10_ARCHIVE: content})
    assert_cifar(load_cifar10(), batches)
    assert requested == [datasets.CIFAR10_MIRRORS[0] + datasets.CIFAR10_ARCHIVE]
    cache = tmp_path / "xdg" / "minicnn" / "cifar10"
    assert [p.name for p in cache.iterdir()] == [datasets.CIFAR10_ARCHIVE]
    requested.clear()
    assert_cifar(load_cifar10(), batches)
    assert requested == []


def test_load_cifar10_offline_names_the_file_and_where_to_put_it(tmp_path, monkeypatch):
    serve(monkeypatch, {}, down=datasets.CIFAR10_MIRRORS)
    with pytest.raises(DatasetError, match="mirror is down") as info:
        load_cifar10()
    message = str(info.value)
    for part in ("cifar-10-binary.tar.gz", str(tmp_path / "xdg" / "minicnn" / "cifar10"),
                 "https://www.cs.toronto.edu/~kriz/", "MINICNN_DATA", "DIR/cifar10/"):
        assert part in message
    assert not (tmp_path / "xdg").exists()


def test_load_cifar10_download_with_wrong_checksum_is_not_kept(tmp_path, cifar, monkeypatch):
    _, write = cifar
    content = write(tmp_path / "elsewhere")
    damaged = content[:100] + bytes([content[100] ^ 1]) + content[101:]
    serve(monkeypatch, {datasets.CIFAR10_ARCHIVE: damaged})
    with pytest.raises(DatasetError, match="checksum mismatch"):
        load_cifar10()
    assert not (tmp_path / "xdg").exists()


def test_load_cifar10_binary_reads_an_extracted_folder(tmp_path, cifar):
    batches, _ = cifar
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    for name, (images, labels) in batches.items():
        (folder / name).write_bytes(cifar_bytes(images, labels))
    assert_cifar(load_cifar10_binary(tmp_path), batches)
    assert_cifar(load_cifar10_binary(folder), batches)
    (folder / "data_batch_3.bin").unlink()
    with pytest.raises(DatasetError, match="data_batch_3.bin"):
        load_cifar10_binary(folder)


def test_cifar10_python_version_is_refused_not_unpickled(tmp_path, monkeypatch):
    def no_pickle(*args, **kwargs):
        raise AssertionError("the loader unpickled something")

    monkeypatch.setattr(pickle, "load", no_pickle)
    monkeypatch.setattr(pickle, "loads", no_pickle)
    path = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name in ("data_batch_1", "test_batch"):
            add_member(tar, f"cifar-10-batches-py/{name}", b"\x80\x04K\x01.")  # pickled 1
    with pytest.raises(DatasetError, match="not CIFAR-10's binary version") as info:
        load_cifar10_binary(path)
    assert "cifar-10-batches-bin/data_batch_1.bin" in str(info.value)


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        ("truncated-record", "not a whole number of 3073-byte records"),
        ("label-10", "label 10"),
        ("not-gzip", "not a readable tar.gz archive"),
        ("truncated-archive", "not a readable tar.gz archive"),
    ],
)
def test_load_cifar10_binary_rejects_damaged_files_naming_them(tmp_path, cifar, damage, problem):
    batches, _ = cifar
    path = tmp_path / datasets.CIFAR10_ARCHIVE
    if damage == "truncated-record":
        images, labels = batches["data_batch_2.bin"]
        cifar_archive(path, {**batches, "data_batch_2.bin": cifar_bytes(images, labels)[:-1]})
    elif damage == "label-10":
        images, labels = batches["test_batch.bin"]
        cifar_archive(path, {**batches, "test_batch.bin": (images, np.array([1, 10, 2], np.uint8))})
    elif damage == "not-gzip":
        path.write_bytes(b"<html>Not found</html>")
    else:
        path.write_bytes(cifar_archive(path, batches)[:500])
    with pytest.raises(DatasetError, match=problem) as info:
        load_cifar10_binary(path)
    assert str(path) in str(info.value)


def test_cifar10_archive_is_not_decompressed_past_the_limit(tmp_path, cifar):
    """A tar bomb: a large junk member before the batches; reading stops at max_bytes."""
    batches, _ = cifar
    path = tmp_path / datasets.CIFAR10_ARCHIVE
    cifar_archive(path, batches, extra=[("junk", bytes(8 * 2**20))])
    assert path.stat().st_size < 2**20
    limit = 2**20
    check = expect_error(lambda: load_cifar10_binary(path, max_bytes=limit))
    assert peak_memory(check) < 4 * limit
    assert str(path) in check.message and f"{limit:,} bytes" in check.message
    assert "max_bytes=" in check.message
    assert_cifar(load_cifar10_binary(path), batches)  # the default limit is far above 9 MiB
