"""Convert models between minicnn and Keras, weights included, to use Keras as the reference.

:func:`to_keras` builds the Keras ``Sequential`` that computes the same function
as a minicnn model; :func:`from_keras` builds the minicnn model from a Keras
``Sequential``'s layer configs. The weights copy as they are, through
``get_weights``/``set_weights``: minicnn keeps Keras' layouts (Conv2D kernels
(KH, KW, C, F), Dense kernels (D, U), NHWC images flattened in C order) and
Keras' order (layer by layer, kernel then bias). ``tests/keras_parity/``
checks that claim on outputs, gradients and training runs rather than trusting it.

TensorFlow and Keras are imported inside the functions only: they are an
optional extra (``pip install -e ".[keras]"``), and ``import minicnn`` never needs them.
The Keras model computes in float32, Keras' default, like minicnn's training.
"""

from __future__ import annotations

from minicnn.layers import Input, Layer
from minicnn.models import Sequential
from minicnn.registry import LAYERS

# Training-time extras minicnn has no notion of; a converted model would silently drop them.
_ABSENT = ("activity_regularizer", "kernel_constraint", "bias_constraint")


def to_keras(model: Sequential):
    """The ``keras.Sequential`` equivalent to a built minicnn ``model``, with its weights and names."""
    import keras

    if not model.built:
        raise ValueError("to_keras: the model is not built yet; start it with an Input layer "
                         "or call build((None, *input_shape))")
    keras_layers = [layer.to_keras(keras.layers) for layer in model.layers]
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
    if kind not in LAYERS or LAYERS.get(kind) is Input:
        known = [name for name in LAYERS.names() if LAYERS.get(name) is not Input]
        raise ValueError(f"minicnn has no equivalent of Keras' {kind}; it converts {', '.join(known)}")
    cls = LAYERS.get(kind)
    config = keras_layer.get_config()
    for key, required in cls.keras_requires.items():
        if _plain(config[key]) != required:
            raise ValueError(f"minicnn supports only {key}={required!r}; got {config[key]!r}")
    for key in _ABSENT:
        if config.get(key) is not None:
            raise ValueError(f"minicnn has no {key}; got {config[key]!r}")
    activation = getattr(getattr(keras_layer, "activation", None), "__name__", None)
    return cls.from_keras(config, None if activation == "linear" else activation)


def _plain(value):
    """Lists (as configs loaded from JSON hold them) as tuples, so they compare to tuples."""
    return tuple(value) if isinstance(value, list) else value
