"""Ready-made architectures: the published Keras MNIST CNN that minicnn reproduces."""

from __future__ import annotations

from minicnn.layers import Conv2D, Dense, Dropout, Flatten, Input, MaxPool2D
from minicnn.models import Sequential


def mnist_cnn(input_shape: tuple[int, int, int] = (28, 28, 1), num_classes: int = 10,
              seed: int | None = None) -> Sequential:
    """The published Keras MNIST CNN, uncompiled: 421,642 parameters for (28, 28, 1) inputs.

    Conv2D(32, 3, same, relu) -> MaxPool2D(2) -> Dropout(0.25) -> Conv2D(64, 3, same, relu)
    -> MaxPool2D(2) -> Dropout(0.25) -> Flatten -> Dense(128, relu) -> Dropout(0.5)
    -> Dense(num_classes, softmax). Inputs are NHWC ``(N, *input_shape)``; the two pools
    need height and width of at least 4 (8x8 digits end as 2x2x64 before Flatten).
    ``seed`` seeds each layer's weights or dropout masks (``seed``, ``seed + 1``, ...), so
    equal seeds give equal models; None draws from the global generator
    (:func:`minicnn.set_random_seed`).
    """
    height, width, _ = input_shape
    if min(height, width) < 4:
        raise ValueError(f"mnist_cnn: input_shape needs height and width >= 4 for the two 2x2 pools; "
                         f"got {input_shape}")
    if num_classes < 2:
        raise ValueError(f"mnist_cnn: num_classes must be at least 2; got {num_classes}")
    seeds = [None] * 7 if seed is None else [seed + i for i in range(7)]
    return Sequential([
        Input(tuple(input_shape)),
        Conv2D(32, 3, padding="same", activation="relu", seed=seeds[0]),
        MaxPool2D(2),
        Dropout(0.25, seed=seeds[1]),
        Conv2D(64, 3, padding="same", activation="relu", seed=seeds[2]),
        MaxPool2D(2),
        Dropout(0.25, seed=seeds[3]),
        Flatten(),
        Dense(128, activation="relu", seed=seeds[4]),
        Dropout(0.5, seed=seeds[5]),
        Dense(num_classes, activation="softmax", seed=seeds[6]),
    ])
