"""Softmax + categorical cross-entropy, fused and numerically stable.

For logits ``z`` of shape (N, K) and one-hot targets ``y`` of the same shape,

    L = -(1/N) * sum_n sum_k y[n, k] * log softmax(z)[n, k]
    dL/dz = (softmax(z) - y) / N

(``docs/backprop.md#softmax-and-cross-entropy``). ``log softmax`` is computed
as ``z - logsumexp(z)``, so no probability is ever rounded to 0 and then logged.
"""

from __future__ import annotations

import numpy as np


def log_softmax(z: np.ndarray) -> np.ndarray:
    """``z - log(sum(exp(z)))`` per row, shifted by the row max so ``exp`` never overflows."""
    shifted = z - z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def softmax_cross_entropy(z: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of softmax(z) against one-hot ``y``, and its gradient ``dz``.

    z, y: arrays of shape (N, K). Returns ``(loss, dz)`` with ``dz`` of shape (N, K).
    """
    n = z.shape[0]
    log_p = log_softmax(z)
    loss = -float((y * log_p).sum()) / n
    dz = (np.exp(log_p) - y) / z.dtype.type(n)
    return loss, dz


def to_categorical(y, num_classes: int | None = None, dtype=np.float32) -> np.ndarray:
    """Integer class labels of shape (N,) -> one-hot array of shape (N, num_classes).

    Like ``keras.utils.to_categorical``, but a label outside ``[0, num_classes)``
    or a non-integer label is an error instead of a silent wrong row.
    """
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"to_categorical: expected labels of shape (N,); got {y.shape}")
    if y.size and not np.issubdtype(y.dtype, np.integer):
        if not np.all(np.mod(y, 1) == 0):
            raise ValueError(f"to_categorical: labels must be whole numbers; got dtype {y.dtype}")
        y = y.astype(np.int64)
    if num_classes is None:
        num_classes = int(y.max()) + 1 if y.size else 0
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(
            f"to_categorical: labels must be in [0, {num_classes}); "
            f"got values from {y.min()} to {y.max()}"
        )
    one_hot = np.zeros((y.shape[0], num_classes), dtype=dtype)
    one_hot[np.arange(y.shape[0]), y] = 1
    return one_hot


LOSSES = ("categorical_crossentropy", "sparse_categorical_crossentropy")
