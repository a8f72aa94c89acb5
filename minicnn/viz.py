"""Pictures of what a network computes and learns, saved as PNG files.

- :func:`plot_filters`: the first convolution's kernels, one panel per filter.
- :func:`plot_feature_maps`: one image's activations after every layer.
- :func:`saliency` / :func:`plot_saliency`: ``|dL/dx|``, which input pixels move the loss most.
- :func:`gradient_norms` / :func:`plot_gradient_norms`: per-parameter gradient norms over training.
- :func:`maxpool_routing` / :func:`plot_maxpool_routing`: where max-pooling sends the gradient.
- :func:`confused_pairs` / :func:`plot_confused_pairs`: the most frequent mistakes, with examples.
- :func:`plot_step_graph`: one training step as a graph (micrograd's ``draw_dot`` for a CNN), from
  :func:`minicnn.trace.trace_step`: each step's output and the gradient flowing back into it,
  coloured where the gradient vanishes or explodes.

Images are NHWC, ``(N, H, W, C)``, as everywhere in minicnn. Like
:mod:`minicnn.experiments.evaluation`, every plot draws on a bare
``matplotlib.figure.Figure`` (no pyplot, so no global state and no display),
is written atomically, and is returned so that a notebook can show it or a test
can read its numbers back. matplotlib is imported inside the functions, so
``import minicnn`` stays light.
"""

from __future__ import annotations

import copy
import math
import os
import textwrap
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from minicnn.experiments.evaluation import _figure, _save, confusion_matrix, to_labels
from minicnn.layers import Conv2D, Dropout, Layer, MaxPooling2D
from minicnn.losses import to_categorical
from minicnn.models import Sequential
from minicnn.trace import GRADIENT_GROWTH, StepTrace, trace_step
from minicnn.validation import check_int

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# --------------------------------------------------------------------------- filters


def plot_filters(model_or_layer: Sequential | Conv2D, path: str | os.PathLike) -> Figure:
    """Save the kernels of a ``Conv2D`` (a model's first one), one panel per filter, as a PNG.

    The kernel has shape (KH, KW, C, F). With C = 3 each filter is drawn in
    colour (all filters on one scale); otherwise in a diverging map centred on 0
    (red positive, blue negative, one colour bar for all), with the C input
    channels of a filter side by side in its panel.
    """
    conv = _first_conv(model_or_layer)
    kernel = conv.params["kernel"]
    kh, kw, c, f = kernel.shape
    cols = min(f, 8)
    rows = math.ceil(f / cols)
    panel_width = 1.0 if c in (1, 3) else min(0.4 * c, 4.0)  # wider panels for channels side by side
    fig = _figure(figsize=(panel_width * cols + 1.5, 1.1 * rows + 0.8))
    axes = fig.subplots(rows, cols, squeeze=False)
    if c == 3:
        low, high = kernel.min(), kernel.max()
        for i, ax in enumerate(axes.flat[:f]):
            ax.imshow((kernel[..., i] - low) / (high - low or 1.0))
    else:
        limit = float(np.abs(kernel).max()) or 1.0
        for i, ax in enumerate(axes.flat[:f]):
            image = ax.imshow(_channels_side_by_side(kernel[..., i]), cmap="RdBu_r", vmin=-limit, vmax=limit)
        fig.colorbar(image, ax=axes, label="weight", shrink=0.9)
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i < f:
            ax.set_title(str(i), fontsize=8)
    channels = "" if c in (1, 3) else f"; each panel shows its {c} input channels left to right"
    fig.suptitle(f"Filters of {conv.name or conv.default_name} ({f} kernels of {kh}×{kw}×{c}{channels})")
    return _save(fig, path)


def _first_conv(model_or_layer: Sequential | Conv2D) -> Conv2D:
    if isinstance(model_or_layer, Sequential):
        conv = next((layer for layer in model_or_layer.layers if isinstance(layer, Conv2D)), None)
        if conv is None:
            raise ValueError("plot_filters: the model has no Conv2D layer")
    elif isinstance(model_or_layer, Conv2D):
        conv = model_or_layer
    else:
        raise TypeError(f"plot_filters: expected a Sequential model or a Conv2D layer; "
                        f"got {type(model_or_layer).__name__}")
    if "kernel" not in conv.params:
        raise ValueError(f"plot_filters: {conv.label()} is not built yet (no kernel); "
                         "give the model an Input layer or call it on data first")
    return conv


def _channels_side_by_side(kernel: np.ndarray) -> np.ndarray:
    """(KH, KW, C) -> (KH, C*KW + C - 1): the channels left to right, a blank column between them."""
    kh, kw, c = kernel.shape
    tiled = np.full((kh, c * (kw + 1) - 1), np.nan)
    for ch in range(c):
        tiled[:, ch * (kw + 1):ch * (kw + 1) + kw] = kernel[..., ch]
    return tiled


# --------------------------------------------------------------------------- feature maps


def feature_maps(model: Sequential, image: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """``(title, output)`` for the input and every layer's output on one image, dropout off.

    image: (H, W, C) or (1, H, W, C). Each output keeps its batch axis of 1.
    A layer that leaves the values unchanged (``Dropout`` at inference,
    ``Flatten``) gets no entry of its own: its name is added to the previous title.
    """
    x = _check_images(model, image, "plot_feature_maps", "image")
    if len(x) != 1:
        raise ValueError(f"plot_feature_maps: image must be one image (H, W, C) or (1, H, W, C); "
                         f"got {len(x)} images")
    maps = [("input", x)]
    for layer in model.layers:
        with model.implementation_context():
            out = layer.forward(x, training=False)
        if out.size == x.size and np.array_equal(out.ravel(), x.ravel()):
            title, previous = maps[-1]
            maps[-1] = (f"{title} → {layer.name} (same values)", previous)
        else:
            maps.append((f"{layer.name} ({_describe(layer)})", out))
        x = out
    return maps


def _describe(layer: Layer) -> str:
    activation = getattr(layer, "activation", None)
    return type(layer).__name__ + (f", {activation}" if activation not in (None, "linear") else "")


def plot_feature_maps(model: Sequential, image: np.ndarray, path: str | os.PathLike,
                      max_maps: int = 16) -> Figure:
    """Save one image's activations after every layer (:func:`feature_maps`) as a PNG.

    One row per layer: for images (1, H, W, C) the first ``max_maps``
    channels on one colour scale with its colour bar; for vectors (1, D) a bar
    per value (class probabilities for a final softmax).
    """
    maps = feature_maps(model, image)
    heights = [1.6 if out.ndim == 4 else 1.9 for _, out in maps]
    fig = _figure(figsize=(1.05 * max_maps + 1.6, sum(heights) + 0.6))
    for subfig, (title, out) in zip(fig.subfigures(len(maps), 1, height_ratios=heights), maps,
                                    strict=True):
        if out.ndim == 4:
            _draw_maps(subfig, out[0], max_maps, title)
        else:
            _draw_vector(subfig, out[0], title, is_output=out is maps[-1][1])
    fig.suptitle("Feature maps of one image through every layer (inference: dropout off)")
    return _save(fig, path)


def _draw_maps(subfig, maps: np.ndarray, max_maps: int, title: str) -> None:
    """The first ``max_maps`` channels of ``maps`` (H, W, C), one panel each, one colour scale."""
    h, w, c = maps.shape
    shown = min(c, max_maps)
    axes = subfig.subplots(1, max_maps)
    low, high = float(maps[..., :shown].min()), float(maps[..., :shown].max())
    cmap = "gray" if title.startswith("input") else "viridis"
    for ch, ax in enumerate(axes):
        ax.set_axis_off()
        if ch < shown:
            image = ax.imshow(maps[..., ch], cmap=cmap, vmin=low, vmax=high)
            if c > 1:
                ax.set_title(f"ch {ch}", fontsize=7)
    subfig.colorbar(image, ax=axes, shrink=0.9, aspect=10)
    more = f", channels 0–{shown - 1} of {c}" if shown < c else ""
    subfig.suptitle(f"{title}: {h}×{w}×{c}{more}", fontsize=10, x=0.01, ha="left")


def _draw_vector(subfig, values: np.ndarray, title: str, is_output: bool) -> None:
    ax = subfig.subplots()
    ax.bar(np.arange(len(values)), values, color="C0" if not is_output else "C1", width=0.8)
    ax.set_xlim(-0.6, len(values) - 0.4)
    ax.set_ylabel("probability" if is_output else "value")
    ax.set_xlabel("class" if is_output else "unit")
    if is_output:
        ax.set_xticks(np.arange(len(values)))
        ax.set_ylim(0, 1.15)
        best = int(values.argmax())
        ax.annotate(f"{values[best]:.3f}", (best, values[best]), ha="center", va="bottom", fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    subfig.suptitle(f"{title}: {len(values)} values", fontsize=10, x=0.01, ha="left")


# --------------------------------------------------------------------------- saliency


def saliency(model: Sequential, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``|dL_n/dx_n|`` for each image: how much each input value moves that image's loss.

    x: (N, H, W, C); y: labels (N,) or one-hot (N, K). Returns an array of
    x's shape. ``L_n`` is image n's cross-entropy with dropout off (as at
    inference). ``model.compute_loss_and_gradients`` differentiates the *mean*
    loss ``L = (1/N) Σ_n L_n``, and ``x_n`` enters ``L_n`` only, so
    ``dL_n/dx_n = N · dL/dx_n``. It runs on a copy of the model without its
    Dropout layers (the identity at inference), so the model's own layers,
    caches and gradients are left untouched.
    """
    x = _check_images(model, x, "saliency", "x")
    y_one_hot = _one_hot(model, y, len(x), "saliency")
    inference = Sequential([copy.deepcopy(layer) for layer in model.layers if not isinstance(layer, Dropout)])
    inference.build((None, *model.input_shape))
    inference.implementation = model.implementation  # the implementation the model runs
    _, _, dx = inference.compute_loss_and_gradients(x, y_one_hot)
    return np.abs(dx) * len(x)


def plot_saliency(model: Sequential, x: np.ndarray, y: np.ndarray, path: str | os.PathLike,
                  class_names: Sequence[str] | None = None) -> Figure:
    """Save each image of ``x`` above its saliency map (:func:`saliency`) as a PNG.

    x: (N, H, W, C) with N at most 16; y: labels (N,) or one-hot (N, K). Each
    map is scaled to its own maximum (printed above it), so the colour bar
    reads "fraction of this image's largest ``|dL/dx|``"; with C > 1 the map is the
    maximum over channels.
    """
    x = _check_images(model, x, "plot_saliency", "x")
    if len(x) > 16:
        raise ValueError(f"plot_saliency: at most 16 images fit one figure; got {len(x)}")
    labels = to_labels(_one_hot(model, y, len(x), "plot_saliency"))
    maps = saliency(model, x, y).max(axis=-1)
    probs = model.predict(x)
    name = (lambda k: str(class_names[k])) if class_names is not None else str
    fig = _figure(figsize=(1.7 * len(x) + 1.2, 4.2))
    axes = fig.subplots(2, len(x), squeeze=False)
    for n in range(len(x)):
        pred = int(probs[n].argmax())
        top, bottom = axes[0, n], axes[1, n]
        top.imshow(x[n] if x.shape[-1] == 3 else x[n, ..., 0], cmap="gray")
        top.set_title(f"label {name(labels[n])}\npred {name(pred)} ({probs[n, pred]:.2f})", fontsize=9,
                      color="black" if pred == labels[n] else "red")
        peak = float(maps[n].max())
        image = bottom.imshow(maps[n] / (peak or 1.0), cmap="inferno", vmin=0, vmax=1)
        bottom.set_title(f"max {peak:.2g}", fontsize=9)
    for ax in axes.flat:
        ax.set_axis_off()
    fig.colorbar(image, ax=axes[1, :], label="|∂L/∂x| / max", shrink=0.9)
    fig.suptitle("Saliency: which pixels change each image's loss the most")
    return _save(fig, path)


def _one_hot(model: Sequential, y: np.ndarray, n: int, verb: str) -> np.ndarray:
    y = np.asarray(y)
    k = model.output_shape[-1]
    if len(y) != n:
        raise ValueError(f"{verb}: x has {n} images but y has {len(y)} labels")
    if y.ndim == 1:
        return to_categorical(y, k, dtype=model.dtype)
    if y.shape != (n, k):
        raise ValueError(f"{verb}: expected y as labels (N,) or one-hot (N, {k}); got {y.shape}")
    return y.astype(model.dtype)


def _check_images(model: Sequential, x: np.ndarray, verb: str, name: str) -> np.ndarray:
    """``x`` as a batch ``(N, *input_shape)`` in the model's dtype; a single image gets a batch axis."""
    if not model.built:
        raise ValueError(f"{verb}: the model is not built yet; start it with an Input layer "
                         "or call build((None, *input_shape))")
    x = np.asarray(x)
    if x.shape == model.input_shape:
        x = x[None]
    if x.shape[1:] != model.input_shape:
        raise ValueError(f"{verb}: expected {name} of shape {(None, *model.input_shape)} or "
                         f"{model.input_shape}; got {x.shape}")
    return x.astype(model.dtype)


# --------------------------------------------------------------------------- gradient norms


def gradient_norms(model: Sequential) -> dict[str, float]:
    """``{"conv2d/kernel": ‖grad‖₂, ...}`` for every parameter, from the last backward pass.

    Call it after a training step (``model.train_on_batch``) and keep one dict
    per step; :func:`plot_gradient_norms` draws the list.
    """
    norms = {}
    for layer in model.layers:
        for key in layer.params:
            if key not in layer.grads:
                raise RuntimeError(f"gradient_norms: {layer.label()} has no gradient for {key!r}; "
                                   "call it after a training step (e.g. model.train_on_batch)")
            norms[f"{layer.name}/{key}"] = float(np.linalg.norm(layer.grads[key]))
    return norms


def plot_gradient_norms(records: Sequence[Mapping[str, float]], path: str | os.PathLike,
                        title: str = "Gradient norms during training") -> Figure:
    """Save each parameter's gradient norm per step (one :func:`gradient_norms` dict per step) as a PNG.

    Logarithmic y axis; one colour per layer, kernels solid and biases dashed.
    Every record must name the same parameters.
    """
    if not records:
        raise ValueError("plot_gradient_norms: records is empty; pass one gradient_norms(model) per step")
    names = list(records[0])
    for step, record in enumerate(records):
        if set(record) != set(names):
            raise ValueError(f"plot_gradient_norms: record {step} names {sorted(record)}; "
                             f"record 0 names {sorted(names)}")
    layers = list(dict.fromkeys(name.split("/")[0] for name in names))
    steps = np.arange(1, len(records) + 1)
    fig = _figure(figsize=(9, 4.5))
    ax = fig.add_subplot()
    for name in names:
        layer, _, key = name.partition("/")
        ax.plot(steps, [record[name] for record in records], color=f"C{layers.index(layer) % 10}",
                ls="--" if key == "bias" else "-", lw=1.3, label=name)
    ax.set_yscale("log")
    ax.set_xlabel("Training step")
    ax.set_ylabel("‖∂L/∂θ‖₂ (log scale)")
    ax.grid(alpha=0.3, which="both")
    ax.set_title(title)
    fig.legend(loc="outside right center", fontsize=8)
    return _save(fig, path)


# --------------------------------------------------------------------------- max-pool routing

ROUTING_X = np.array([[1.0, 3.0, 2.0, 0.0],
                      [4.0, 2.0, 1.0, 5.0],
                      [0.0, 6.0, 7.0, 7.0],
                      [2.0, 1.0, 3.0, 1.0]])
ROUTING_DOUT = np.array([[0.1, 0.2],
                         [0.3, 0.4]])


def maxpool_routing(x: np.ndarray = ROUTING_X, dout: np.ndarray = ROUTING_DOUT, pool_size: int = 2,
                    strides: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(out, argmax, dx)`` of ``MaxPooling2D(pool_size, strides)`` on one (H, W) channel.

    x: (H, W); dout: (OH, OW), the upstream gradient. ``argmax`` (OH, OW) is
    each window's winner as ``di * pool_size + dj``; ``dx`` (H, W) is the
    layer's backward pass: each ``dout`` entry added at its window's winner.
    """
    layer = MaxPooling2D(pool_size, strides)
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"maxpool_routing: expected x of shape (H, W); got {x.shape}")
    out = layer.forward(x[None, :, :, None], training=True)
    dout = np.asarray(dout, dtype=np.float64)
    if dout.shape != out.shape[1:3]:
        raise ValueError(f"maxpool_routing: expected dout of shape {out.shape[1:3]} (the pooled "
                         f"shape); got {dout.shape}")
    dx = layer.backward(dout[None, :, :, None])
    return out[0, ..., 0], layer.cache["argmax"][0, ..., 0], dx[0, ..., 0]


def plot_maxpool_routing(path: str | os.PathLike, x: np.ndarray = ROUTING_X,
                         dout: np.ndarray = ROUTING_DOUT, pool_size: int = 2,
                         strides: int | None = None) -> Figure:
    """Save how max-pooling routes the gradient (:func:`maxpool_routing`), as four grids in a PNG.

    ``x`` with each window in its own colour and its maximum boxed, the pooled
    ``out``, the upstream gradient ``dout``, and ``dx``: each ``dout`` value
    lands on its window's maximum, every other entry gets 0. The default 4×4
    input has a tie (7, 7) in its last window: the first maximum in row-major
    order wins.
    """
    out, argmax, dx = maxpool_routing(x, dout, pool_size, strides)
    stride = pool_size if strides is None else strides
    x = np.asarray(x, dtype=np.float64)
    windows = [(i, j) for i in range(out.shape[0]) for j in range(out.shape[1])]
    winners = {(i, j): (i * stride + argmax[i, j] // pool_size, j * stride + argmax[i, j] % pool_size)
               for i, j in windows}
    fig = _figure(figsize=(12, 3.6))
    ratios = [x.shape[1], out.shape[1], out.shape[1], x.shape[1]]
    ax_x, ax_out, ax_dout, ax_dx = fig.subplots(1, 4, width_ratios=ratios)
    _grid(ax_x, x, f"x: input {x.shape[0]}×{x.shape[1]}, {pool_size}×{pool_size} windows")
    _grid(ax_out, out, "out = max of each window")
    _grid(ax_dout, np.asarray(dout, dtype=np.float64), "dout: upstream gradient")
    _grid(ax_dx, dx, "dx: dout lands on each maximum")
    for k, (i, j) in enumerate(windows):
        color = f"C{k % 10}"
        r, q = winners[(i, j)]
        _shade(ax_x, i * stride, j * stride, pool_size, color, alpha=0.12)
        _shade(ax_dx, i * stride, j * stride, pool_size, color, alpha=0.12)
        for ax in (ax_out, ax_dout):
            _shade(ax, i, j, 1, color, alpha=0.35)
        for ax in (ax_x, ax_dx):
            _shade(ax, r, q, 1, color, alpha=0.45, edge=True)
    ties = [f"tie in window ({i}, {j}): {count} × {out[i, j]:g}, the first one wins" for i, j in windows
            if (count := int((_window(x, i, j, stride, pool_size) == out[i, j]).sum())) > 1]
    ax_x.set_xlabel("\n".join(ties), fontsize=9)
    fig.suptitle(f"Max-pooling routes each gradient to its window's maximum "
                 f"(pool {pool_size}, stride {stride}; on a tie the first maximum, row-major, wins)")
    return _save(fig, path)


def _window(x: np.ndarray, i: int, j: int, stride: int, pool_size: int) -> np.ndarray:
    return x[i * stride:i * stride + pool_size, j * stride:j * stride + pool_size]


def _grid(ax: Axes, values: np.ndarray, title: str) -> None:
    """A table of numbers: one square cell per entry, zeros in grey."""
    rows, cols = values.shape
    for (r, q), value in np.ndenumerate(values):
        ax.text(q, r, f"{value:g}", ha="center", va="center", fontsize=12,
                color="0.6" if value == 0 else "black", fontweight="normal" if value == 0 else "bold")
    ax.set_xlim(-0.5, cols - 0.5)
    ax.set_ylim(rows - 0.5, -0.5)
    ax.set_aspect("equal")
    ax.set_xticks(np.arange(cols + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(rows + 1) - 0.5, minor=True)
    ax.grid(which="minor", color="0.75")
    ax.tick_params(which="both", length=0, labelbottom=False, labelleft=False)
    ax.set_title(title, fontsize=10)


def _shade(ax: Axes, r: int, q: int, size: int, color: str, alpha: float, edge: bool = False) -> None:
    from matplotlib.patches import Rectangle

    ax.add_patch(Rectangle((q - 0.5, r - 0.5), size, size, facecolor=color, alpha=alpha, lw=0))
    if edge:
        ax.add_patch(Rectangle((q - 0.45, r - 0.45), size - 0.1, size - 0.1, fill=False,
                               edgecolor=color, lw=2.5))


# --------------------------------------------------------------------------- confused pairs


def confused_pairs(y_true, y_pred, top: int = 5, num_classes: int | None = None
                   ) -> list[tuple[int, int, int]]:
    """The ``top`` largest off-diagonal confusion counts as ``(true, predicted, count)``, largest first.

    ``y_true``, ``y_pred``: labels (N,) or scores (N, K). Pairs are ordered
    (a 4 read as 9 is not a 9 read as 4); equal counts go by (true, predicted);
    pairs that never occur are left out, so fewer than ``top`` may come back.
    """
    check_int(top, "confused_pairs: top", minimum=1)
    cm = confusion_matrix(y_true, y_pred, num_classes).copy()
    np.fill_diagonal(cm, 0)
    pairs = sorted(((int(cm[i, j]), i, j) for i, j in zip(*np.nonzero(cm), strict=True)),
                   key=lambda p: (-p[0], p[1], p[2]))
    return [(i, j, count) for count, i, j in pairs[:top]]


def plot_confused_pairs(x: np.ndarray, y_true, y_pred_or_probs, path: str | os.PathLike,
                        top: int = 5, examples: int = 6,
                        class_names: Sequence[str] | None = None) -> Figure:
    """Save the ``top`` most-confused (true, predicted) pairs, each with up to ``examples`` images.

    x: images (N, H, W), (N, H, W, 1) or (N, H, W, 3); ``y_true`` labels or
    one-hot; ``y_pred_or_probs`` labels (N,) or probabilities (N, K) (then
    each image shows the probability it got for the wrong class). One row per
    pair, from :func:`confused_pairs`, the first images of that pair in order.
    """
    x = np.asarray(x)
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    true, pred = to_labels(y_true, "y_true"), to_labels(y_pred_or_probs, "y_pred_or_probs")
    if x.ndim not in (3, 4) or not len(x) == len(true) == len(pred):
        raise ValueError(f"plot_confused_pairs: expected images (N, H, W[, C]) and N labels in y_true "
                         f"and y_pred_or_probs; got {x.shape}, {true.shape} and {pred.shape}")
    check_int(examples, "plot_confused_pairs: examples", minimum=1)
    pairs = confused_pairs(y_true, y_pred_or_probs, top)
    name = (lambda k: str(class_names[k])) if class_names is not None else str
    if not pairs:
        fig = _figure(figsize=(5, 2))
        fig.text(0.5, 0.5, f"Most-confused pairs\n\nNone: all {len(true):,} images are classified correctly.",
                 ha="center", va="center", fontsize=11)
        return _save(fig, path)
    probs = np.asarray(y_pred_or_probs) if np.ndim(y_pred_or_probs) == 2 else None
    low, high = x.min(), x.max()
    fig = _figure(figsize=(1.5 * examples + 1.2, 1.75 * len(pairs) + 0.6))
    for subfig, (i, j, count) in zip(fig.subfigures(len(pairs), 1), pairs, strict=True):
        axes = subfig.subplots(1, examples, squeeze=False)[0]
        for ax, index in zip(axes, np.flatnonzero((true == i) & (pred == j))[:examples], strict=False):
            ax.imshow(x[index], cmap="gray", vmin=low, vmax=high)
            if probs is not None:
                ax.set_title(f"p({name(j)}) = {probs[index, j]:.2f}", fontsize=8)
        for ax in axes:
            ax.set_axis_off()
        subfig.suptitle(f"true {name(i)} → predicted {name(j)}: {count:,} images", fontsize=10,
                        x=0.01, ha="left")
    fig.suptitle(f"The {len(pairs)} most-confused class pairs ({int((true != pred).sum()):,} errors "
                 f"in {len(true):,} images)")
    return _save(fig, path)


# --------------------------------------------------------------------------- one step as a graph

STEP_GRAPH_COLORMAP = "coolwarm"
"""Blue where the gradient has shrunk on its way back from the loss, red where it has grown."""


def plot_step_graph(model: Sequential, x: np.ndarray, y: np.ndarray, path: str | os.PathLike) -> Figure:
    """Save one training step as a graph, as a PNG: micrograd's ``draw_dot`` for a CNN.

    The step is :func:`minicnn.trace.trace_step`'s (on a copy: the model is untouched); x and y
    as there. One node per step of the model (a layer, or a fused block in the fast
    implementation), from the input at the top to the loss at the bottom. Each node shows the
    step's output (its shape, mean and std, the fraction of zeros), the norm of the gradient
    flowing back into it, ``‖dL/d out‖``, and the norm of each of its parameters' gradients. Its
    colour is that gradient's norm relative to ``‖dL/dz‖``, the gradient the loss starts the
    backward pass with, on a log scale: blue where it has shrunk on the way back, red where it
    has grown, the deepest blue or red (and the word VANISHING or EXPLODING) beyond a factor of
    :data:`minicnn.trace.GRADIENT_GROWTH`, where ``trace_step`` warns too; its warnings are printed
    under the graph.
    """
    return _draw_step_graph(trace_step(model, x, y), path)


def _draw_step_graph(step: StepTrace, path: str | os.PathLike) -> Figure:
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    limit = math.log10(GRADIENT_GROWTH)
    norm, cmap = Normalize(-limit, limit, clip=True), colormaps[STEP_GRAPH_COLORMAP]
    start = step.steps[-1].gradient.norm  # ‖dL/dz‖, where the backward pass starts
    nodes = [("input", _input_text(step), step.input_gradient.norm)]
    nodes += [(record.name, _step_text(record, [p for p in step.params
                                                if p.name.split("/")[0] in record.layer_names]),
               record.gradient.norm) for record in step.steps]
    fig = _figure(figsize=(8.5, 1.25 * (len(nodes) + 1) + 0.6))
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.set_xlim(0, 1)
    ax.set_ylim(-len(nodes) - 0.5, 0.5)
    for i, (name, text, grad_norm) in enumerate(nodes):
        level = _relative_level(grad_norm, start)
        flag = "" if abs(level) < limit else ("\nVANISHING gradient" if level < 0 else "\nEXPLODING gradient")
        _node(ax, -i, text + flag, cmap(norm(level)), f"node:{name}")
        # forward: the output goes down to the next node; backward: dL/d out comes up, in the node's colour
        ax.annotate("", xy=(0.47, -i - 0.62), xytext=(0.47, -i - 0.38),
                    arrowprops={"arrowstyle": "->", "color": "0.3"})
        ax.annotate("", xy=(0.53, -i - 0.38), xytext=(0.53, -i - 0.62),
                    arrowprops={"arrowstyle": "->", "color": cmap(norm(level)), "lw": 2})
    _node(ax, -len(nodes), _loss_text(step, start), cmap(norm(0.0)), "node:loss")
    fig.colorbar(ScalarMappable(norm, cmap), ax=ax, shrink=0.6,
                 label="log₁₀ ‖dL/d out‖ / ‖dL/dz‖   (blue: shrunk on the way back; red: grown)")
    fig.suptitle(f"One training step ({step.implementation} implementation)\nthe forward pass runs down "
                 "(grey arrows), the gradients flow back up (coloured arrows)")
    if step.warnings:
        fig.supxlabel("\n".join(textwrap.fill(f"trace_step warns: {w}", 110) for w in step.warnings),
                      fontsize=8, ha="left", x=0.02)
    return _save(fig, path)


def _node(ax: Axes, y: float, text: str, color, gid: str) -> None:
    ax.text(0.5, y, text, ha="center", va="center", fontsize=7.5, family="monospace", gid=gid,
            bbox={"boxstyle": "round,pad=0.5", "facecolor": color, "edgecolor": "0.3"})


def _relative_level(grad_norm: float, start: float) -> float:
    """``log10(grad_norm / start)``: -inf for a gradient of exactly 0, +inf for a non-finite one."""
    if not math.isfinite(grad_norm) or (start == 0 and grad_norm > 0):
        return math.inf
    if grad_norm == 0:
        return -math.inf
    return math.log10(grad_norm / start)


def _input_text(step: StepTrace) -> str:
    s = step.input
    return f"input  {s.shape}  mean {s.mean:.3g}  std {s.std:.3g}\n‖dL/dx‖ {step.input_gradient.norm:.3e}"


def _step_text(record, params: list) -> str:
    s = record.output
    shows = "logits z (before softmax)" if record.logits else "out"
    lines = [f"{record.name}  [{record.kind}]",
             f"{shows} {s.shape}  mean {s.mean:.3g}  std {s.std:.3g}  zeros {s.zeros:.0%}",
             f"‖dL/d out‖ {record.gradient.norm:.3e}"]
    lines += [f"‖dL/d {p.name}‖ {p.grad_norm:.3e}" + (f"  (‖W‖ {p.norm:.2e})" if p.norm > 0 else "  (W = 0)")
              for p in params]
    return "\n".join(lines)


def _loss_text(step: StepTrace, start: float) -> str:
    penalty = f" (data {step.loss - step.penalty:.4f} + penalty {step.penalty:.4f})" if step.penalty else ""
    z = "logits" if step.steps[-1].logits else "output"
    return (f"loss {step.loss:.4f}{penalty}   ln K = {step.ln_k:.4f}\n"
            f"‖dL/dz‖ {start:.3e}   (z: the {z} of {step.steps[-1].name})")
