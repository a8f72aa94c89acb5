"""Conv2D(relu) -> MaxPooling2D -> Dropout run as one step: the same numbers in fewer passes.

The layer-by-layer path computes ``Dropout(MaxPool(relu(conv(x) + b)))``. Max-pooling
commutes with adding a per-channel bias and with ReLU (both never reorder values),
so the fused step pools the raw correlation ``xw = cols @ W`` first and applies
bias, ReLU and the dropout mask to a quarter as many values, in one pass::

    pooled, argmax = maxpool(xw)
    a   = relu(pooled + b)
    out = a * mask

Backward mirrors it: ``d = dout * mask * (a > 0)``, then ``dW`` and ``dx``
from the window maxima only (``kernels.pooled_conv_backward_numba``). Only the
order of the sums differs from the layer-by-layer path: ``tests/test_fused.py``
checks that the two agree to 1e-10 in float64, window positions included.

The layers keep their parameters and gradients: a fused step reads
``conv.params`` and writes ``conv.grads``, so the optimizer and ``summary``
see the same layers either way. The model uses fused steps only with the
Numba kernels (:func:`minicnn.kernels.set_backend`); the NumPy backend runs
every layer on its own, for reading and stepping through.
"""

from __future__ import annotations

import numpy as np

from minicnn import kernels
from minicnn.activations import relu, relu_backward
from minicnn.conv_pool_blocked import conv_pool_forward_blocked
from minicnn.layers import Conv2D, Dropout, Layer, MaxPooling2D


class ConvPoolBlock:
    """One step for ``Conv2D(activation="relu") -> MaxPooling2D -> Dropout`` (dropout optional).

    x: (N, H, W, C) -> out: (N, PH, PW, F), as the layers would give.
    ``input_gradient=False`` (a first layer in training) skips computing dx.
    """

    def __init__(self, conv: Conv2D, pool: MaxPooling2D, dropout: Dropout | None = None,
                 input_gradient: bool = True):
        self.conv, self.pool, self.dropout = conv, pool, dropout
        self.input_gradient = input_gradient
        self._cache: dict | None = None

    @property
    def layers(self) -> list[Layer]:
        return [self.conv, self.pool] + ([self.dropout] if self.dropout else [])

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        conv, pool = self.conv, self.pool
        conv._check_input(x)
        W, b = conv.params["kernel"], conv.params["bias"]
        geometry = (conv.strides, conv._pads(*x.shape[1:3]), pool.pool_size, pool.strides)
        if W[..., 0].size <= kernels.DIRECT_MAX_WINDOW:  # direct; larger windows by im2col + BLAS
            pooled, argmax = kernels.conv_pool_forward_numba(x, W, *geometry)
        else:
            pooled, argmax = conv_pool_forward_blocked(x, W, *geometry)
        if training and self.dropout is not None:
            mask = self.dropout.draw_mask(pooled.shape, pooled.dtype)
            out, a = kernels.bias_relu_dropout_numba(pooled, b, mask)
        else:
            mask = None
            out = a = relu(pooled + b)
        if training:
            self._cache = {"x": x, "geometry": geometry, "argmax": argmax, "a": a, "mask": mask}
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray | None:
        if self._cache is None:
            raise RuntimeError("ConvPoolBlock: backward() needs a preceding forward(x, training=True)")
        c = self._cache
        if c["mask"] is None:
            d = relu_backward(dout, c["a"])
        else:
            d = kernels.relu_dropout_backward_numba(dout, c["a"], c["mask"])
        dW, dx = kernels.pooled_conv_backward_numba(d, c["argmax"], c["x"], self.conv.params["kernel"],
                                                    *c["geometry"], self.input_gradient)
        self.conv.grads = {"kernel": dW, "bias": d.sum(axis=(0, 1, 2))}
        return dx


def _block_at(layers: list[Layer], i: int, input_gradient: bool) -> ConvPoolBlock | None:
    """The fused block starting at ``layers[i]``, or None if no run of fusable layers starts there."""
    conv = layers[i]
    if not (isinstance(conv, Conv2D) and conv.activation == "relu" and i + 1 < len(layers)
            and isinstance(layers[i + 1], MaxPooling2D)):
        return None
    after = layers[i + 2] if i + 2 < len(layers) else None
    return ConvPoolBlock(conv, layers[i + 1], after if isinstance(after, Dropout) else None,
                         input_gradient=input_gradient or i > 0)


def plan(layers: list[Layer], input_gradient: bool = True) -> list:
    """The steps that run ``layers``: fused blocks where they match, the layers themselves elsewhere.

    ``input_gradient=False`` lets a fused first step skip the gradient with respect to the model's input.
    """
    steps, i = [], 0
    while i < len(layers):
        block = _block_at(layers, i, input_gradient)
        if block is None:
            steps.append(layers[i])
            i += 1
            continue
        steps.append(block)
        i += len(block.layers)
    return steps
