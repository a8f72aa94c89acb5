"""The layer spec: one entry per layer configuration, and the checks ``test_spec.py`` runs on every entry.

In the spirit of Chainer's ``testing.FunctionTestCase`` and tinygrad's ``helper_test_op``, an
entry (:class:`LayerSpec`) says how to build the layer, which input shapes to run it on (random
values), and what it computes: a *definition*, a slow and obvious NumPy formula written here,
not minicnn's code. The checks, each on every input shape of an entry:

- :func:`check_forward`: the output against the definition, float64 to 1e-10 and float32 to
  float32 round-off (the output stays float32), in inference and in training (a layer whose
  training pass draws random numbers, Dropout, only in inference);
- :func:`check_gradients`: :func:`minicnn.gradcheck.check_layer` in float64, with a random
  upstream gradient, of the input and of every parameter;
- :func:`check_contract`: a float32 training step keeps the layer contract
  (``docs/backprop.md#the-layer-contract``): ``backward`` returns a new ``dx`` of the input's
  shape and dtype, leaves ``dout`` and the parameters alone, and stores one gradient per parameter;
- :func:`check_save_and_load`: in a one-layer model, ``save`` then ``load_model`` gives the same
  class, config and weights, and the same outputs in inference and in training;
- :func:`check_keras` (needs TensorFlow): the Keras layer ``to_keras`` builds, with the same
  weights, gives the same outputs to float32 round-off, in inference and in training.

The forward, gradient and contract checks run in each implementation (``"fast"`` and ``"reference"``).
Every layer gets random weights (:func:`randomize`), so a bias or a moving statistic that is
ignored shows. ``Input`` has no entry: it computes nothing (it declares a model's input shape);
every save-and-load and Keras check runs one.

**Adding a layer adds one entry to** :data:`SPECS` (and a definition, if it computes something
new); ``test_every_registered_layer_has_a_spec_entry`` fails until it has one.
``test_add_a_layer.py`` shows the whole recipe on a layer class defined in the test.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from minicnn import (
    Activation,
    AveragePooling2D,
    BatchNormalization,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAveragePooling2D,
    Input,
    LeakyReLU,
    MaxPool2D,
    ReLU,
    Sequential,
    Softmax,
    gradcheck,
    load_model,
)
from minicnn.implementation import use
from minicnn.keras_compat import to_keras
from minicnn.layers import Layer

Definition = Callable[[np.ndarray, dict[str, np.ndarray], dict, bool], np.ndarray]


@dataclass(frozen=True)
class LayerSpec:
    """One layer configuration: how to build it, what to feed it, what it must compute."""

    id: str
    """The test id, e.g. ``"conv2d strides (2, 1) valid"``."""
    make: Callable[[], Layer]
    """A new, unbuilt layer."""
    shapes: tuple[tuple[int, ...], ...]
    """Input shapes, batch axis first; every check runs on each."""
    definition: Definition
    """``definition(x, weights, config, training) -> out`` in float64: ``weights`` are the layer's
    params and state by key (float64 copies), ``config`` its ``get_config()``."""
    random_in_training: bool = False
    """The training forward draws random numbers (Dropout): no definition to compare it with."""
    custom_objects: Mapping[str, type] = field(default_factory=dict)
    """Classes of one's own for ``load_model`` (a layer that is not in minicnn's registry)."""
    keras: bool = True
    """The layer has a Keras twin (``to_keras``)."""


# --------------------------------------------------------------------------- the definitions


def pair(value) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)


def activation(name: str | None, z: np.ndarray) -> np.ndarray:
    """The activation ``name`` by its formula; softmax over the last axis."""
    if name in (None, "linear"):
        return z
    if name == "relu":
        return np.where(z > 0, z, 0.0)
    if name == "sigmoid":
        return 1 / (1 + np.exp(-z))
    if name == "tanh":
        return np.tanh(z)
    if name == "softmax":
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    raise ValueError(f"no definition for the activation {name!r}")


def same_pads(size: int, window: int, stride: int) -> tuple[int, int]:
    """TensorFlow's 'same' padding of one axis: ``ceil(size / stride)`` outputs, the odd pad at the end."""
    outputs = -(-size // stride)
    total = max((outputs - 1) * stride + window - size, 0)
    return total // 2, total - total // 2


def convolution(x, W, b, strides, pads) -> np.ndarray:
    """``z[n, i, j, f] = sum over (a, b, c) of xp[n, i*sh + a, j*sw + b, c] * W[a, b, c, f] + b[f]``,
    one output pixel at a time; ``xp`` is ``x`` padded by ``pads = (top, bottom, left, right)``."""
    top, bottom, left, right = pads
    (sh, sw), (kh, kw, _, f) = strides, W.shape
    xp = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    oh, ow = (xp.shape[1] - kh) // sh + 1, (xp.shape[2] - kw) // sw + 1
    z = np.zeros((x.shape[0], oh, ow, f))
    for i in range(oh):
        for j in range(ow):
            z[:, i, j] = np.einsum("nabc,abcf->nf", xp[:, i * sh:i * sh + kh, j * sw:j * sw + kw], W) + b
    return z


def conv2d(x, weights, config, training):
    (kh, kw), (sh, sw) = pair(config["kernel_size"]), pair(config["strides"])
    if config["padding"] == "same":
        pads = (*same_pads(x.shape[1], kh, sh), *same_pads(x.shape[2], kw, sw))
    else:
        pads = (0, 0, 0, 0)
    z = convolution(x, weights["kernel"], weights.get("bias", 0.0), (sh, sw), pads)
    return activation(config["activation"], z)


def dense(x, weights, config, training):
    return activation(config["activation"], np.einsum("nd,du->nu", x, weights["kernel"]) + weights["bias"])


def pooling(reduce):
    """The definition of a pooling layer: ``reduce`` over each (unpadded) window of every channel."""
    def pool(x, weights, config, training):
        (ph, pw) = pair(config["pool_size"])
        (sh, sw) = pair(config["strides"] or config["pool_size"])
        n, h, w, c = x.shape
        oh, ow = (h - ph) // sh + 1, (w - pw) // sw + 1
        out = np.zeros((n, oh, ow, c))
        for i in range(oh):
            for j in range(ow):
                out[:, i, j, :] = reduce(x[:, i * sh:i * sh + ph, j * sw:j * sw + pw, :], axis=(1, 2))
        return out
    return pool


def global_average_pooling2d(x, weights, config, training):
    n, h, w, c = x.shape
    total = np.zeros((n, c))
    for i in range(h):
        for j in range(w):
            total += x[:, i, j, :]
    return total / (h * w)


def batch_normalization(x, weights, config, training):
    """With the batch's mean and biased variance in training (unless frozen), the moving ones otherwise."""
    axes = tuple(range(x.ndim - 1))
    if training and config.get("trainable", True):
        mean = x.mean(axis=axes)
        var = ((x - mean) ** 2).mean(axis=axes)
    else:
        mean, var = weights["moving_mean"], weights["moving_variance"]
    return weights["gamma"] * (x - mean) / np.sqrt(var + config["epsilon"]) + weights["beta"]


def dropout(x, weights, config, training):
    """Inference only: the identity (training multiplies by a random mask)."""
    assert not training
    return x


def flatten(x, weights, config, training):
    """``out[n, (i * W + j) * C + c] = x[n, i, j, c]``: channels vary fastest, as in Keras' channels_last."""
    n, h, w, c = x.shape
    out = np.zeros((n, h * w * c))
    for i in range(h):
        for j in range(w):
            for k in range(c):
                out[:, (i * w + j) * c + k] = x[:, i, j, k]
    return out


def leaky_relu(x, weights, config, training):
    return np.where(x > 0, x, config["negative_slope"] * x)


def named_activation(name: str | None = None) -> Definition:
    """The definition of an activation layer: ``name``, or the one its config names."""
    return lambda x, weights, config, training: activation(name or config["activation"], x)


# --------------------------------------------------------------------------- the entries

SPECS = [
    # Conv2D: 'same' and 'valid', equal and unequal strides and kernel sides, with and without bias,
    # each activation, initialisers; MNIST's 28x28 at stride 1 and the odd pad of stride 2 on 7x8.
    LayerSpec("conv2d same relu", lambda: Conv2D(4, 3, padding="same", activation="relu", seed=0),
              ((2, 6, 5, 3), (1, 28, 28, 3)), conv2d),
    LayerSpec("conv2d valid", lambda: Conv2D(3, 3, seed=0), ((2, 7, 7, 2),), conv2d),
    LayerSpec("conv2d stride 2 same", lambda: Conv2D(3, 3, strides=2, padding="same", seed=0),
              ((2, 7, 6, 2), (2, 7, 8, 3)), conv2d),
    LayerSpec("conv2d stride 2 valid (3, 2)", lambda: Conv2D(2, (3, 2), strides=2, seed=0),
              ((3, 9, 7, 1), (2, 7, 7, 3)), conv2d),
    LayerSpec("conv2d strides (1, 2) same", lambda: Conv2D(3, 3, strides=(1, 2), padding="same", seed=0),
              ((2, 7, 8, 2), (2, 9, 8, 3)), conv2d),
    LayerSpec("conv2d strides (2, 1) valid (2, 3)", lambda: Conv2D(2, (2, 3), strides=(2, 1), seed=0),
              ((2, 7, 6, 2), (2, 9, 8, 3)), conv2d),
    LayerSpec("conv2d strides (3, 2) same (1, 4)",
              lambda: Conv2D(4, (1, 4), strides=(3, 2), padding="same", seed=0), ((2, 9, 8, 3),), conv2d),
    LayerSpec("conv2d no bias tanh", lambda: Conv2D(3, 3, use_bias=False, activation="tanh", seed=0),
              ((2, 5, 5, 2),), conv2d),
    LayerSpec("conv2d sigmoid he_normal",
              lambda: Conv2D(3, 2, activation="sigmoid", kernel_initializer="he_normal", seed=0),
              ((2, 5, 4, 2),), conv2d),
    # Dense, each activation
    LayerSpec("dense linear", lambda: Dense(5, seed=0), ((4, 7), (1, 3)), dense),
    LayerSpec("dense relu", lambda: Dense(5, activation="relu", seed=0), ((4, 7),), dense),
    LayerSpec("dense softmax", lambda: Dense(5, activation="softmax", seed=0), ((4, 7),), dense),
    LayerSpec("dense tanh", lambda: Dense(4, activation="tanh", seed=0), ((3, 5),), dense),
    LayerSpec("dense sigmoid he_uniform",
              lambda: Dense(4, activation="sigmoid", kernel_initializer="he_uniform", seed=0),
              ((3, 5),), dense),
    # pooling
    LayerSpec("maxpool 2", lambda: MaxPool2D(2), ((2, 6, 6, 3),), pooling(np.max)),
    LayerSpec("maxpool odd size", lambda: MaxPool2D(2), ((2, 7, 5, 2),), pooling(np.max)),
    LayerSpec("maxpool overlapping", lambda: MaxPool2D(3, strides=2), ((2, 7, 7, 2),), pooling(np.max)),
    LayerSpec("maxpool gaps", lambda: MaxPool2D(2, strides=3), ((2, 8, 7, 2),), pooling(np.max)),
    LayerSpec("average pooling 2", lambda: AveragePooling2D(2), ((2, 6, 5, 3),), pooling(np.mean)),
    LayerSpec("average pooling overlapping", lambda: AveragePooling2D((3, 2), strides=(1, 2)),
              ((2, 6, 7, 2),), pooling(np.mean)),
    LayerSpec("average pooling (3, 2) strides (2, 3)", lambda: AveragePooling2D((3, 2), strides=(2, 3)),
              ((2, 7, 8, 3),), pooling(np.mean)),
    LayerSpec("global average pooling", lambda: GlobalAveragePooling2D(), ((3, 4, 5, 2), (2, 1, 1, 3)),
              global_average_pooling2d),
    # BatchNormalization on images and vectors, frozen
    LayerSpec("batchnorm images", lambda: BatchNormalization(), ((4, 3, 3, 2),), batch_normalization),
    LayerSpec("batchnorm vectors", lambda: BatchNormalization(momentum=0.9, epsilon=1e-5), ((6, 4),),
              batch_normalization),
    LayerSpec("batchnorm frozen", lambda: BatchNormalization(trainable=False), ((4, 3, 3, 2),),
              batch_normalization),
    # shape and noise
    LayerSpec("dropout", lambda: Dropout(0.5, seed=1), ((3, 4, 4, 2), (5, 6)), dropout,
              random_in_training=True),
    LayerSpec("flatten", lambda: Flatten(), ((2, 3, 3, 2), (3, 1, 4, 5)), flatten),
    # activations as layers
    LayerSpec("relu", lambda: ReLU(), ((3, 5), (2, 3, 3, 2)), named_activation("relu")),
    LayerSpec("softmax", lambda: Softmax(), ((3, 5),), named_activation("softmax")),
    LayerSpec("leaky relu", lambda: LeakyReLU(), ((3, 4, 4, 2),), leaky_relu),
    LayerSpec("leaky relu slope 0.01", lambda: LeakyReLU(0.01), ((3, 6),), leaky_relu),
    LayerSpec("activation sigmoid", lambda: Activation("sigmoid"), ((3, 5),), named_activation()),
    LayerSpec("activation tanh", lambda: Activation("tanh"), ((3, 2, 2, 2),), named_activation()),
    LayerSpec("activation softmax", lambda: Activation("softmax"), ((3, 5),), named_activation()),
    LayerSpec("activation relu", lambda: Activation("relu"), ((3, 4),), named_activation()),
    LayerSpec("activation linear", lambda: Activation("linear"), ((3, 4),), named_activation()),
]


# --------------------------------------------------------------------------- the checks

FLOAT64_TOLERANCE = 1e-10
"""Relative (and, times 0.01, absolute) tolerance of a float64 forward: sums in another order only."""
FLOAT32_TOLERANCE = 1e-5
"""Relative and absolute tolerance of a float32 forward against the float64 definition (the layer
computes in float32: a few roundings of values of order 1)."""
KERAS_TOLERANCE = 1e-5
"""As ``keras_parity``'s OUTPUT_TOLERANCE: float32 sums in another order."""


def inputs(shape: tuple, dtype=np.float64, seed: int = 42) -> np.ndarray:
    """A random input of ``shape``. Not seed 0: check_layer draws its upstream gradient from seed 0,
    and an upstream gradient equal to x would make BatchNormalization's dx vanish."""
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def randomize(layer: Layer, seed: int = 1) -> Layer:
    """Give the (built) layer random weights: parameters around 0, state (moving variances among it) in
    [0.5, 2], so that a weight a forward ignores, or mixes up with another, shows."""
    rng = np.random.default_rng(seed)
    layer.set_weights([rng.normal(0.0, 0.5, w.shape) for w in layer.params.values()]
                      + [rng.uniform(0.5, 2.0, w.shape) for w in layer.state.values()])
    return layer


def built(spec: LayerSpec, shape: tuple, dtype) -> Layer:
    """The spec's layer, built for inputs of ``shape``, computing in ``dtype``, with random weights."""
    layer = spec.make()
    layer.build(shape[1:])
    return randomize(layer.astype(dtype))


def one_layer_model(spec: LayerSpec, shape: tuple) -> Sequential:
    """``Sequential([Input, the spec's layer])`` for inputs of ``shape``, the layer with random weights."""
    model = Sequential([Input(shape[1:]), spec.make()])
    randomize(model.layers[0])
    return model


def weights64(layer: Layer) -> dict[str, np.ndarray]:
    return {key: value.astype(np.float64) for key, value in {**layer.params, **layer.state}.items()}


def trainings(spec: LayerSpec) -> tuple[bool, ...]:
    return (False,) if spec.random_in_training else (False, True)


def check_forward(spec: LayerSpec, implementation: str) -> None:
    for shape in spec.shapes:
        for training in trainings(spec):
            for dtype, tolerance in ((np.float64, FLOAT64_TOLERANCE), (np.float32, FLOAT32_TOLERANCE)):
                layer = built(spec, shape, dtype)
                x = inputs(shape, dtype)
                config = layer.get_config()
                expected = spec.definition(x.astype(np.float64), weights64(layer), config, training)
                with use(implementation):
                    out = layer.forward(x, training=training)
                where = f"{spec.id}: input {shape} {np.dtype(dtype).name}, training={training}"
                assert out.dtype == dtype, where
                assert out.shape == expected.shape == (shape[0], *layer.output_shape), where
                atol = tolerance * (0.01 if dtype == np.float64 else 1)
                np.testing.assert_allclose(out, expected, rtol=tolerance, atol=atol, err_msg=where)


def check_gradients(spec: LayerSpec, implementation: str) -> None:
    """Raises AssertionError with gradcheck's diagnosis when a backward is wrong."""
    for shape in spec.shapes:
        layer = built(spec, shape, np.float64)
        report = gradcheck.check_layer(layer, inputs(shape), implementation=implementation)
        report.assert_ok()
        assert {c.name for c in report.checks} == {"x", *layer.params}, spec.id


def check_contract(spec: LayerSpec, implementation: str) -> None:
    for shape in spec.shapes:
        layer = built(spec, shape, np.float32)
        x = inputs(shape, np.float32)
        with use(implementation):
            out = layer.forward(x, training=True)
            dout = np.random.default_rng(1).standard_normal(out.shape).astype(np.float32)
            before = dout.copy()
            params_before = {key: value.copy() for key, value in layer.params.items()}
            dx = layer.backward(dout)
        np.testing.assert_array_equal(dout, before)
        assert dx.shape == x.shape and dx.dtype == np.float32
        assert not np.shares_memory(dx, dout)
        assert set(layer.grads) == set(layer.params)
        for key, value in layer.params.items():  # backward never updates weights
            np.testing.assert_array_equal(value, params_before[key])
            assert layer.grads[key].shape == value.shape and layer.grads[key].dtype == np.float32


def check_save_and_load(spec: LayerSpec, directory: Path) -> None:
    for i, shape in enumerate(spec.shapes):
        model = one_layer_model(spec, shape)
        model.save(directory / f"{i}.npz")
        loaded = load_model(directory / f"{i}.npz", custom_objects=spec.custom_objects)
        layer, twin = model.layers[0], loaded.layers[0]
        assert type(twin) is type(layer) and loaded.input_shape == model.input_shape
        assert twin.get_config() == layer.get_config()
        for ours, theirs in zip(layer.get_weights(), twin.get_weights(), strict=True):
            np.testing.assert_array_equal(ours, theirs)
        x = inputs(shape, np.float32)
        np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
        # Training too: the moving statistics and Dropout's generator were saved.
        np.testing.assert_array_equal(twin.forward(x, training=True), layer.forward(x, training=True))


def check_keras(spec: LayerSpec) -> None:
    """Needs TensorFlow (the caller skips without it); skips a layer that has no Keras twin."""
    if not spec.keras:
        pytest.skip(f"{spec.id}: no Keras twin")

    for shape in spec.shapes:
        model = one_layer_model(spec, shape)
        keras_model = to_keras(model)
        x = inputs(shape, np.float32)
        for training in trainings(spec):  # inference first: a training pass moves BN's statistics, in both
            ours = model.layers[0].forward(x, training=training)
            theirs = np.asarray(keras_model(x, training=training))
            np.testing.assert_allclose(ours, theirs, rtol=KERAS_TOLERANCE, atol=KERAS_TOLERANCE,
                                       err_msg=f"{spec.id}: input {shape}, training={training}")
