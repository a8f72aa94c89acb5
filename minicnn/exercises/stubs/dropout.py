"""Exercise "dropout": the backward pass of inverted dropout.

Read docs/backprop.md#dropout, write ``MyDropout.backward`` below, then grade it with

    python -m minicnn.exercises grade dropout .

In training, each value is kept with probability 1 - rate and scaled by 1 / (1 - rate):
``out = x * mask`` with mask 0 or 1 / (1 - rate). x, mask, out, dout and dx share one shape.
"""

from __future__ import annotations

import numpy as np

from minicnn.layers import Dropout


class MyDropout(Dropout):
    """``MyDropout(rate, seed=None)`` with your backward pass."""

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self.check_input(x)
        if not training:
            return x
        mask = self.draw_mask(x.shape, x.dtype)  # 0 where dropped, 1 / (1 - rate) where kept
        self.remember(x.shape, {"mask": mask})
        return x * mask

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """From ``dout`` = dL/dout: return dx = dL/dx, a new array of the same shape."""
        self.check_grad(dout)
        mask = self.cache["mask"]  # noqa: F841 (yours to use)
        # TODO dx: what is d out / d x, entry by entry?
        raise NotImplementedError("write MyDropout.backward (docs/backprop.md#dropout)")
