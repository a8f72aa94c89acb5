"""Exercise "dropout": the backward pass of inverted dropout.

Read docs/backprop.md#dropout, write ``MyDropout.backward_pass`` below, then grade it with

    python -m minicnn.exercises grade dropout .

In training, each value is kept with probability 1 - rate and scaled by 1 / (1 - rate):
``out = x * mask`` with mask 0 or 1 / (1 - rate). x, mask, out, dout and dx share one shape.
"""

from __future__ import annotations

import numpy as np

from minicnn.layers import Dropout


class MyDropout(Dropout):
    """``MyDropout(rate, seed=None)`` with your backward pass."""

    def forward_pass(self, x: np.ndarray, training: bool) -> tuple[np.ndarray, dict | None]:
        if not training:
            return x, None
        mask = self.draw_mask(x.shape, x.dtype)  # 0 where dropped, 1 / (1 - rate) where kept
        return x * mask, {"mask": mask}

    def backward_pass(self, dout: np.ndarray, cache: dict) -> tuple[np.ndarray, dict]:
        """From ``dout`` = dL/dout: return ``dx, {}``, dx = dL/dx a new array of the same shape."""
        mask = cache["mask"]  # noqa: F841 (yours to use)
        # TODO dx: what is d out / d x, entry by entry?
        raise NotImplementedError("write MyDropout.backward_pass (docs/backprop.md#dropout)")
