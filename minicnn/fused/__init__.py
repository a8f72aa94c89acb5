"""Fused steps: runs of layers computed together by the fast implementation, with the same numbers.

A fused step is a composite of layers with the contract of a layer
(:class:`~minicnn.layers.base.Step`): its reference behaviour is the layers' own
forward and backward passes in sequence, and its fast kernels sit beside it. Today
there is one, :class:`~minicnn.fused.conv_pool.ConvPoolBlock`
(Conv2D(relu) -> MaxPooling2D -> Dropout). :func:`plan` finds the runs in a model.
"""

from __future__ import annotations

from minicnn.fused.conv_pool import ConvPoolBlock
from minicnn.layers import Layer
from minicnn.layers.base import Step

__all__ = ["ConvPoolBlock", "plan"]


def plan(layers: list[Layer], input_gradient: bool = True) -> list[Step]:
    """The steps that run ``layers``: fused blocks where they match, the layers themselves elsewhere.

    ``input_gradient=False`` lets a fused first step skip the gradient with respect to the model's input.
    """
    steps: list[Step] = []
    i = 0
    while i < len(layers):
        block = ConvPoolBlock.starting_at(layers, i, input_gradient=input_gradient or i > 0)
        steps.append(block or layers[i])
        i += len(block.layers) if block else 1
    return steps
