"""Datasets for the examples: MNIST, Fashion-MNIST, CIFAR-10, files in MNIST's IDX format,
and scikit-learn's 8x8 digits.

:func:`load_mnist`, :func:`load_fashion_mnist` and :func:`load_cifar10` return the arrays
``keras.datasets.<name>.load_data()`` returns (CIFAR-10's labels as (N,), not Keras' (N, 1)).
Keras' own paths work too: ``mnist.load_data()``, ``fashion_mnist.load_data()`` and
``cifar10.load_data()`` (labels (N, 1) there), so ``keras.datasets.mnist.load_data()`` runs
under ``import minicnn as keras``; Keras' other datasets raise
:class:`~minicnn.missing.MissingFeatureError` saying which minicnn has.
Each looks for its files in, by priority:

1. ``data_dir`` when given (the files directly in it, or in ``data_dir/<name>/``);
2. ``$MINICNN_DATA/<name>/`` when the environment variable ``MINICNN_DATA`` is set;
3. the per-user cache ``$XDG_CACHE_HOME/minicnn/<name>`` (default ``~/.cache/minicnn/<name>``),
   the only place it downloads missing files to,

with ``<name>`` one of ``mnist``, ``fashion-mnist``, ``cifar10``. Every file is checked
against a published SHA-256 before it is decoded, so a corrupt download or another dataset
under the same names is an error, never silently wrong data. Files in these formats without
published checksums (KMNIST, synthetic test data) load with :func:`load_idx_dataset` and
:func:`load_cifar10_binary`, which check the format only.

Size limits: no file is decompressed beyond ``max_bytes`` (512 MiB by default, far above
the largest real file): an IDX header declaring more is refused before anything is
allocated, and a gzip stream is never read past what its header declares, so a gzip bomb
is not decompressed. Every reader and loader takes ``max_bytes=`` to raise the limit.

The modules, one job each: :mod:`~minicnn.datasets.base` (the error, the size limit, the
argument and checksum checks), :mod:`~minicnn.datasets.idx` (the IDX format),
:mod:`~minicnn.datasets.cifar10` (CIFAR-10's binary format and its loader),
:mod:`~minicnn.datasets.mnist` (MNIST, Fashion-MNIST and other four-file IDX datasets),
:mod:`~minicnn.datasets.fashion_mnist` (Keras' path to Fashion-MNIST),
:mod:`~minicnn.datasets.download` (where files are found, the cache, downloads and their
checks), :mod:`~minicnn.datasets.images` (:func:`prepare_images`) and
:mod:`~minicnn.datasets.digits` (:func:`load_digits`). Everything public is imported here.
"""

from minicnn import missing
from minicnn.datasets import cifar10, fashion_mnist, mnist
from minicnn.datasets.base import MAX_BYTES, DatasetError, Split
from minicnn.datasets.cifar10 import (
    CIFAR10,
    CIFAR10_ARCHIVE,
    CIFAR10_CLASSES,
    CIFAR10_FOLDER,
    CIFAR10_MIRRORS,
    CIFAR10_SHA256,
    CIFAR10_SHAPE,
    CIFAR10_TEST,
    CIFAR10_TRAIN,
    load_cifar10,
    load_cifar10_binary,
)
from minicnn.datasets.digits import load_digits
from minicnn.datasets.download import DOWNLOAD_TIMEOUT, cache_dir, fetch
from minicnn.datasets.idx import IDX_DTYPES, read_idx
from minicnn.datasets.images import prepare_images
from minicnn.datasets.mnist import (
    FASHION_MNIST,
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_MIRRORS,
    FASHION_MNIST_SHA256,
    MNIST,
    MNIST_FILES,
    MNIST_MIRRORS,
    MNIST_SHA256,
    TEST_IMAGES,
    TEST_LABELS,
    TRAIN_IMAGES,
    TRAIN_LABELS,
    load_fashion_mnist,
    load_idx_dataset,
    load_mnist,
    load_mnist_all,
)

__all__ = [
    "CIFAR10", "CIFAR10_ARCHIVE", "CIFAR10_CLASSES", "CIFAR10_FOLDER", "CIFAR10_MIRRORS", "CIFAR10_SHA256",
    "CIFAR10_SHAPE", "CIFAR10_TEST", "CIFAR10_TRAIN", "DOWNLOAD_TIMEOUT", "FASHION_MNIST",
    "FASHION_MNIST_CLASSES", "FASHION_MNIST_MIRRORS", "FASHION_MNIST_SHA256", "IDX_DTYPES", "MAX_BYTES",
    "MNIST", "MNIST_FILES", "MNIST_MIRRORS", "MNIST_SHA256", "TEST_IMAGES", "TEST_LABELS", "TRAIN_IMAGES",
    "TRAIN_LABELS", "DatasetError", "Split", "cache_dir", "fetch", "load_cifar10", "load_cifar10_binary",
    "load_digits", "load_fashion_mnist", "load_idx_dataset", "load_mnist", "load_mnist_all",
    "prepare_images", "read_idx", "cifar10", "fashion_mnist", "mnist",
]

__getattr__ = missing.module_getattr(__name__)
