"""From the uint8 images the loaders return to the float32 input a network takes."""

from __future__ import annotations

import numpy as np


def prepare_images(x: np.ndarray) -> np.ndarray:
    """uint8 images -> float32 NHWC in [0, 1], the input Conv2D expects.

    (N, H, W) gains a channel axis, (N, H, W, 1); (N, H, W, C) keeps its shape. Only
    uint8 is accepted: scaling anything else by 1/255 (already-scaled floats, say) would
    silently give wrong inputs.
    """
    x = np.asarray(x)
    if x.dtype != np.uint8 or x.ndim not in (3, 4):
        raise ValueError(
            "prepare_images: expected uint8 images of shape (N, H, W) or (N, H, W, C); "
            f"got {x.dtype} {x.shape}"
        )
    if x.ndim == 4 and x.shape[1] in (1, 3) and x.shape[3] not in (1, 3):
        raise ValueError(
            f"prepare_images: images of shape {x.shape} look channels-first (N, C, H, W); "
            "minicnn is channels-last: pass x.transpose(0, 2, 3, 1)"
        )
    return np.divide(x if x.ndim == 4 else x[..., np.newaxis], 255, dtype=np.float32)
