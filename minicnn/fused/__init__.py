"""Fused steps: runs of layers computed together by the fast implementation, with the same numbers.

A fused step is a composite of layers with the contract of a layer
(:class:`~minicnn.fused.composite.FusedStep`): its reference behaviour is the layers' own
forward and backward passes in sequence, and its fast kernels sit beside it. There are two:

- :class:`~minicnn.fused.conv_pool.ConvPoolBlock`, Conv2D(relu) -> MaxPooling2D -> Dropout, whose
  kernels pool before the bias and ReLU (Winograd and small-window convolutions among them);
- :class:`~minicnn.fused.conv_block.ConvBlock`, any Conv2D followed by any of
  BatchNormalization, an activation, a pooling layer and Dropout.

:func:`~minicnn.fused.planner.plan` finds the runs in a model, :func:`~minicnn.fused.planner.describe`
says what it found.
"""

from __future__ import annotations

from minicnn.fused.conv_block import ConvBlock
from minicnn.fused.conv_pool import ConvPoolBlock
from minicnn.fused.planner import describe, plan

__all__ = ["ConvBlock", "ConvPoolBlock", "describe", "plan"]
