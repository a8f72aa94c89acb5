"""Conv2D(relu) -> MaxPooling2D -> Dropout as one step: the same numbers in fewer passes.

In the reference implementation the step is the three layers' own forward and backward
passes in sequence. In the fast implementation it computes the same function in another
order. Max-pooling commutes with adding a per-channel bias and with ReLU (neither reorders
values; ties aside, see ``docs/backprop.md#the-fast-implementation-one-step-for-conv2d--maxpool2d--dropout``),
so the step pools the raw
correlation ``xw = im2col(x) @ W`` first and applies bias, ReLU and the dropout mask to
a quarter as many values, in one pass::

    pooled, argmax = maxpool(xw)           # conv_pool_forward_numba
    a   = relu(pooled + b)                 # bias_relu_dropout_numba
    out = a * mask

Backward mirrors it: ``d = dout * mask * (a > 0)``, then ``dW`` and ``dx`` from the
window maxima only (``conv_pool_backward_numba``). ``tests/fused/test_conv_pool.py`` proves
the two implementations equal to 1e-10 in float64.

The block is a step like a layer (:class:`~minicnn.layers.base.Step`): the same contract,
with its layers' parameters under the names the model gives them (``"conv2d/kernel"``).
After a fast step the layers are in a valid state: the conv's ``grads`` are filled (the
block's ``set_grads`` hands each layer its own), and each layer's ``cache`` holds what its
own ``backward`` needs, so a layer-by-layer backward chain works after a fused forward.
Caches the fast implementation never computes (Conv2D's ``cols`` and full-size activation) are made
on first read only.
"""

from __future__ import annotations

import numpy as np

from minicnn.activations import relu, relu_backward
from minicnn.fused import conv_pool_kernels as fast
from minicnn.fused.composite import DeferredCache, FusedStep
from minicnn.kernels.im2col import im2col_numba
from minicnn.kernels.maxpool import maxpool_backward_numba
from minicnn.layers import Conv2D, Dropout, Layer, MaxPooling2D


class ConvPoolBlock(FusedStep):
    """One step for ``Conv2D(activation="relu") -> MaxPooling2D -> Dropout`` (dropout optional).

    Only for a Conv2D with a bias and equal strides on both axes; the planner gives other Conv2D layers
    to :class:`~minicnn.fused.conv_block.ConvBlock`.

    x: (N, H, W, C) -> out: (N, PH, PW, F), as the layers would give.
    ``input_gradient=False`` (a first layer in training) lets the fast implementation skip dx.
    """

    docs_section = "the-fast-implementation-one-step-for-conv2d--maxpool2d--dropout"
    activation = "relu"
    """The activation inside the step; on the fast path its cache keeps the output (pooled) as ``a``."""

    def __init__(self, conv: Conv2D, pool: MaxPooling2D, dropout: Dropout | None = None,
                 input_gradient: bool = True):
        self.conv, self.pool, self.dropout = conv, pool, dropout
        self.input_gradient = input_gradient
        self.cache: dict | None = None

    @classmethod
    def starting_at(cls, layers: list[Layer], i: int, input_gradient: bool = True) -> ConvPoolBlock | None:
        """The block that starts at ``layers[i]``, or None if the fusable pattern does not start there."""
        conv = layers[i]
        if not (isinstance(conv, Conv2D) and conv.activation == "relu" and i + 1 < len(layers)
                and isinstance(layers[i + 1], MaxPooling2D)):
            return None
        if not conv.use_bias or conv.strides[0] != conv.strides[1]:
            return None  # the fused kernels take a bias and one stride: such a Conv2D goes to ConvBlock
        after = layers[i + 2] if i + 2 < len(layers) else None
        return cls(conv, layers[i + 1], after if isinstance(after, Dropout) else None, input_gradient)

    @property
    def layers(self) -> list[Layer]:
        return [self.conv, self.pool] + ([self.dropout] if self.dropout else [])

    # ------------------------------------------------------------------ the fast implementation

    def _forward_fast(self, x: np.ndarray, training: bool) -> tuple[np.ndarray, dict]:
        conv, pool = self.conv, self.pool
        W, b = conv.params["kernel"], conv.params["bias"]
        geometry = (conv.strides[0], conv.pads, pool.pool_size, pool.strides)
        pooled, argmax = fast.conv_pool_forward_numba(x, W, *geometry)
        if training and self.dropout is not None:
            mask = self.dropout.draw_mask(pooled.shape, pooled.dtype)
            out, a = fast.bias_relu_dropout_numba(pooled, b, mask)
        else:
            mask = None
            out = a = relu(pooled + b)
        if training:
            self._fill_layer_caches(x, argmax, a, mask)
        return out, {"implementation": "fast", "x": x, "geometry": geometry, "argmax": argmax, "a": a,
                     "mask": mask}

    def _backward_fast(self, dout: np.ndarray, c: dict) -> tuple[np.ndarray | None, dict]:
        if c["mask"] is None:
            d = relu_backward(dout, c["a"])
            db = d.sum(axis=(0, 1, 2))
        else:
            d, db = fast.relu_dropout_backward_numba(dout, c["a"], c["mask"])
        dW, dx = fast.conv_pool_backward_numba(d, c["argmax"], c["x"], self.conv.params["kernel"],
                                               *c["geometry"], self.input_gradient)
        conv = self.conv.name
        return dx, {f"{conv}/kernel": dW, f"{conv}/bias": db}

    def _fill_layer_caches(self, x: np.ndarray, argmax: np.ndarray, a: np.ndarray,
                           mask: np.ndarray | None) -> None:
        """Give each layer the cache its own forward would have left, so its own backward works too.

        The pool's winners were found on ``xw`` rather than on ``relu(xw + b)``: they differ only in
        windows whose values ReLU all set to 0, where the gradient is 0 either way.
        """
        conv, pool = self.conv, self.pool
        (kh, kw), conv_shape = conv.kernel_size, (x.shape[0], *conv.output_shape)
        pool.remember(a.shape, {"argmax": argmax, "x_shape": conv_shape})
        if self.dropout is not None:
            self.dropout.remember(a.shape, {"mask": mask})
        conv.remember(conv_shape, DeferredCache(
            {"x_shape": x.shape},
            cols=lambda: im2col_numba(x, kh, kw, conv.strides, conv.pads),
            # ReLU's backward reads only where a > 0, and only the pool's winners get gradient:
            # the activations at the winners (0 elsewhere; summed where windows overlap) are all it needs.
            a=lambda: maxpool_backward_numba(a, argmax, conv_shape, pool.pool_size, pool.strides),
        ))

