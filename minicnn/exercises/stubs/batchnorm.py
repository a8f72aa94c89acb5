"""Exercise "batchnorm": the backward pass of batch normalization.

Read docs/backprop.md#batchnormalization, write ``MyBatchNormalization.backward_pass`` below,
then grade it with

    python -m minicnn.exercises grade batchnorm .

Per channel c (the last axis), over the M = N (or N*H*W) values of that channel in the batch:

    mean = sum(x) / M,  var = sum((x - mean)**2) / M,  inv_std = 1 / sqrt(var + epsilon)
    x_hat = (x - mean) * inv_std,  out = gamma * x_hat + beta

x, x_hat, out, dout and dx share one shape, (N, D) or (N, H, W, C); gamma, beta, mean, var: (C,).
With the moving statistics (inference, or trainable=False) mean and var are constants.
"""

from __future__ import annotations

import numpy as np

from minicnn.layers import BatchNormalization


class MyBatchNormalization(BatchNormalization):
    """``MyBatchNormalization(momentum=0.99, epsilon=1e-3)`` with your backward pass."""

    def backward_pass(self, dout: np.ndarray, cache: dict) -> tuple[np.ndarray, dict]:
        """Return ``dx, {"gamma": dgamma, "beta": dbeta}``, dgamma and dbeta of shape (C,)."""
        x_hat, inv_std = cache["x_hat"], cache["inv_std"]  # noqa: F841 (yours to use)
        batch_statistics = cache["batch_statistics"]  # noqa: F841 (False: mean and var were constants)
        gamma = self.params["gamma"]  # noqa: F841
        axes = tuple(range(dout.ndim - 1))  # noqa: F841 (every axis but the channels')
        # TODO dbeta, dgamma: beta and gamma act on every value of their channel.
        # TODO dx: with constants mean and var, x reaches out only through x_hat. With batch statistics
        #      every x of a channel also moves its mean and var: three terms, one per path.
        raise NotImplementedError("write backward_pass (docs/backprop.md#batchnormalization)")
