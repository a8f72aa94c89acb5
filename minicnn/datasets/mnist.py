"""MNIST, Fashion-MNIST and other datasets of four IDX files under MNIST's names.

:func:`load_mnist` and :func:`load_fashion_mnist` return what ``keras.datasets.<name>.load_data()``
returns, found or downloaded as :mod:`minicnn.datasets.download` says and checked against
their published SHA-256 before they are decoded. :func:`load_idx_dataset` reads any folder of
the four files (KMNIST, synthetic test data), checking the format only unless given checksums.
:func:`load_data` is Keras' path, ``keras.datasets.mnist.load_data()``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from minicnn.datasets.base import (
    MAX_BYTES,
    DatasetError,
    Split,
    check_sha256,
    checked_dir,
    checked_max_bytes,
    file_sha256,
)
from minicnn.datasets.download import Source, ensure_files, find, missing_files
from minicnn.datasets.idx import parse, read_content

TRAIN_IMAGES = "train-images-idx3-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"
TEST_IMAGES = "t10k-images-idx3-ubyte"
TEST_LABELS = "t10k-labels-idx1-ubyte"
MNIST_FILES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)

# SHA-256 of each file's decompressed content, so NAME and NAME.gz verify alike.
MNIST_SHA256 = {
    TRAIN_IMAGES: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    TRAIN_LABELS: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    TEST_IMAGES: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    TEST_LABELS: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}

# Tried in order; each serves NAME.gz. (yann.lecun.com itself now often refuses downloads.)
MNIST_MIRRORS = (
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
)

# SHA-256 of the published .gz files. Fashion-MNIST's README (github.com/zalandoresearch/
# fashion-mnist) lists only MD5s; these are TensorFlow Datasets' checksums of the same files
# (tensorflow_datasets/url_checksums/fashion_mnist.txt), also used by torchvision's prototype
# datasets.
FASHION_MNIST_SHA256 = {
    f"{TRAIN_IMAGES}.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
    f"{TRAIN_LABELS}.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
    f"{TEST_IMAGES}.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
    f"{TEST_LABELS}.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
}
FASHION_MNIST_MIRRORS = (
    # The files in the dataset's own repository, at a fixed commit.
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/"
    "b2617bb6d3ffa2e429640350f613e3291e10b141/data/fashion/",
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",  # plain HTTP; SHA-256 checked
)
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")

MNIST = Source("mnist", "MNIST", tuple(f"{n}.gz" for n in MNIST_FILES), MNIST_SHA256,
               MNIST_MIRRORS, hash_content=True)
FASHION_MNIST = Source("fashion-mnist", "Fashion-MNIST", tuple(FASHION_MNIST_SHA256),
                       FASHION_MNIST_SHA256, FASHION_MNIST_MIRRORS)


def load_idx_dataset(
    data_dir: str | os.PathLike, *, sha256: Mapping[str, str] | None = None,
    max_bytes: int = MAX_BYTES,
) -> tuple[Split, Split]:
    """``((x_train, y_train), (x_test, y_test))`` from the four MNIST-named files in ``data_dir``.

    Images are (N, H, W) uint8 and labels (N,) uint8 in 0..9, as MNIST and its drop-ins
    (Fashion-MNIST, KMNIST) store them; each file may be NAME.gz or the raw NAME.
    ``sha256`` maps file names to the expected hash of their decompressed content; without
    it only the format is checked, which is what drop-ins need since their content differs
    from MNIST's.
    """
    directory = checked_dir(data_dir, "load_idx_dataset")
    max_bytes = checked_max_bytes(max_bytes, "load_idx_dataset")
    source = None if sha256 is None else Source("idx", "IDX", MNIST.files, sha256, (),
                                                hash_content=True)
    missing = missing_files(directory, source or MNIST)
    if missing:
        raise DatasetError(
            f"{directory} lacks {', '.join(missing)} (each may be NAME.gz or the raw NAME)"
        )
    return _load_idx_files(directory, source, max_bytes)


def _load_idx_files(directory: Path, source: Source | None, max_bytes: int) -> tuple[Split, Split]:
    """The four IDX files in ``directory``, verified against ``source``'s checksums if given.

    Raw files stand in for NAME.gz unless the checksums are of the .gz files.
    """
    raw_ok = source is None or source.hash_content
    arrays = {}
    for name in MNIST_FILES:
        path = find(directory, f"{name}.gz", raw_ok)
        arrays[name] = _read_verified_idx(path, source, max_bytes)
    train = _checked_split(arrays[TRAIN_IMAGES], arrays[TRAIN_LABELS], directory, "train")
    test = _checked_split(arrays[TEST_IMAGES], arrays[TEST_LABELS], directory, "t10k")
    if train[0].shape[1:] != test[0].shape[1:]:
        raise DatasetError(
            f"{directory}: train images are {train[0].shape[1:]}, t10k images {test[0].shape[1:]}"
        )
    return train, test


def _read_verified_idx(path: Path, source: Source | None, max_bytes: int) -> np.ndarray:
    """Read one IDX file, checking its published SHA-256 first when ``source`` is given.

    A hash of the file as downloaded is checked before anything is decompressed.
    """
    if source is not None and not source.hash_content:
        check_sha256(path, file_sha256(path), source.expected(path), "file")
    content = read_content(path, max_bytes)
    if source is not None and source.hash_content:
        check_sha256(path, hashlib.sha256(content).hexdigest(), source.expected(path),
                     "decompressed content")
    return parse(content, path)


def _checked_split(images: np.ndarray, labels: np.ndarray, where: Path, split: str) -> Split:
    """Check that images (N, H, W) uint8 and labels (N,) uint8 in 0..9 belong together."""
    if images.dtype != np.uint8 or images.ndim != 3:
        raise DatasetError(
            f"{where}: {split} images must be (N, H, W) uint8; got {images.shape} {images.dtype}"
        )
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise DatasetError(
            f"{where}: {split} labels must be (N,) uint8; got {labels.shape} {labels.dtype}"
        )
    if len(images) != len(labels):
        raise DatasetError(f"{where}: {len(images)} {split} images but {len(labels)} labels")
    if labels.size and labels.max() > 9:
        raise DatasetError(f"{where}: {split} labels must be 0..9; found {labels.max()}")
    return images, labels


def load_mnist(
    data_dir: str | os.PathLike | None = None, *, download: bool = True, max_bytes: int = MAX_BYTES
) -> tuple[Split, Split]:
    """MNIST as ``keras.datasets.mnist.load_data()`` returns it, verified by SHA-256.

    ``((x_train, y_train), (x_test, y_test))``: x_train (60000, 28, 28) uint8,
    y_train (60000,) uint8, x_test (10000, 28, 28) uint8, y_test (10000,) uint8.
    Missing files are downloaded only into the cache (see :mod:`minicnn.datasets.download`),
    and only when ``download``; a ``data_dir`` or ``MINICNN_DATA`` the user chose is never
    filled behind their back, so files missing there are an error.
    """
    max_bytes = checked_max_bytes(max_bytes, "load_mnist")
    directory = ensure_files(MNIST, data_dir, download, "load_mnist")
    return _load_idx_files(directory, MNIST, max_bytes)


def load_mnist_all(
    data_dir: str | os.PathLike | None = None, *, download: bool = True, max_bytes: int = MAX_BYTES
) -> Split:
    """All 70,000 MNIST digits as ``(x, y)``: (70000, 28, 28) uint8 and (70000,) uint8.

    The 60,000 training images come first, then the 10,000 test images: the order of
    ``sklearn.datasets.fetch_openml("mnist_784")``, for cross-validation over the whole set.
    """
    (x_train, y_train), (x_test, y_test) = load_mnist(data_dir, download=download,
                                                      max_bytes=max_bytes)
    return np.concatenate([x_train, x_test]), np.concatenate([y_train, y_test])


def load_fashion_mnist(
    data_dir: str | os.PathLike | None = None, *, download: bool = True, max_bytes: int = MAX_BYTES
) -> tuple[Split, Split]:
    """Fashion-MNIST as ``keras.datasets.fashion_mnist.load_data()`` returns it, verified.

    Shapes and dtypes as :func:`load_mnist`; labels 0..9 name :data:`FASHION_MNIST_CLASSES`.
    Found and downloaded as :mod:`minicnn.datasets.download` says, in folders named
    ``fashion-mnist``. The published checksums are of the ``.gz`` files, so the files must be
    the four ``NAME.gz`` as published (to read raw or other IDX files unverified, use
    :func:`load_idx_dataset`).
    """
    max_bytes = checked_max_bytes(max_bytes, "load_fashion_mnist")
    directory = ensure_files(FASHION_MNIST, data_dir, download, "load_fashion_mnist")
    return _load_idx_files(directory, FASHION_MNIST, max_bytes)


def load_data() -> tuple[Split, Split]:
    """``keras.datasets.mnist.load_data()``: :func:`load_mnist` with its defaults.

    ``((x_train, y_train), (x_test, y_test))``: (60000, 28, 28) and (10000, 28, 28) uint8 images,
    (60000,) and (10000,) uint8 labels, Keras' shapes and dtypes. The files come from
    ``$MINICNN_DATA/mnist/`` or the cache (downloaded there once and verified), not Keras' npz;
    for another folder call ``load_mnist(data_dir)``.
    """
    return load_mnist()
