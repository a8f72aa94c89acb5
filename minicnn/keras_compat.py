"""Convert models between minicnn and Keras, weights included, to use Keras as the reference.

:func:`to_keras` builds the Keras ``Sequential`` that computes the same function
as a minicnn model; :func:`from_keras` builds the minicnn model from a Keras
``Sequential``'s layer configs. The weights copy as they are, through
``get_weights``/``set_weights``: minicnn keeps Keras' layouts (Conv2D kernels
(KH, KW, C, F), Dense kernels (D, U), NHWC images flattened in C order) and
Keras' order (layer by layer, kernel then bias). ``tests/test_keras_parity.py``
checks that claim on outputs, gradients and training runs rather than trusting it.

TensorFlow and Keras are imported inside the functions only: they are an
optional extra (``pip install -e ".[keras]"``), and ``import minicnn`` never needs them.
The Keras model computes in float32, Keras' default, like minicnn's training.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from minicnn.layers import Conv2D, Dense, Dropout, Flatten, Input, Layer, MaxPooling2D, ReLU, Softmax
from minicnn.model import Sequential

# minicnn layer -> the Keras layer computing the same function (``K`` is ``keras.layers``).
_TO_KERAS: dict[type, Callable[[Any, Any], Any]] = {
    Conv2D: lambda K, layer: K.Conv2D(layer.filters, layer.kernel_size, strides=layer.strides,
                                      padding=layer.padding, activation=layer.activation, name=layer.name),
    MaxPooling2D: lambda K, layer: K.MaxPooling2D(layer.pool_size, strides=layer.strides, name=layer.name),
    Dropout: lambda K, layer: K.Dropout(layer.rate, seed=layer.seed, name=layer.name),
    Flatten: lambda K, layer: K.Flatten(name=layer.name),
    Dense: lambda K, layer: K.Dense(layer.units, activation=layer.activation, name=layer.name),
    ReLU: lambda K, layer: K.ReLU(name=layer.name),
    Softmax: lambda K, layer: K.Softmax(name=layer.name),
}

# Keras layer class name -> the minicnn layer built from its config (``c``) and activation name
# (``a``: "relu", "softmax", ..., or None for Keras' default "linear", as minicnn writes it).
_FROM_KERAS: dict[str, Callable[[dict, str | None], Layer]] = {
    "Conv2D": lambda c, a: Conv2D(c["filters"], c["kernel_size"], strides=c["strides"],
                                  padding=c["padding"], activation=a, name=c["name"]),
    "MaxPooling2D": lambda c, a: MaxPooling2D(c["pool_size"], strides=c["strides"], name=c["name"]),
    "Dropout": lambda c, a: Dropout(c["rate"], seed=c["seed"], name=c["name"]),
    "Flatten": lambda c, a: Flatten(name=c["name"]),
    "Dense": lambda c, a: Dense(c["units"], activation=a, name=c["name"]),
    "ReLU": lambda c, a: ReLU(name=c["name"]),
    "Softmax": lambda c, a: Softmax(name=c["name"]),
}

# Keras options that change what a layer computes, with the only value minicnn implements.
_REQUIRED = {
    "Conv2D": {"data_format": "channels_last", "dilation_rate": (1, 1), "groups": 1, "use_bias": True},
    "MaxPooling2D": {"data_format": "channels_last", "padding": "valid"},
    "Dropout": {"noise_shape": None},
    "Flatten": {"data_format": "channels_last"},
    "Dense": {"use_bias": True},
    "ReLU": {"max_value": None, "negative_slope": 0.0, "threshold": 0.0},
    "Softmax": {"axis": -1},
}

# Training-time extras minicnn has no notion of; a converted model would silently drop them.
_ABSENT = ("kernel_regularizer", "bias_regularizer", "activity_regularizer",
           "kernel_constraint", "bias_constraint")


def to_keras(model: Sequential):
    """The ``keras.Sequential`` equivalent to a built minicnn ``model``, with its weights and names."""
    import keras

    if not model.built:
        raise ValueError("to_keras: the model is not built yet; start it with an Input layer "
                         "or call build((None, *input_shape))")
    keras_layers = []
    for layer in model.layers:
        if type(layer) not in _TO_KERAS:
            raise TypeError(f"to_keras: no Keras equivalent known for {type(layer).__name__}")
        keras_layers.append(_TO_KERAS[type(layer)](keras.layers, layer))
    keras_model = keras.Sequential([keras.Input(model.input_shape), *keras_layers], name=model.name)
    keras_model.set_weights(model.get_weights())
    return keras_model


def from_keras(keras_model) -> Sequential:
    """The minicnn ``Sequential`` equivalent to a built ``keras.Sequential``, with its weights.

    Raises ValueError naming the Keras layer when minicnn has no equivalent of
    it or of one of its settings (e.g. ``dilation_rate=(2, 2)``).
    """
    import keras

    if not isinstance(keras_model, keras.Sequential):
        raise TypeError(f"from_keras: expected a keras.Sequential; got {type(keras_model).__name__}")
    model = Sequential([Input(keras_model.input_shape[1:])], name=keras_model.name)
    for keras_layer in keras_model.layers:
        try:
            model.add(_from_keras_layer(keras_layer))
        except ValueError as exc:
            raise ValueError(f"from_keras: layer {keras_layer.name!r} "
                             f"({type(keras_layer).__name__}): {exc}") from exc
    model.set_weights(keras_model.get_weights())
    return model


def _from_keras_layer(keras_layer) -> Layer:
    """The minicnn layer for one Keras layer; ValueError if minicnn cannot compute the same thing."""
    kind = type(keras_layer).__name__
    if kind not in _FROM_KERAS:
        raise ValueError(f"minicnn has no equivalent of Keras' {kind}; "
                         f"it converts {', '.join(_FROM_KERAS)}")
    config = keras_layer.get_config()
    for key, required in _REQUIRED[kind].items():
        if _plain(config[key]) != required:
            raise ValueError(f"minicnn supports only {key}={required!r}; got {config[key]!r}")
    for key in _ABSENT:
        if config.get(key) is not None:
            raise ValueError(f"minicnn has no {key}; got {config[key]!r}")
    activation = getattr(getattr(keras_layer, "activation", None), "__name__", None)
    return _FROM_KERAS[kind](config, None if activation == "linear" else activation)


def _plain(value):
    """Lists (as configs loaded from JSON hold them) as tuples, so they compare to tuples."""
    return tuple(value) if isinstance(value, list) else value
