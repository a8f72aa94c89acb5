"""minicnn.datasets.prepare_images: uint8 images to float32 NHWC in [0, 1], wrong input refused."""

from __future__ import annotations

import numpy as np
import pytest

from minicnn.datasets import prepare_images


def test_prepare_images_scales_and_adds_channel():
    x = np.array([[[0, 255], [51, 102]]], dtype=np.uint8)
    got = prepare_images(x)
    assert got.shape == (1, 2, 2, 1) and got.dtype == np.float32
    np.testing.assert_allclose(got[..., 0], [[[0.0, 1.0], [0.2, 0.4]]], rtol=1e-6)


def test_prepare_images_keeps_channels_last_images():
    x = np.zeros((2, 3, 4, 3), dtype=np.uint8)
    x[1, 2, 3, 0] = 255
    got = prepare_images(x)
    assert got.shape == (2, 3, 4, 3) and got.dtype == np.float32
    assert got[1, 2, 3, 0] == 1.0 and got.sum() == 1.0


@pytest.mark.parametrize(
    "x", [np.zeros((2, 4, 4), dtype=np.float32), np.zeros((2, 4), dtype=np.uint8),
          np.zeros((2, 4, 4, 1, 1), dtype=np.uint8), np.zeros((2, 4, 4, 1), dtype=np.int64)]
)
def test_prepare_images_rejects_wrong_dtype_or_shape(x):
    with pytest.raises(ValueError, match=r"uint8 images of shape \(N, H, W\) or \(N, H, W, C\)"):
        prepare_images(x)


def test_prepare_images_says_how_to_fix_channels_first():
    with pytest.raises(ValueError, match=r"channels-first.*transpose\(0, 2, 3, 1\)"):
        prepare_images(np.zeros((2, 3, 32, 32), dtype=np.uint8))
