"""``keras.datasets.fashion_mnist``: Fashion-MNIST under Keras' path.

The dataset (its files, checksums and mirrors) is defined beside MNIST, whose format it shares,
in :mod:`minicnn.datasets.mnist`.
"""

from __future__ import annotations

from minicnn.datasets.base import Split
from minicnn.datasets.mnist import load_fashion_mnist


def load_data() -> tuple[Split, Split]:
    """``keras.datasets.fashion_mnist.load_data()``: :func:`~minicnn.datasets.mnist.load_fashion_mnist`
    with its defaults.

    ``((x_train, y_train), (x_test, y_test))``: (60000, 28, 28) and (10000, 28, 28) uint8 images,
    (60000,) and (10000,) uint8 labels, Keras' shapes and dtypes; the labels name
    :data:`~minicnn.datasets.mnist.FASHION_MNIST_CLASSES`. The files come from
    ``$MINICNN_DATA/fashion-mnist/`` or the cache (downloaded there once and verified).
    """
    return load_fashion_mnist()
