"""minicnn.datasets.download: missing files downloaded into the cache, verified, from the next
mirror if one fails, never left half-written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from minicnn.datasets import MNIST_FILES, MNIST_MIRRORS, DatasetError, load_mnist

from .fakes import assert_loaded, gz_files, serve, write_mnist


@pytest.fixture
def cache(tmp_path) -> Path:
    return tmp_path / "xdg" / "minicnn" / "mnist"


def test_download_fills_cache_with_verified_files_once(monkeypatch, arrays, cache):
    requested = serve(monkeypatch, gz_files(arrays))
    assert_loaded(load_mnist(), arrays)
    assert requested == [f"{MNIST_MIRRORS[0]}{name}.gz" for name in MNIST_FILES]
    assert sorted(p.name for p in cache.iterdir()) == sorted(f"{n}.gz" for n in MNIST_FILES)
    requested.clear()
    assert_loaded(load_mnist(), arrays)
    assert requested == []


def test_download_fetches_only_missing_files(monkeypatch, arrays, cache):
    write_mnist(cache, arrays, names=MNIST_FILES[:3])
    requested = serve(monkeypatch, gz_files(arrays))
    assert_loaded(load_mnist(), arrays)
    assert requested == [f"{MNIST_MIRRORS[0]}t10k-labels-idx1-ubyte.gz"]


def test_download_falls_back_to_next_mirror(monkeypatch, arrays, cache):
    requested = serve(monkeypatch, gz_files(arrays), down=[MNIST_MIRRORS[0]])
    assert_loaded(load_mnist(), arrays)
    assert requested[:2] == [f"{m}train-images-idx3-ubyte.gz" for m in MNIST_MIRRORS]


def test_failed_download_leaves_no_partial_file(monkeypatch, arrays, cache, tmp_path):
    serve(monkeypatch, gz_files(arrays), down=[MNIST_MIRRORS[0]], fail_after=20)
    with pytest.raises(DatasetError) as info:
        load_mnist()
    message = str(info.value)
    assert "connection dropped midway" in message and "MINICNN_DATA" in message
    assert all(name in message for name in MNIST_FILES)
    assert not (tmp_path / "xdg").exists()  # no empty cache folders left behind


def test_download_with_wrong_checksum_is_not_kept(monkeypatch, arrays, cache):
    wrong = {**arrays, "train-images-idx3-ubyte": np.zeros((3, 4, 5), dtype=np.uint8)}
    serve(monkeypatch, gz_files(wrong))
    with pytest.raises(DatasetError, match="checksum mismatch"):
        load_mnist()
    assert not cache.exists()


def test_offline_download_says_what_is_missing_and_where_to_put_it(monkeypatch, cache):
    serve(monkeypatch, {}, down=MNIST_MIRRORS)
    with pytest.raises(DatasetError, match="mirror is down") as info:
        load_mnist()
    assert "train-labels-idx1-ubyte" in str(info.value) and str(cache) in str(info.value)
