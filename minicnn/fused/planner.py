"""The planner: which runs of a model's layers become fused steps.

It walks the layers once, left to right. At each layer it asks each kind of fused step, most
specialised first, whether a run of its pattern starts there, and takes the first answer:

1. :class:`~minicnn.fused.conv_pool.ConvPoolBlock`: ``Conv2D(relu, bias) -> MaxPooling2D ->
   [Dropout]``, whose kernels pool the raw convolution before bias and ReLU (a quarter of the
   work after the product) and have Winograd and small-window convolutions;
2. :class:`~minicnn.fused.conv_block.ConvBlock`: any Conv2D, then as many of
   BatchNormalization, an activation, a pooling layer and Dropout as follow it in that order.

Any other layer (Flatten, Dense, a Dropout after a Dense, ...) is a step of its own: each is
one BLAS product or one pass already.
"""

from __future__ import annotations

from minicnn.fused.composite import FusedStep
from minicnn.fused.conv_block import ConvBlock
from minicnn.fused.conv_pool import ConvPoolBlock
from minicnn.layers import Layer
from minicnn.layers.base import Step

FUSED_STEPS = (ConvPoolBlock, ConvBlock)
"""The kinds of fused step, in the order the planner asks them."""


def plan(layers: list[Layer], input_gradient: bool = True) -> list[Step]:
    """The steps that run ``layers``: fused steps where a pattern starts, the layers themselves elsewhere.

    ``input_gradient=False`` lets a fused first step skip the gradient with respect to the model's input.
    """
    steps: list[Step] = []
    i = 0
    while i < len(layers):
        need_dx = input_gradient or i > 0
        step = next((found for kind in FUSED_STEPS
                     if (found := kind.starting_at(layers, i, input_gradient=need_dx)) is not None), None)
        steps.append(step or layers[i])
        i += len(step.layers) if step else 1
    return steps


def describe(steps: list[Step]) -> str:
    """The plan as text, one step a line: its kind, and the layers it covers.

    ``ConvBlock      conv2d + batch_normalization + re_lu`` for a fused step,
    ``Dense          dense`` for a layer that runs on its own.
    """
    width = max((len(type(step).__name__) for step in steps), default=0) + 2
    return "\n".join(f"{type(step).__name__:<{width}}"
                     + (" + ".join(layer.name for layer in step.layers) if isinstance(step, FusedStep)
                        else f"{step.name} (on its own)")
                     for step in steps)
