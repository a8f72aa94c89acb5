"""minicnn.experiments.data: dataset names, splits, limits, a guard for missing loaders, the fingerprint."""

import numpy as np
import pytest

from minicnn import datasets
from minicnn.experiments.data import load_data


def test_digits_split_and_scale():
    data = load_data("digits")
    assert (data.name, data.num_classes) == ("digits", 10)
    assert (len(data.x_train), len(data.x_test), len(data.x_cv)) == (1438, 359, 1797)
    assert data.x_cv.dtype == np.float32 and data.x_cv.shape[1:] == (8, 8, 1)
    np.testing.assert_array_equal(data.x_cv[1438:], data.x_test)
    assert 0 <= data.x_cv.min() and data.x_cv.max() == 1


def test_keras_style_uint8_arrays_become_nhwc_floats_and_flat_labels(monkeypatch):
    rng = np.random.default_rng(0)
    train = (rng.integers(0, 256, (6, 4, 4, 3), dtype=np.uint8), np.array([[0], [1], [2], [0], [1], [2]]))
    test = (np.full((2, 4, 4, 3), 255, np.uint8), np.array([[2], [1]]))
    monkeypatch.setattr(datasets, "load_cifar10", lambda data_dir=None, download=True: (train, test),
                        raising=False)
    data = load_data("cifar10")
    assert data.x_cv.shape == (8, 4, 4, 3) and data.x_cv.dtype == np.float32
    np.testing.assert_array_equal(data.x_cv[:6], train[0] / np.float32(255))
    assert data.x_test.max() == 1 and data.y_cv.tolist() == [0, 1, 2, 0, 1, 2, 2, 1]
    assert data.num_classes == 3 and data.title == "CIFAR-10"


def test_a_loader_this_version_lacks_is_a_dataset_error(monkeypatch):
    monkeypatch.delattr(datasets, "load_fashion_mnist", raising=False)
    with pytest.raises(datasets.DatasetError, match="minicnn.datasets has no load_fashion_mnist"):
        load_data("fashion-mnist")


def test_unknown_names_are_rejected():
    with pytest.raises(ValueError, match="unknown dataset 'svhn'; expected one of mnist, fashion-mnist"):
        load_data("svhn")


def test_limits_outside_the_data_are_rejected():
    data = load_data("digits")
    with pytest.raises(ValueError, match=r"limit must be between 2 and 1,797 .*; got 1,798"):
        data.limited(1798)
    with pytest.raises(ValueError, match="got 1"):
        data.limited(1)
    small = data.limited(2)
    assert (len(small.x_train), len(small.x_test)) == (1, 1)


def test_the_fingerprint_sees_every_value_and_shape():
    data = load_data("digits")
    assert data.sha256() == load_data("digits").sha256()
    assert data.limited(1000).sha256() != data.sha256()
    changed = data.x_test.copy()
    changed[-1, -1, -1, 0] = np.nextafter(changed[-1, -1, -1, 0], np.float32(2))  # one ulp
    assert data.__class__(**{**data.__dict__, "x_test": changed}).sha256() != data.sha256()
    relabelled = data.__class__(**{**data.__dict__, "y_cv": data.y_cv.astype(np.int32)})
    assert relabelled.sha256() != data.sha256()  # same values, another dtype
