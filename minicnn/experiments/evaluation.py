"""Evaluating a classifier: confusion matrix, per-class report, and plots saved as PNG.

The metrics are thin wrappers over scikit-learn that accept labels or the
model's predicted probabilities alike. The plots draw on a bare
``matplotlib.figure.Figure`` (no pyplot: no global state, no window, no
display needed), are written atomically, and are returned for inspection.
matplotlib is imported inside the functions so that ``import minicnn`` stays fast.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from minicnn.files import atomic_write
from minicnn.validation import check_int

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DPI = 120


def to_labels(y, name: str = "y") -> np.ndarray:
    """Integer class labels (N,) from labels (N,), or from probabilities or one-hot rows (N, K) by argmax."""
    y = np.asarray(y)
    if y.ndim == 2:
        return y.argmax(axis=1)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{name}: expected integer labels (N,) or scores (N, K); got {y.dtype} {y.shape}")
    return y


def confusion_matrix(y_true, y_pred, num_classes: int | None = None) -> np.ndarray:
    """Counts (K, K): row i, column j holds how many images of class i were predicted as j.

    ``y_true`` and ``y_pred`` are labels (N,) or scores (N, K) (probabilities,
    one-hot). Every class gets a row and a column even if it never occurs:
    ``num_classes``, else K of the scores, else the largest label + 1.
    """
    true, pred = to_labels(y_true, "y_true"), to_labels(y_pred, "y_pred")
    from sklearn.metrics import confusion_matrix as sklearn_confusion_matrix

    k = num_classes or _num_classes(y_true, y_pred, true, pred)
    _check_label_range(true, pred, k)
    return sklearn_confusion_matrix(true, pred, labels=np.arange(k))


def classification_report(y_true, y_pred, class_names: Sequence[str] | None = None,
                          digits: int = 4) -> str:
    """scikit-learn's per-class precision, recall, F1 and support as text; inputs as in confusion_matrix."""
    true, pred = to_labels(y_true, "y_true"), to_labels(y_pred, "y_pred")
    from sklearn.metrics import classification_report as sklearn_report

    k = len(class_names) if class_names is not None else _num_classes(y_true, y_pred, true, pred)
    _check_label_range(true, pred, k)
    names = [str(n) for n in class_names] if class_names is not None else None
    return sklearn_report(true, pred, labels=np.arange(k), target_names=names, digits=digits,
                          zero_division=0)


def _check_label_range(true: np.ndarray, pred: np.ndarray, k: int) -> None:
    """Labels outside 0..k-1 would silently drop out of scikit-learn's counts: make them an error."""
    for name, labels in (("y_true", true), ("y_pred", pred)):
        if labels.size and (labels.min() < 0 or labels.max() >= k):
            raise ValueError(f"{name}: labels must be in 0..{k - 1} for {k} classes; "
                             f"got {labels.min()}..{labels.max()}")


def _num_classes(y_true, y_pred, true: np.ndarray, pred: np.ndarray) -> int:
    """K from whichever input has a class axis, else the largest label + 1."""
    for y in (y_pred, y_true):
        if np.ndim(y) == 2:
            return np.shape(y)[1]
    return int(max(true.max(initial=0), pred.max(initial=0))) + 1


def plot_confusion_matrix(cm, path: str | os.PathLike, class_names: Sequence[str] | None = None,
                          title: str = "Confusion matrix") -> Figure:
    """Save the counts ``cm`` (K, K), rows true and columns predicted, as a heatmap PNG with counts."""
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"plot_confusion_matrix: cm must be square (K, K); got shape {cm.shape}")
    k = len(cm)
    names = [str(n) for n in class_names] if class_names is not None else [str(i) for i in range(k)]
    if len(names) != k:
        raise ValueError(f"plot_confusion_matrix: {k} classes but {len(names)} class_names")
    side = max(4.5, 0.5 * k + 2.5)
    fig = _figure(figsize=(side + 1.2, side))
    ax = fig.add_subplot()
    image = ax.imshow(cm, cmap="Blues", vmin=0)
    fig.colorbar(image, ax=ax, label="Images", shrink=0.85)
    threshold = cm.max() / 2
    for (i, j), count in np.ndenumerate(cm):
        color = "white" if count > threshold else ("0.6" if count == 0 else "black")
        ax.text(j, i, f"{count:,}", ha="center", va="center", color=color, fontsize=8 if k > 12 else 9)
    ax.set_xticks(range(k), labels=names)
    ax.set_yticks(range(k), labels=names)
    ax.set_xlabel("Predicted label")
    ax.set_ylabel("True label")
    ax.set_title(title)
    return _save(fig, path)


def plot_learning_curves(histories: Sequence[Mapping[str, Sequence[float]]], path: str | os.PathLike,
                         title: str = "Learning curves") -> Figure:
    """Save accuracy and loss per epoch, one panel each, for every fold and their mean, as a PNG.

    ``histories`` are ``history.history`` dicts (``"accuracy"``, ``"loss"`` and
    optionally ``"val_accuracy"``, ``"val_loss"``), one per fold. Each fold is a
    thin line in its own colour, training solid and validation dashed; the mean
    over folds is bold black (over the epochs all folds ran).
    """
    if not histories:
        raise ValueError("plot_learning_curves: histories is empty; pass one history dict per fold")
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    fig = _figure(figsize=(11, 4.2))
    for ax, metric in zip(fig.subplots(1, 2), ("accuracy", "loss"), strict=True):
        for key, style in ((metric, "-"), (f"val_{metric}", "--")):
            _plot_runs(ax, histories, key, style)
        ax.set_title(f"{metric.capitalize()} per epoch")
        ax.set_xlabel("Epoch")
        ax.set_ylabel(metric.capitalize())
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if metric == "accuracy":
            ax.yaxis.set_major_formatter(PercentFormatter(xmax=1))
    colors = [f"C{i % 10}" for i in range(len(histories))]
    handles = [Line2D([], [], color=c, lw=1, label=f"fold {i + 1}") for i, c in enumerate(colors)]
    handles += [Line2D([], [], color="black", lw=2.5, label="mean over folds"),
                Line2D([], [], color="0.4", ls="-", label="training"),
                Line2D([], [], color="0.4", ls="--", label="validation")]
    fig.legend(handles=handles, loc="outside right center")
    fig.suptitle(title)
    return _save(fig, path)


def _plot_runs(ax, histories: Sequence[Mapping[str, Sequence[float]]], key: str, style: str) -> None:
    """Each history's ``key`` as a thin line (fold i in colour Ci) and their bold mean, epochs from 1."""
    runs = [(i, h[key]) for i, h in enumerate(histories) if key in h]
    for i, run in runs:
        ax.plot(range(1, len(run) + 1), run, style, color=f"C{i % 10}", lw=1, alpha=0.7, marker="o", ms=2.5)
    if runs:
        common = min(len(run) for _, run in runs)
        mean = np.mean([run[:common] for _, run in runs], axis=0)
        ax.plot(range(1, common + 1), mean, style, color="black", lw=2.5, marker="o", ms=4)


def plot_misclassified(images, y_true, y_pred, path: str | os.PathLike, max_images: int = 25,
                       class_names: Sequence[str] | None = None,
                       title: str = "Misclassified images") -> Figure:
    """Save a grid of the first ``max_images`` misclassified images, titled "true 7 / pred 1".

    ``images`` (N, H, W) or (N, H, W, 1), drawn in grey, or (N, H, W, 3), drawn in colour;
    ``y_true``, ``y_pred`` labels (N,) or scores (N, K). With nothing misclassified the
    PNG says so instead.
    """
    check_int(max_images, "plot_misclassified: max_images", minimum=1)
    images = np.asarray(images)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    true, pred = to_labels(y_true, "y_true"), to_labels(y_pred, "y_pred")
    colour = images.ndim == 4 and images.shape[-1] == 3
    if not (images.ndim == 3 or colour) or not len(images) == len(true) == len(pred):
        raise ValueError(f"plot_misclassified: expected images (N, H, W), (N, H, W, 1) or (N, H, W, 3) "
                         f"and N labels "
                         f"in y_true and y_pred; got {images.shape}, {true.shape} and {pred.shape}")
    wrong = np.flatnonzero(true != pred)
    if len(wrong) == 0:
        fig = _figure(figsize=(5, 2))
        fig.text(0.5, 0.5, f"{title}\n\nNone: all {len(true):,} images are classified correctly.",
                 ha="center", va="center", fontsize=11)
        return _save(fig, path)
    shown = wrong[:max_images]
    cols = math.ceil(math.sqrt(len(shown)))
    rows = math.ceil(len(shown) / cols)
    fig = _figure(figsize=(1.6 * cols + 0.4, 1.75 * rows + 0.6))
    name = (lambda c: str(class_names[c])) if class_names is not None else str
    low, high = images.min(), images.max()  # one scale for all, so faint digits look faint
    for ax, index in zip(fig.subplots(rows, cols, squeeze=False).flat, shown, strict=False):
        if colour:
            ax.imshow((images[index] - low) / (high - low or 1))
        else:
            ax.imshow(images[index], cmap="gray", vmin=low, vmax=high)
        ax.set_title(f"true {name(true[index])} / pred {name(pred[index])}", fontsize=9)
    for ax in fig.axes:
        ax.set_axis_off()
    fig.suptitle(f"{title}: the first {len(shown)} of {len(wrong):,} "
                 f"({len(wrong) / len(true):.2%} of {len(true):,} images)")
    return _save(fig, path)


def _figure(figsize: tuple[float, float]) -> Figure:
    """A pyplot-free figure with constrained layout, so titles, labels and legends never overlap."""
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, dpi=DPI, layout="constrained")


def _save(fig: Figure, path: str | os.PathLike) -> Figure:
    """Write ``fig`` to ``path`` as a PNG, atomically; returns ``fig``."""
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=DPI))
    return fig
