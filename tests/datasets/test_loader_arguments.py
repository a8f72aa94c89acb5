"""Every loader and reader of minicnn.datasets refuses bad arguments, naming itself and the argument."""

from __future__ import annotations

import pytest

from minicnn.datasets import (
    DatasetError,
    load_cifar10,
    load_cifar10_binary,
    load_fashion_mnist,
    load_idx_dataset,
    load_mnist,
    load_mnist_all,
    read_idx,
)

from .fakes import GOOD

# --- argument checks --------------------------------------------------------------------------

LOADERS = {"load_mnist": load_mnist, "load_fashion_mnist": load_fashion_mnist,
           "load_cifar10": load_cifar10, "load_mnist_all": load_mnist_all}


@pytest.mark.parametrize("loader", LOADERS)
@pytest.mark.parametrize(
    ("kwargs", "exception", "problem"),
    [
        ({"data_dir": 5}, TypeError, r"data_dir must be a folder path .* got 5 \(int\)"),
        ({"data_dir": b"/tmp"}, TypeError, "data_dir must be a folder path"),
        ({"data_dir": "MISSING"}, DatasetError, "data_dir .*MISSING does not exist"),
        ({"data_dir": "FILE"}, DatasetError, "data_dir .*FILE is not a folder"),
        ({"download": "no"}, TypeError, "download must be True or False; got 'no'"),
        ({"download": 1}, TypeError, "download must be True or False"),
        ({"max_bytes": 0}, ValueError, "max_bytes must be a positive whole number of bytes; got 0"),
        ({"max_bytes": -5}, ValueError, "max_bytes"),
        ({"max_bytes": 1.5e9}, ValueError, "max_bytes"),
        ({"max_bytes": True}, ValueError, "max_bytes"),
        ({"max_bytes": "1GB"}, ValueError, "max_bytes"),
    ],
)
def test_loaders_reject_bad_arguments_naming_them(tmp_path, loader, kwargs, exception, problem):
    (tmp_path / "FILE").write_bytes(b"")
    if isinstance(kwargs.get("data_dir"), str):
        kwargs = {"data_dir": tmp_path / kwargs["data_dir"]}
    with pytest.raises(exception, match=problem) as info:
        LOADERS[loader](**kwargs)
    if loader != "load_mnist_all":
        assert loader in str(info.value)


@pytest.mark.parametrize(
    ("call", "exception", "problem"),
    [
        (lambda p: read_idx(p / "a.idx", max_bytes=0), ValueError, "read_idx: max_bytes"),
        (lambda p: read_idx(p / "missing.idx"), FileNotFoundError, "missing.idx"),
        (lambda p: load_idx_dataset(p / "missing"), DatasetError, "missing does not exist"),
        (lambda p: load_idx_dataset(7), TypeError, "load_idx_dataset: data_dir must be"),
        (lambda p: load_idx_dataset(p, max_bytes=-1), ValueError, "load_idx_dataset: max_bytes"),
        (lambda p: load_cifar10_binary(None), TypeError, "load_cifar10_binary: path must be"),
        (lambda p: load_cifar10_binary(p / "missing.tar.gz"), DatasetError, "does not exist"),
        (lambda p: load_cifar10_binary(p, max_bytes=0), ValueError, "load_cifar10_binary: max_bytes"),
    ],
)
def test_readers_reject_bad_arguments_naming_them(tmp_path, call, exception, problem):
    (tmp_path / "a.idx").write_bytes(GOOD)
    with pytest.raises(exception, match=problem):
        call(tmp_path)
