"""Exercise "capstone": the seed model, the published MNIST CNN, built from your own layers and trained.

It needs your finished files of the exercises relu, dense, conv_forward, conv2d, maxpool_forward,
maxpool, dropout and adam in this folder (grade each of them first). Write ``build_model`` below,
then grade it with

    python -m minicnn.exercises grade capstone .

Grading builds your model, checks it is the seed model (421,642 parameters), and trains it for one
epoch on MNIST (from MINICNN_DATA, or the download cache) with your Adam, on the reference
implementation, with minicnn's own layers, kernels and optimizer blocked: every forward and backward
pass is yours. It passes at >= 97% test accuracy, and takes a few minutes.

The seed model (minicnn.experiments.published_model.mnist_cnn), with ReLU as layers of its own:

    Conv2D(32, 3, same) -> ReLU -> MaxPool2D(2) -> Dropout(0.25)
    -> Conv2D(64, 3, same) -> ReLU -> MaxPool2D(2) -> Dropout(0.25)
    -> Flatten -> Dense(128) -> ReLU -> Dropout(0.5) -> Dense(10, activation="softmax")
"""

from __future__ import annotations

from adam import MyAdam
from conv2d import MyConv2D as ConvBackward
from conv_forward import MyConv2D as ConvForward
from dense import MyDense  # noqa: F401 (yours to use)
from dropout import MyDropout  # noqa: F401
from maxpool import MyMaxPool2D as PoolBackward
from maxpool_forward import MyMaxPool2D as PoolForward
from relu import MyReLU  # noqa: F401

from minicnn import Flatten, Input, Sequential  # noqa: F401


class MyConv2D(ConvForward):
    """Your forward pass (conv_forward.py) with your backward pass (conv2d.py)."""

    backward_affine_pass = ConvBackward.backward_affine_pass


class MyMaxPool2D(PoolForward):
    """Your forward pass (maxpool_forward.py) with your backward pass (maxpool.py)."""

    backward_pass = PoolBackward.backward_pass


def optimizer() -> MyAdam:
    """The optimizer the grader trains your model with: your Adam, Keras' defaults."""
    return MyAdam()


def build_model(seed: int) -> Sequential:
    """The seed model from your layers, for (N, 28, 28, 1) inputs; ``seed`` seeds each layer that draws
    random numbers (weights or dropout masks): seed, seed + 1, ... in order."""
    # TODO: return Sequential([Input((28, 28, 1)), MyConv2D(32, 3, padding="same", seed=seed), MyReLU(), ...])
    raise NotImplementedError("write build_model (the docstring at the top of this file)")
