"""``ConvBlock``: a Conv2D and the layers that usually follow it, as one step.

The run it takes, each part but the convolution optional::

    Conv2D -> BatchNormalization -> activation -> MaxPooling2D | AveragePooling2D
           | GlobalAveragePooling2D -> Dropout

(the activation: an ``Activation``/``ReLU`` layer, or the Conv2D's own, then before any
BatchNormalization; linear, ReLU, tanh or sigmoid). Any Conv2D: any kernel size, strides,
padding, with or without bias.

In the reference implementation the step is the layers' own passes in sequence. In the fast
implementation it computes the same function in fewer trips through memory
(:mod:`minicnn.fused.conv_block_kernels`)::

    z = im2col(x) @ W                         # Winograd, phase planes or im2col blocks, by shape
    mean, var = moments(z)                    # training with BatchNormalization: two passes
    a = act((z - center) * scale + shift)     # bias, BatchNormalization and activation in one pass
    out = pool(a) * mask

where, with BatchNormalization, ``center = mean(z)``, ``scale = gamma / sqrt(var + eps)`` and
``shift = beta`` (the bias cancels in the normalisation), else ``center = -b``, ``scale = 1``,
``shift = 0``. (After a Conv2D's own activation, BatchNormalization is one more such pass, on
``a``.) At inference BatchNormalization's constants fold into the kernel and bias
(``docs/backprop.md#batchnormalization-folded-into-the-convolution``), and the step is a
convolution with a bias. Backward runs pooling's backward, then the activation's and
BatchNormalization's in two passes (the channel sums, then ``dz``), then the convolution's,
its im2col matrix made again block by block rather than kept.

With max-pooling whose windows neither overlap nor leave gaps, and a ReLU or nothing on either
side of BatchNormalization (:attr:`ConvBlock.max_pool_into_norm`), the activations are pooled as
the last pass makes them and never stored, and the backward takes BatchNormalization's sums over
the windows' winners, the only inputs with a gradient, then makes ``dz`` in one pass. With average
pooling whose windows tile the map, or global average pooling, and no BatchNormalization
(:attr:`ConvBlock.average_pool_into_activation`), the backward makes ``dz`` and the bias's gradient
from the pooled gradient in one pass, with no dense gradient between pooling and the activation.

After a fast forward in training each layer holds the cache its own ``backward`` needs
(entries the fast implementation never makes, such as Conv2D's ``cols``, are made on first
read), so a layer-by-layer backward chain works after a fused forward.
"""

from __future__ import annotations

import numpy as np

from minicnn.fused import conv_block_kernels as fast
from minicnn.fused.composite import DeferredCache, FusedStep
from minicnn.kernels.im2col import im2col_numba
from minicnn.kernels.maxpool import maxpool_backward_numba, maxpool_forward_numba
from minicnn.layers import (
    Activation,
    AveragePooling2D,
    BatchNormalization,
    Conv2D,
    Dropout,
    GlobalAveragePooling2D,
    Layer,
    MaxPooling2D,
    ReLU,
)

POOLS = (MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D)


class ConvBlock(FusedStep):
    """One step for ``Conv2D -> [BatchNormalization] -> [activation] -> [pooling] -> [Dropout]``.

    x: (N, H, W, C) -> out as the last of its layers gives: (N, PH, PW, F) after pooling,
    (N, F) after global average pooling, (N, OH, OW, F) without pooling.
    ``input_gradient=False`` (a first layer in training) lets the fast implementation skip dx.
    """

    docs_section = "the-fast-implementation-a-convolution-and-what-follows-it"

    def __init__(self, conv: Conv2D, norm: BatchNormalization | None = None, act: Layer | None = None,
                 pool: Layer | None = None, dropout: Dropout | None = None, input_gradient: bool = True):
        self.conv, self.norm, self.act, self.pool, self.dropout = conv, norm, act, pool, dropout
        self.input_gradient = input_gradient
        self.cache: dict | None = None

    @classmethod
    def starting_at(cls, layers: list[Layer], i: int, input_gradient: bool = True) -> ConvBlock | None:
        """The longest run of the pattern that starts at ``layers[i]``; None unless ``layers[i]`` is a
        Conv2D whose activation the kernels compute."""
        conv = layers[i]
        if not isinstance(conv, Conv2D) or conv.activation not in fast.ACTIVATION_CODES:
            return None
        parts: dict[str, Layer] = {}
        j = i + 1

        def take(key: str, accepts) -> None:
            nonlocal j
            if j < len(layers) and accepts(layers[j]):
                parts[key] = layers[j]
                j += 1

        take("norm", lambda layer: isinstance(layer, BatchNormalization))
        if conv.activation in (None, "linear"):
            take("act", lambda layer: isinstance(layer, (Activation, ReLU))
                 and layer.activation in fast.ACTIVATION_CODES)
        take("pool", lambda layer: isinstance(layer, POOLS))
        take("dropout", lambda layer: isinstance(layer, Dropout))
        return cls(conv, input_gradient=input_gradient, **parts)

    @property
    def layers(self) -> list[Layer]:
        parts = (self.conv, self.norm, self.act, self.pool, self.dropout)
        return [layer for layer in parts if layer is not None]

    @property
    def activation(self) -> str | None:
        """The activation inside the step: the Conv2D's own, or the activation layer's."""
        return self.act.activation if self.act is not None else self.conv.activation

    @property
    def normalizes_before_activation(self) -> bool:
        """BatchNormalization between a linear Conv2D and the activation (the usual order), rather than
        after a Conv2D's own activation."""
        return self.norm is not None and self.conv.activation in (None, "linear")

    # ------------------------------------------------------------------ the fast implementation

    def _forward_fast(self, x: np.ndarray, training: bool) -> tuple[np.ndarray, dict]:
        conv, norm, pool = self.conv, self.norm, self.pool
        W, f = conv.params["kernel"], conv.filters
        shape = (x.shape[0], *conv.output_shape)
        bias = conv.params.get("bias", np.zeros(f, dtype=W.dtype))
        ones, zeros = np.ones(f, dtype=W.dtype), np.zeros(f, dtype=W.dtype)
        cache: dict = {"implementation": "fast", "x": x}
        # the last pass over the rows, y = act((rows - center) * scale + shift), may write over its input
        if norm is None:
            z = fast.conv_forward(x, W, conv.strides, conv.pads)
            a, last, in_place = None, (z, -bias, ones, zeros, self.activation), True
        elif self.normalizes_before_activation and not training:
            kernel, folded_bias = self.folded_weights()
            z = fast.conv_forward(x, kernel, conv.strides, conv.pads)
            a, last, in_place = None, (z, -folded_bias, ones, zeros, self.activation), True
        elif self.normalizes_before_activation:
            z = fast.conv_forward(x, W, conv.strides, conv.pads)
            center, inv_std = self._normalization_statistics(z, bias, cache)
            a, last, in_place = None, (z, center, norm.params["gamma"] * inv_std, norm.params["beta"],
                                       self.activation), False
        else:  # the Conv2D's own activation, then BatchNormalization of its output
            z = fast.conv_forward(x, W, conv.strides, conv.pads)
            a = fast.affine_activate(z, -bias, ones, zeros, self.activation, out=z)
            center, inv_std = self._normalization_statistics(a, zeros, cache if training else None)
            last, in_place = (a, center, norm.params["gamma"] * inv_std, norm.params["beta"], None), False
        rows, center, scale, shift, activation = last
        if self.pools_in_the_last_pass(training):
            y = None
            out, cache["argmax"] = fast.affine_activate_max_pool(rows.reshape(shape), center, scale, shift,
                                                                 activation, pool.pool_size)
            cache["pooled"] = out
        else:
            y_rows = fast.affine_activate(*last, out=rows if in_place else None)
            a = y_rows if a is None else a
            out = y = y_rows.reshape(shape)
            if isinstance(pool, MaxPooling2D):
                out, cache["argmax"] = maxpool_forward_numba(y, pool.pool_size, pool.strides)
            elif isinstance(pool, AveragePooling2D):
                out = fast.avgpool_forward_numba(y, pool.pool_size, pool.strides)
            elif isinstance(pool, GlobalAveragePooling2D):
                out = y.mean(axis=(1, 2))
        mask = None
        if training and self.dropout is not None:
            mask = self.dropout.draw_mask(out.shape, out.dtype)
            out = out * mask
        cache.update(a=a, y=y, mask=mask, shape=shape)
        if training:
            self._fill_layer_caches(cache, last)
        return out, cache

    def pools_in_the_last_pass(self, training: bool) -> bool:
        """Whether the forward max-pools the last pass's values as it makes them
        (:func:`~minicnn.fused.conv_block_kernels.affine_activate_max_pool`), never storing them: windows
        that neither overlap nor leave gaps after a ReLU or nothing; in training only where the backward
        needs no more than the winners (:attr:`max_pool_into_norm`)."""
        if not self._max_pool_tiles:
            return False
        if training:
            return self.max_pool_into_norm
        after_norm = self.norm is not None and not self.normalizes_before_activation  # no activation
        return after_norm or self.activation in (None, "linear", "relu")

    def folded_weights(self) -> tuple[np.ndarray, np.ndarray]:
        """The kernel and bias of the convolution with BatchNormalization's inference folded in:
        ``W * s`` and ``(b - moving_mean) * s + beta`` with ``s = gamma / sqrt(moving_variance + eps)``
        (``docs/backprop.md#batchnormalization-folded-into-the-convolution``)."""
        conv, norm = self.conv, self.norm
        W = conv.params["kernel"]
        t = W.dtype.type
        b = conv.params.get("bias", np.zeros(conv.filters, dtype=W.dtype))
        s = norm.params["gamma"] * (t(1) / np.sqrt(norm.state["moving_variance"] + t(norm.epsilon)))
        return W * s, (b - norm.state["moving_mean"]) * s + norm.params["beta"]

    def _normalization_statistics(self, rows: np.ndarray, bias: np.ndarray,
                                  cache: dict | None) -> tuple[np.ndarray, np.ndarray]:
        """``(center, inv_std)`` of BatchNormalization for its input ``rows + bias``, (M, F):
        ``x_hat = (rows - center) * inv_std``. In training (``cache`` given) and trainable, the
        batch's statistics, and the moving ones move towards them as BatchNormalization's own forward
        moves them; else the moving statistics. ``cache`` gets what the backward needs."""
        norm = self.norm
        t = rows.dtype.type
        batch_statistics = cache is not None and norm.trainable
        if batch_statistics:
            mean64, var64 = fast.channel_moments(rows)
            mean, var = (mean64 + bias).astype(t), var64.astype(t)
            m = t(norm.momentum)
            norm.state["moving_mean"] = norm.state["moving_mean"] * m + mean * (t(1) - m)
            norm.state["moving_variance"] = norm.state["moving_variance"] * m + var * (t(1) - m)
        else:
            mean, var = norm.state["moving_mean"], norm.state["moving_variance"]
        center, inv_std = mean - bias, t(1) / np.sqrt(var + t(norm.epsilon))
        if cache is not None:
            cache.update(norm_input=rows, center=center, inv_std=inv_std, batch_statistics=batch_statistics)
        return center, inv_std

    @property
    def _max_pool_tiles(self) -> bool:
        """Max-pooling whose windows neither overlap nor leave gaps (stride = size)."""
        return isinstance(self.pool, MaxPooling2D) and self.pool.pool_size == self.pool.strides

    @property
    def max_pool_into_norm(self) -> bool:
        """Whether the backward goes from the pooled gradient straight into BatchNormalization's
        (:func:`~minicnn.fused.conv_block_kernels.max_pool_norm_backward`): max-pooling with windows
        that neither overlap nor leave gaps, and a ReLU or nothing on either side of the normalisation."""
        if self.norm is None or not self._max_pool_tiles:
            return False
        if self.normalizes_before_activation:
            return self.activation in (None, "linear", "relu")
        return self.conv.activation == "relu"

    @property
    def average_pool_into_activation(self) -> bool:
        """Whether the backward goes from the pooled gradient straight into the activation's
        (:func:`~minicnn.fused.conv_block_kernels.average_pool_activation_backward`), never making the
        dense gradient between them: average pooling whose windows neither overlap nor leave gaps, or
        global average pooling, and no BatchNormalization."""
        if self.norm is not None:
            return False
        if isinstance(self.pool, AveragePooling2D):
            return self.pool.pool_size == self.pool.strides
        return isinstance(self.pool, GlobalAveragePooling2D)

    def _backward_fast(self, dout: np.ndarray, c: dict) -> tuple[np.ndarray | None, dict]:
        conv, norm, pool = self.conv, self.norm, self.pool
        shape = c["shape"]
        d = dout if c["mask"] is None else dout * c["mask"]
        if self.max_pool_into_norm:
            relu_after = self.normalizes_before_activation and self.activation == "relu"
            dz, dbeta, dgamma, bias = fast.max_pool_norm_backward(
                d, c["argmax"], pool.pool_size, c["norm_input"].reshape(shape), c["center"], c["inv_std"],
                norm.params["gamma"], c["batch_statistics"], c["pooled"] if relu_after else None,
                relu_before=not self.normalizes_before_activation)
            grads = {f"{norm.name}/gamma": dgamma, f"{norm.name}/beta": dbeta}
            return self._conv_backward(dz, bias, c, grads)
        if self.average_pool_into_activation:
            window = pool.pool_size if isinstance(pool, AveragePooling2D) else shape[1:3]
            windows = d if d.ndim == 4 else d[:, None, None, :]  # global pooling: one window, d (N, F)
            dz, db = fast.average_pool_activation_backward(windows, c["a"].reshape(shape), window,
                                                           self.activation)
            return self._conv_backward(dz, db, c, {})
        if isinstance(pool, MaxPooling2D):
            d = maxpool_backward_numba(d, c["argmax"], shape, pool.pool_size, pool.strides)
        elif isinstance(pool, AveragePooling2D):
            d = fast.avgpool_backward_numba(d, shape, pool.pool_size, pool.strides)
        elif isinstance(pool, GlobalAveragePooling2D):
            share = d * d.dtype.type(1.0 / (shape[1] * shape[2]))
            d = np.broadcast_to(share[:, None, None, :], shape)
        f = conv.filters
        dy, a = np.ascontiguousarray(d).reshape(-1, f), c["a"]
        grads: dict[str, np.ndarray] = {}
        if norm is None:
            dz, db, _ = fast.activation_norm_backward(dy, a, self.activation)
        else:
            statistics = (c["norm_input"], c["center"], c["inv_std"], norm.params["gamma"],
                          c["batch_statistics"])
            if self.normalizes_before_activation:
                dz, dbeta, dgamma = fast.activation_norm_backward(dy, a, self.activation, statistics)
                db = dz.sum(axis=0) if conv.use_bias else None
            else:
                da, dbeta, dgamma = fast.activation_norm_backward(dy, dy, None, statistics)
                dz, db, _ = fast.activation_norm_backward(da, a, self.activation)
            grads[f"{norm.name}/gamma"], grads[f"{norm.name}/beta"] = dgamma, dbeta
        return self._conv_backward(dz, db, c, grads)

    def _conv_backward(self, dz: np.ndarray, db: np.ndarray | None, c: dict,
                       grads: dict[str, np.ndarray]) -> tuple[np.ndarray | None, dict]:
        """The convolution's backward from ``dz`` (rows); ``db``: its bias's gradient, dz's column sums."""
        conv = self.conv
        dW, dx = fast.conv_backward(dz, c["x"], conv.params["kernel"], conv.strides, conv.pads,
                                    self.input_gradient)
        grads[f"{conv.name}/kernel"] = dW
        if conv.use_bias:
            grads[f"{conv.name}/bias"] = db
        return dx, grads

    def _fill_layer_caches(self, c: dict, last: tuple) -> None:
        """Give each layer the cache its own forward would have left, so its own backward works too
        (``last``: the arguments of the last pass, made again if a layer reads what it did not keep)."""
        conv, norm, act, pool = self.conv, self.norm, self.act, self.pool
        x, y = c["x"], c["y"]
        (kh, kw), conv_shape = conv.kernel_size, c["shape"]
        conv_cache = DeferredCache({"x_shape": x.shape},
                                   cols=lambda: im2col_numba(x, kh, kw, conv.strides, conv.pads))
        # the identity's backward never reads "a": a linear Conv2D before other layers keeps None
        linear = conv.activation in (None, "linear")
        conv_cache["a"] = c["a"].reshape(conv_shape) if not linear or (norm is None and act is None) else None
        conv.remember(conv_shape, conv_cache)
        if norm is not None:
            rows, center, inv_std = c["norm_input"], c["center"], c["inv_std"]
            norm.remember(conv_shape, DeferredCache(
                {"inv_std": inv_std, "batch_statistics": c["batch_statistics"]},
                x_hat=lambda: ((rows - center) * inv_std).reshape(conv_shape)))
        if act is not None:
            act.remember(conv_shape, {"a": y} if y is not None else DeferredCache(
                {}, a=lambda: fast.affine_activate(*last).reshape(conv_shape)))
        out_shape = conv_shape
        if pool is not None:
            out_shape = (conv_shape[0], *pool.output_shape)
            winners = {"argmax": c["argmax"]} if "argmax" in c else {}
            pool.remember(out_shape, {"x_shape": conv_shape, **winners})
        if self.dropout is not None:
            self.dropout.remember(out_shape, {"mask": c["mask"]})
