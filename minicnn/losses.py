"""Losses as objects, chosen in ``compile``: cross-entropy on one-hot or on integer labels.

For probabilities ``p = softmax(z)`` of shape (N, K) and one-hot targets ``y`` of the same shape,

    L = -(1/N) * sum_n sum_k y[n, k] * log p[n, k]
    dL/dz = (p - y) / N

(``docs/backprop.md#softmax-and-cross-entropy``). :func:`softmax_cross_entropy` computes
both from the logits ``z``, with ``log p = z - logsumexp(z)``, so no probability is ever
rounded to 0 and then logged. That is the fused optimisation of the pair softmax +
cross-entropy, and the only way minicnn computes this loss:

- ``from_logits=True``: the model's outputs are the logits ``z`` themselves;
- ``from_logits=False`` (Keras' default): the model must end in a softmax, and the model
  hands the loss that softmax's input, the logits (Keras does the same internally).

``CategoricalCrossentropy`` takes one-hot labels (N, K); ``SparseCategoricalCrossentropy``
takes integer labels (N,) or (N, 1), as Keras does. A label/loss mismatch is an error
that says which loss expects what.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from minicnn import missing
from minicnn.registry import LOSSES

__all__ = ["CategoricalCrossentropy", "Loss", "SparseCategoricalCrossentropy", "get", "log_softmax",
           "softmax_cross_entropy", "to_categorical"]

__getattr__ = missing.module_getattr(__name__)  # Keras' names minicnn lacks: see minicnn.missing


def log_softmax(z: np.ndarray) -> np.ndarray:
    """``z - log(sum(exp(z)))`` per row, shifted by the row max so ``exp`` never overflows."""
    shifted = z - z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def softmax_cross_entropy(z: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None
                          ) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of softmax(z) against one-hot ``y``, and its gradient ``dz``.

    z, y: arrays of shape (N, K). Returns ``(loss, dz)`` with ``dz`` of shape (N, K).
    ``sample_weight`` (N,) scales each sample's loss; the mean still divides by N, as
    Keras' default reduction does: ``L = (1/N) sum_n w_n l_n``, ``dz = w_n (p - y) / N``.
    """
    n = z.shape[0]
    log_p = log_softmax(z)
    loss = -float((y * log_p).sum()) / n
    dz = (np.exp(log_p) - y) / z.dtype.type(n)
    if sample_weight is None:
        return loss, dz
    w = sample_weight.astype(z.dtype, copy=False)
    return -float(((y * log_p).sum(axis=1) * w).sum()) / n, dz * w[:, None]


class Loss:
    """A loss: checks labels against the model's outputs, then gives the loss and its gradient."""

    name: ClassVar[str] = "loss"
    """Keras' name of the loss, under which it is registered too (``"categorical_crossentropy"``)."""

    docs_section: ClassVar[str]
    """The anchor of the section of ``docs/backprop.md`` that derives the loss and its gradient."""

    def __init__(self, from_logits: bool = False):
        if not isinstance(from_logits, bool):
            raise TypeError(f"{type(self).__name__}: from_logits must be True or False; got {from_logits!r}")
        self.from_logits = from_logits

    def __repr__(self) -> str:
        return f"{type(self).__name__}(from_logits={self.from_logits})"

    def get_config(self) -> dict:
        return {"from_logits": self.from_logits}

    def targets(self, y, num_classes: int, dtype, verb: str) -> np.ndarray:
        """The labels ``y`` as one-hot rows (N, K) of ``dtype``; ValueError if they do not fit this loss."""
        raise NotImplementedError

    def loss_and_gradient(self, z: np.ndarray, targets: np.ndarray, sample_weight: np.ndarray | None = None
                          ) -> tuple[float, np.ndarray]:
        """Mean loss and dL/dz for the logits ``z`` (N, K), one-hot ``targets`` (N, K) and
        optional per-sample weights (N,)."""
        return softmax_cross_entropy(z, targets, sample_weight)

    def __call__(self, y_true, y_pred) -> float:
        """The mean loss of predictions ``y_pred`` (N, K): logits if ``from_logits``, else probabilities."""
        y_pred = np.asarray(y_pred, dtype=np.float64)
        if y_pred.ndim != 2:
            raise ValueError(f"{type(self).__name__}: expected predictions of shape (N, K); "
                             f"got {y_pred.shape}")
        targets = self.targets(y_true, y_pred.shape[1], np.float64, type(self).__name__)
        z = y_pred if self.from_logits else np.log(np.clip(y_pred, 1e-7, 1.0))
        return softmax_cross_entropy(z, targets)[0]


@LOSSES.register("categorical_crossentropy")
class CategoricalCrossentropy(Loss):
    """Cross-entropy against one-hot labels of shape (N, K)."""

    name = "categorical_crossentropy"
    docs_section = "softmax-and-cross-entropy"

    def targets(self, y, num_classes: int, dtype, verb: str) -> np.ndarray:
        y = np.asarray(y)
        if y.ndim != 2 or y.shape[1] != num_classes:
            integers = y.ndim == 1 or y.shape[1:] == (1,)
            hint = (" For integer labels use loss='sparse_categorical_crossentropy', or one-hot "
                    "encode them with minicnn.to_categorical(y)." if integers else "")
            raise ValueError(f"{verb}: categorical_crossentropy expects one-hot labels of shape "
                             f"(N, {num_classes}); got {y.dtype} labels of shape {y.shape}.{hint}")
        if not (np.isin(y, (0, 1)).all() and (y.sum(axis=1) == 1).all()):
            raise ValueError(f"{verb}: one-hot labels must have exactly one 1 per row and 0 elsewhere")
        return y.astype(dtype, copy=False)


@LOSSES.register("sparse_categorical_crossentropy")
class SparseCategoricalCrossentropy(Loss):
    """Cross-entropy against integer class labels of shape (N,) or (N, 1)."""

    name = "sparse_categorical_crossentropy"
    docs_section = "softmax-and-cross-entropy"

    def targets(self, y, num_classes: int, dtype, verb: str) -> np.ndarray:
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1:
            hint = (" For one-hot labels use loss='categorical_crossentropy'."
                    if y.ndim == 2 and y.shape[1] == num_classes else "")
            raise ValueError(f"{verb}: sparse_categorical_crossentropy expects integer labels of shape "
                             f"(N,) or (N, 1); got labels of shape {y.shape}.{hint}")
        if y.dtype.kind in "USO":
            raise TypeError(f"{verb}: labels must be integers 0..{num_classes - 1}; got {y.dtype} values "
                            f"such as {y[:3].tolist()}. Map them to integers first, e.g. with "
                            "sklearn.preprocessing.LabelEncoder().fit_transform(y).")
        return to_categorical(y, num_classes, dtype=dtype)


def get(loss: str | Loss) -> Loss:
    """A loss from an instance, or a new one from a name: Keras' (``"categorical_crossentropy"``, ...)
    or the class name."""
    if isinstance(loss, Loss):
        return loss
    if not isinstance(loss, str):
        raise TypeError(f"loss must be a name ({', '.join(LOSSES.names())}) or a minicnn.losses.Loss; "
                        f"got {type(loss).__name__}")
    return LOSSES.get(loss)()


def to_categorical(y, num_classes: int | None = None, dtype=np.float32) -> np.ndarray:
    """Integer class labels of shape (N,) or (N, 1) -> one-hot array of shape (N, num_classes).

    Like ``keras.utils.to_categorical`` (which also drops a last axis of size 1, as CIFAR-10's
    (N, 1) labels have), but a label outside ``[0, num_classes)`` or a non-integer label is an
    error instead of a silent wrong row.
    """
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"to_categorical: expected labels of shape (N,) or (N, 1); got {y.shape}")
    if y.size and not np.issubdtype(y.dtype, np.number):
        raise TypeError(f"to_categorical: labels must be integers; got dtype {y.dtype}")
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
