"""Metrics chosen in ``compile(metrics=[...])``: Keras' names, Keras' numbers.

Each metric scores every sample 0 or 1 from the model's scores and the targets, and
``fit``/``evaluate`` report the mean over the samples seen (not weighted by
``sample_weight``: Keras weights only its ``weighted_metrics``, which minicnn does not have).

- ``"accuracy"`` (or ``"acc"``): the class with the highest score is the labelled one.
  Keras resolves it to categorical or sparse categorical accuracy by the labels; minicnn
  computes both from one-hot targets, so the three are one computation.
- ``"categorical_accuracy"``, ``"sparse_categorical_accuracy"``: the same, under these names.
- ``"top_k_categorical_accuracy"``, ``"sparse_top_k_categorical_accuracy"`` (k=5, as Keras;
  ``TopKCategoricalAccuracy(k=3)`` for another k): the labelled class is among the k highest
  scores. Ties count as TensorFlow's ``in_top_k`` counts them: a class is in the top k when
  fewer than k classes score strictly higher.

The model's scores are the logits or the softmax probabilities; softmax keeps the order of the
scores, so every metric here gives the same value on either. Called directly,
``metric(y_true, y_pred)`` returns the per-sample values, like ``keras.metrics.categorical_accuracy``.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from minicnn import missing
from minicnn.losses import to_categorical
from minicnn.registry import METRICS
from minicnn.validation import check_int

__all__ = ["CategoricalAccuracy", "Metric", "SparseCategoricalAccuracy", "SparseTopKCategoricalAccuracy",
           "TopKCategoricalAccuracy", "get", "serialize"]

__getattr__ = missing.module_getattr(__name__)  # Keras' names minicnn lacks: see minicnn.missing


class Metric:
    """A per-sample 0/1 score, averaged over the samples; ``direction`` says higher is better."""

    direction: ClassVar[str] = "up"
    sparse: ClassVar[bool] = False

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_config().items())})"

    def get_config(self) -> dict:
        return {"name": self.name}

    def score(self, scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """Per-sample values (N,) for scores (N, K) and one-hot targets (N, K)."""
        raise NotImplementedError

    def __call__(self, y_true, y_pred) -> np.ndarray:
        """Per-sample values for labels ``y_true`` (one-hot (N, K), or integers (N,) for a sparse
        metric) and predictions ``y_pred`` (N, K)."""
        y_pred = np.asarray(y_pred)
        if y_pred.ndim != 2:
            raise ValueError(f"{self.name}: expected predictions of shape (N, K); got {y_pred.shape}")
        y_true = np.asarray(y_true)
        if self.sparse:
            y_true = to_categorical(y_true.reshape(len(y_true)).astype(np.int64), y_pred.shape[1])
        elif y_true.shape != y_pred.shape:
            raise ValueError(f"{self.name}: expected one-hot labels of shape {y_pred.shape}; "
                             f"got {y_true.shape}")
        return self.score(y_pred, y_true)


@METRICS.register("accuracy", "acc", "categorical_accuracy")
class CategoricalAccuracy(Metric):
    """1 where the highest score is the labelled class (the first highest on ties, as ``argmax``)."""

    def __init__(self, name: str = "categorical_accuracy"):
        super().__init__(name)

    def score(self, scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
        return (scores.argmax(axis=1) == targets.argmax(axis=1)).astype(np.float32)


@METRICS.register("sparse_categorical_accuracy")
class SparseCategoricalAccuracy(CategoricalAccuracy):
    """:class:`CategoricalAccuracy` for integer labels."""

    sparse = True

    def __init__(self, name: str = "sparse_categorical_accuracy"):
        super().__init__(name)


@METRICS.register("top_k_categorical_accuracy")
class TopKCategoricalAccuracy(Metric):
    """1 where fewer than ``k`` classes score strictly higher than the labelled one."""

    def __init__(self, k: int = 5, name: str = "top_k_categorical_accuracy"):
        super().__init__(name)
        self.k = check_int(k, f"{type(self).__name__}: k", minimum=1)

    def get_config(self) -> dict:
        return {"k": self.k, **super().get_config()}

    def score(self, scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
        labelled = scores[np.arange(len(scores)), targets.argmax(axis=1)]
        higher = (scores > labelled[:, None]).sum(axis=1)
        return (higher < self.k).astype(np.float32)


@METRICS.register("sparse_top_k_categorical_accuracy")
class SparseTopKCategoricalAccuracy(TopKCategoricalAccuracy):
    """:class:`TopKCategoricalAccuracy` for integer labels."""

    sparse = True

    def __init__(self, k: int = 5, name: str = "sparse_top_k_categorical_accuracy"):
        super().__init__(k, name)


def get(metric: str | Metric) -> Metric:
    """A metric from an instance, or a new one from a name (Keras' or the class name), logged under
    that name."""
    if isinstance(metric, Metric):
        return metric
    if not isinstance(metric, str):
        raise TypeError(f"compile: a metric must be a name ({', '.join(METRICS.names())}) or a "
                        f"minicnn.metrics.Metric; got {type(metric).__name__}")
    return METRICS.get(metric)(name=metric)


def serialize(metric: Metric) -> dict:
    """The metric as a saved model holds it: its class name and ``get_config()``."""
    return {"class_name": type(metric).__name__, "config": metric.get_config()}
