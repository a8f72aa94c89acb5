"""The arrays of one experiment run: which dataset, how it is split, and its fingerprint.

:func:`load_data` turns a dataset name (``mnist``, ``fashion-mnist``, ``cifar10``,
``digits`` or ``idx:DIR``) into a :class:`Data`: float32 NHWC images in [0, 1] and
integer labels, with the cross-validation set (the training images followed by the
test images) and the held-out split. :meth:`Data.limited` cuts it down for quick
runs; :meth:`Data.sha256` fingerprints it, so a resumed run or a merge can tell
whether its parts were computed on the same arrays.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, replace

import numpy as np

from minicnn import datasets

DATASETS = {
    "mnist": "MNIST",
    "fashion-mnist": "Fashion-MNIST",
    "cifar10": "CIFAR-10",
    "digits": "scikit-learn's 8x8 digits",
}
"""Dataset names :func:`load_data` knows, with their titles; ``idx:DIR`` is accepted too."""

DIGITS_TEST_FRACTION = 0.2
"""scikit-learn's digits come unsplit: the last 20% is the test set."""


@dataclass(frozen=True)
class Data:
    """The arrays of one run: x float32 (N, H, W, C) in [0, 1], y integer labels (N,).

    ``x_cv``/``y_cv`` (cross-validation) are the training images followed by the
    test images; ``x_train``/``y_train`` and ``x_test``/``y_test`` are the held-out split.
    """

    name: str
    title: str
    x_cv: np.ndarray
    y_cv: np.ndarray
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int

    def limited(self, limit: int) -> Data:
        """The first ``limit`` cross-validation images, and train/test sets cut in the same proportion.

        The training set keeps ``limit * len(x_train) // len(x_cv)`` images, the test set the rest
        of ``limit`` (MNIST: 6/7 and 1/7). ValueError if ``limit`` exceeds the images there are
        or leaves the training set empty.
        """
        total = len(self.x_cv)
        smallest = -(-total // len(self.x_train))
        if not smallest <= limit <= total:
            raise ValueError(f"limit must be between {smallest} and {total:,} (the images of "
                             f"{self.title}); got {limit:,}")
        n_train = limit * len(self.x_train) // total
        n_test = limit - n_train
        return replace(self, x_cv=self.x_cv[:limit], y_cv=self.y_cv[:limit],
                       x_train=self.x_train[:n_train], y_train=self.y_train[:n_train],
                       x_test=self.x_test[:n_test], y_test=self.y_test[:n_test])

    def sha256(self) -> str:
        """Hex SHA-256 of every array's dtype, shape and bytes, in field order."""
        digest = hashlib.sha256()
        for array in (self.x_cv, self.y_cv, self.x_train, self.y_train, self.x_test, self.y_test):
            array = np.ascontiguousarray(array)
            digest.update(f"{array.dtype.str}{array.shape}".encode())
            digest.update(array.data)
        return digest.hexdigest()


def load_data(name: str, data_dir: str | os.PathLike | None = None) -> Data:
    """The dataset called ``name`` (a key of :data:`DATASETS` or ``idx:DIR``), prepared for a run.

    ``data_dir`` is where the files of mnist, fashion-mnist and cifar10 are (see
    :mod:`minicnn.datasets` for the search order and downloads). Raises
    :class:`minicnn.datasets.DatasetError` when the data cannot be had, and ValueError
    for an unknown name.
    """
    if name == "digits":
        x, y = datasets.load_digits()
        cut = len(x) - round(DIGITS_TEST_FRACTION * len(x))
        return _data("digits", DATASETS["digits"], (x[:cut], y[:cut]), (x[cut:], y[cut:]))
    if name.startswith("idx:"):
        directory = name.removeprefix("idx:")
        train, test = datasets.load_idx_dataset(directory)
        return _data("idx", f"the IDX files in {directory}", *_scaled(train, test))
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; expected one of {', '.join(DATASETS)} or idx:DIR")
    train, test = _loader(name)(data_dir)
    return _data(name, DATASETS[name], *_scaled(train, test))


def _loader(name: str):
    """``minicnn.datasets.load_<name>``; DatasetError if this version of minicnn lacks it."""
    function = f"load_{name.replace('-', '_')}"
    loader = getattr(datasets, function, None)
    if loader is None:
        raise datasets.DatasetError(f"this version of minicnn cannot load {DATASETS[name]}: "
                                    f"minicnn.datasets has no {function}")
    return loader


def _scaled(*splits: tuple[np.ndarray, np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    """uint8 images (N, H, W) or (N, H, W, C) -> float32 (N, H, W, C) in [0, 1]; labels (N,) or (N, 1)."""
    scaled = []
    for x, y in splits:
        x = datasets.prepare_images(x) if x.ndim == 3 else np.divide(x, 255, dtype=np.float32)
        scaled.append((x, np.asarray(y).reshape(len(y))))
    return scaled


def _data(name: str, title: str, train: tuple[np.ndarray, np.ndarray],
          test: tuple[np.ndarray, np.ndarray]) -> Data:
    (x_train, y_train), (x_test, y_test) = train, test
    for split, x in (("training", x_train), ("test", x_test)):
        if len(x) == 0:
            raise datasets.DatasetError(f"{title}: the {split} split holds no images; a run needs both")
    y_train, y_test = y_train.astype(np.int64), y_test.astype(np.int64)
    num_classes = max(2, int(max(y_train.max(), y_test.max())) + 1)
    return Data(name, title, np.concatenate([x_train, x_test]), np.concatenate([y_train, y_test]),
                x_train, y_train, x_test, y_test, num_classes)
