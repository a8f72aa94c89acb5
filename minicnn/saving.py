"""Saving a model to one ``.npz`` file and loading it back, ready to go on training.

The file holds NumPy arrays and one JSON document, never pickled objects:

- ``<layer>/<key>``: each layer's parameters (``conv2d/kernel``, ...);
- ``<layer>/state/<key>``: each layer's non-trainable state (moving statistics, ...);
- ``optimizer/<parameter>/<slot>``: the optimizer's per-parameter state (Adam's ``m`` and ``v``);
- ``__config__``: JSON with the architecture (every layer's ``get_config()``), the compile
  settings (optimizer, loss, metrics, implementation), the optimizer's step count, and the
  state of every layer's random generator (Dropout's masks). Files written before the
  implementation setting got its name store it as ``"kernels"``; they load alike.

So :func:`minicnn.load_model` returns a model that continues training exactly where the
saved one stopped: the same weights, optimizer moments, step count and dropout masks.
Layers, optimizers, losses, metrics and regularizers are found by class name in :mod:`minicnn.registry`,
or in ``custom_objects`` for classes of one's own (as Keras' ``custom_objects``). This module
knows the file format, not the model class: ``Sequential.save`` and ``load_model`` (in
:mod:`minicnn.models`) call it, so the dependency runs one way.

A model file may come from elsewhere, so loading allocates nothing it has not checked
(in the spirit of Keras' ``load_model(safe_mode=True)``): the sizes the zip directory and
every array's npy header declare, read by :class:`minicnn.npz.NpzReader` before any data;
the weights the architecture would create, counted from the config before any layer is
built; all of them against ``max_bytes``. Whatever is wrong, a damaged zip, a malformed
or too deeply nested config, an unknown class, a wrong type, a negative size, is a
:class:`ModelFileError` naming the file and the problem.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import reprlib
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from minicnn import metrics as metrics_module
from minicnn.files import atomic_write
from minicnn.layers.base import Layer
from minicnn.layers.input import Input
from minicnn.npz import NpzError, NpzReader
from minicnn.registry import LAYERS, LOSSES, METRICS, OPTIMIZERS, Registry
from minicnn.validation import check_int

if TYPE_CHECKING:
    from minicnn.models import Sequential

FORMAT = "minicnn.npz/1"
"""Written into every file, so :func:`load_model` can tell a minicnn model from any other ``.npz``."""


MAX_BYTES = 2**30
"""What :func:`load_model` accepts unless told ``max_bytes=``: the arrays the file declares (in
all), and the weights its architecture would create, as float32, each at most 1 GiB."""

MAX_CONFIG_BYTES = 2**24
"""The largest ``__config__`` read (16 MiB as NumPy stores text); a model's takes a few kilobytes."""

WEIGHT_BYTES = 4
"""Bytes per weight of a model as built (float32)."""

_MALFORMED = (KeyError, TypeError, AttributeError, ValueError, IndexError, OverflowError, RecursionError)
"""What building from a malformed config raises; each becomes a :class:`ModelFileError`."""


class ModelFileError(ValueError):
    """A file that :func:`load_model` cannot read as a minicnn model; the message names the file."""


def save_model(model: Sequential, path: str | os.PathLike) -> None:
    """Write ``model`` (architecture, weights, state, compile settings, optimizer state) to ``path``.

    The file is first written beside ``path`` under a temporary name and then renamed,
    so an interrupted save never leaves a half-written file. ``path`` must end in ``.npz``:
    minicnn does not write Keras' ``.keras`` or ``.h5`` formats.
    """
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"save: minicnn writes its own .npz format (arrays and JSON, no pickle); "
                         f"got the file name {path.name!r}. Use a name ending in .npz"
                         + ("; to get a Keras file, convert with minicnn.keras_compat.to_keras(model) "
                            "and save that" if path.suffix in (".keras", ".h5") else ""))
    if not model.built:
        raise ValueError("save: the model is not built yet; start it with an Input layer "
                         "or call build((None, *input_shape))")
    arrays: dict[str, np.ndarray] = {}
    for layer in model.layers:
        arrays.update({f"{layer.name}/{key}": value for key, value in layer.params.items()})
        arrays.update({f"{layer.name}/state/{key}": value for key, value in layer.state.items()})
    if model.optimizer is not None:
        for name, slots in model.optimizer.state.items():
            arrays.update({f"optimizer/{name}/{slot}": value for slot, value in slots.items()})
    config = {"format": FORMAT, "model": model.get_config(), "compile": _compile_config(model),
              "rng": {layer.name: layer.rng.bit_generator.state for layer in model.layers
                      if hasattr(layer, "rng")}}
    arrays["__config__"] = np.array(json.dumps(config))
    atomic_write(path, lambda f: np.savez(f, **arrays))


def load_model(path: str | os.PathLike, model_class: type[Sequential],
               custom_objects: Mapping[str, type] | None = None, max_bytes: int = MAX_BYTES) -> Sequential:
    """Rebuild a ``model_class`` model saved by :func:`save_model`, compiled as it was if it was compiled.

    Classes are found by name in :mod:`minicnn.registry`; ``custom_objects`` adds classes of
    one's own by class name (``{"Scale": Scale}``), as Keras' ``custom_objects`` does.
    ``max_bytes`` caps the arrays the file declares, in all, and the weights its
    architecture would create (see :data:`MAX_BYTES`); both are checked before anything
    is read or built.

    Raises :class:`ModelFileError` naming the file and what is wrong with it: not a
    minicnn model, truncated or damaged, declaring more than ``max_bytes``, a malformed
    config, an array missing or of the wrong shape or dtype, weights that are not finite.
    """
    path = Path(path)
    check_int(max_bytes, "load_model: max_bytes", minimum=1)
    source = f"load_model: {path}"
    try:
        with NpzReader(path, max_bytes) as data:
            return _load(path, source, data, model_class, dict(custom_objects or {}), max_bytes)
    except NpzError as exc:
        raise ModelFileError(f"load_model: {exc}") from exc
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise ModelFileError(f"{source} is not a readable minicnn model file "
                             f"(a damaged or truncated .npz?): {exc}") from exc


def _load(path: Path, source: str, data: NpzReader, model_class: type[Sequential],
          custom_objects: dict[str, type], max_bytes: int) -> Sequential:
    if "__config__" not in data.names:
        raise ModelFileError(f"{source} is not a minicnn model file (it has no __config__)")
    config = _parse_json(str(data.read("__config__", "U", shape=(), max_bytes=MAX_CONFIG_BYTES)), source)
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ModelFileError(f"{source} is not a minicnn model file of format {FORMAT}")
    with _malformed(source, "the architecture"):
        model = _build(config["model"], source, model_class, custom_objects, max_bytes)

    def array(key: str, like: np.ndarray) -> np.ndarray:
        if key not in data.names:
            raise ModelFileError(f"{source} lacks the array {key!r}")
        stored = data.read(key, "f", shape=like.shape)  # the header is checked before the data are read
        if not np.isfinite(stored).all():
            raise ModelFileError(f"load_model: {key} in {path} holds NaN or infinite values")
        return stored.astype(like.dtype)

    for layer in model.layers:
        layer.params = {key: array(f"{layer.name}/{key}", value) for key, value in layer.params.items()}
        layer.state = {key: array(f"{layer.name}/state/{key}", value) for key, value in layer.state.items()}
    with _malformed(source, "the random generators"):
        states = config["rng"]
        if not isinstance(states, dict):
            raise TypeError(f"expected a dict {{layer name: generator state}}; got {reprlib.repr(states)}")
        layers = {layer.name: layer for layer in model.layers if hasattr(layer, "rng")}
        for name, state in states.items():
            if name not in layers:
                raise ValueError(f"{name!r} names no layer with a random generator")
            layers[name].rng.bit_generator.state = state
    with _malformed(source, "the compile settings"):
        if config["compile"] is not None:
            _compile(model, config["compile"], data, array, source, custom_objects)
    return model


def model_from_json(text: str, model_class: type[Sequential],
                    custom_objects: Mapping[str, type] | None = None, max_bytes: int = MAX_BYTES
                    ) -> Sequential:
    """The (untrained, uncompiled) ``model_class`` model whose architecture ``Sequential.to_json()`` wrote;
    ``custom_objects`` and ``max_bytes`` (on the weights the architecture creates) as in :func:`load_model`.
    Anything wrong with the text is a :class:`ModelFileError`."""
    check_int(max_bytes, "model_from_json: max_bytes", minimum=1)
    source = "model_from_json: the JSON"
    spec = _parse_json(text, source)
    if not isinstance(spec, dict) or spec.get("class_name") != "Sequential" or "config" not in spec:
        raise ModelFileError("model_from_json: expected the JSON of Sequential.to_json(), "
                             '{"class_name": "Sequential", "config": ...}')
    with _malformed(source, "the architecture"):
        return _build(spec["config"], source, model_class, dict(custom_objects or {}), max_bytes)


def _parse_json(text: str, source: str):
    """``text`` parsed as strict JSON (no NaN or Infinity); ModelFileError naming ``source`` otherwise."""
    def refuse(constant: str):
        raise ValueError(f"{constant} is not JSON")

    try:
        return json.loads(text, parse_constant=refuse)
    except RecursionError as exc:
        raise ModelFileError(f"{source} holds a config nested too deeply to be a model's") from exc
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"{source} holds a config that is not valid JSON: {exc}") from exc


@contextlib.contextmanager
def _malformed(source: str, part: str) -> Iterator[None]:
    """Turn what a malformed config raises, reading its ``part``, into a ModelFileError naming ``source``."""
    try:
        yield
    except (ModelFileError, NpzError):
        raise  # already naming the file and the problem
    except _MALFORMED as exc:
        if isinstance(exc, KeyError):
            problem = f"the key {exc.args[0]!r} is missing"
        elif isinstance(exc, RecursionError):
            problem = "it is nested too deeply"
        else:
            problem = f"{exc} ({type(exc).__name__})"
        raise ModelFileError(f"{source}: {part} in its config is malformed: {problem}") from exc


WEIGHTS_SUFFIX = ".weights.npz"


def save_weights(model: Sequential, path: str | os.PathLike) -> None:
    """Write every layer's params and state to ``path`` (ending in ``.weights.npz``), atomically.

    Arrays are keyed ``<layer>/<key>`` and ``<layer>/state/<key>``, as in :func:`save_model`;
    nothing else is stored (no architecture, no optimizer).
    """
    path = Path(path)
    if not path.name.endswith(WEIGHTS_SUFFIX):
        raise ValueError(f"save_weights: the file name must end in {WEIGHTS_SUFFIX!r} (minicnn's weights "
                         f"format; Keras' .weights.h5 is not written); got {path.name!r}")
    model._require_built("save_weights")
    arrays = {key: value for key, value in _weight_slots(model)}
    atomic_write(path, lambda f: np.savez(f, **arrays))


def load_weights(model: Sequential, path: str | os.PathLike) -> None:
    """Set ``model``'s weights from a file of :func:`save_weights`: every array of the model must be
    there with its shape, and nothing else; nothing is changed unless all of them fit. Each
    array's header is checked against the model before its data are read."""
    path = Path(path)
    model._require_built("load_weights")
    slots = dict(_weight_slots(model))
    try:
        with NpzReader(path, max_bytes=None) as data:  # each array is read only at its slot's shape
            if set(data.names) != slots.keys():
                raise ModelFileError(f"load_weights: {path} holds the arrays {sorted(data.names)}; the model "
                                     f"needs {sorted(slots)} (same layer names)")
            stored = {key: data.read(key, "f", shape=value.shape) for key, value in slots.items()}
    except NpzError as exc:
        raise ModelFileError(f"load_weights: {exc}; the model needs the shapes "
                             f"{ {key: value.shape for key, value in slots.items()} }") from exc
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise ModelFileError(f"load_weights: {path} is not a readable weights file: {exc}") from exc
    for key, value in stored.items():
        if not np.isfinite(value).all():
            raise ModelFileError(f"load_weights: {key} in {path} holds NaN or infinite values; the model "
                                 "needs finite floats")
    for layer in model.layers:
        for store, prefix in ((layer.params, ""), (layer.state, "state/")):
            for key in store:
                store[key] = stored[f"{layer.name}/{prefix}{key}"].astype(layer.dtype)


def _weight_slots(model: Sequential):
    for layer in model.layers:
        yield from ((f"{layer.name}/{key}", value) for key, value in layer.params.items())
        yield from ((f"{layer.name}/state/{key}", value) for key, value in layer.state.items())


def _find(registry: Registry, name: str, custom_objects: dict[str, type], source: str) -> type:
    """The class named ``name`` in ``custom_objects`` or else in ``registry``; ModelFileError otherwise."""
    if not isinstance(name, str):
        raise TypeError(f"{registry.kind} class names must be strings; got {reprlib.repr(name)}")
    if name in custom_objects:
        return custom_objects[name]
    if name not in registry:
        raise ModelFileError(f"{source} holds a {registry.kind} of unknown class {name!r}; minicnn "
                             f"knows {', '.join(registry.names())}. For a class of your own, pass "
                             f"custom_objects={{{name!r}: {name}}}")
    return registry.get(name)


def _build(spec: dict, source: str, model_class: type[Sequential], custom_objects: dict[str, type],
           max_bytes: int) -> Sequential:
    """The model ``spec`` describes, its sizes checked against ``max_bytes`` before any layer is built."""
    layers = [_instance(LAYERS, layer_spec, custom_objects, source) for layer_spec in _list(spec["layers"])]
    for layer in layers:
        if not isinstance(layer, Layer):
            raise TypeError(f"{type(layer).__name__} is not a minicnn layer")
    input_shape = _input_shape(spec["input_shape"])
    _check_sizes(layers, input_shape, source, max_bytes)
    model = model_class(name=spec["name"])
    for layer in layers:
        model.add(layer)
    if input_shape is not None:
        model.build((None, *input_shape))
    return model


def _instance(registry: Registry, class_spec: dict, custom_objects: dict[str, type], source: str):
    """An object of the class ``class_spec["class_name"]`` made from the keyword arguments in ``"config"``."""
    if not isinstance(class_spec, dict) or not isinstance(class_spec["config"], dict):
        raise TypeError(f'{registry.kind} entries must be {{"class_name": ..., "config": {{...}}}}; '
                        f"got {reprlib.repr(class_spec)}")
    config = {key: _custom(value, custom_objects) for key, value in class_spec["config"].items()}
    return _find(registry, class_spec["class_name"], custom_objects, source)(**config)


def _list(value) -> list:
    if not isinstance(value, list):
        raise TypeError(f"expected a list; got {reprlib.repr(value)}")
    return value


def _input_shape(value) -> tuple[int, ...] | None:
    """The model's input shape from its config: None or positive ints (no bools, no floats)."""
    if value is None:
        return None
    if not (isinstance(value, list) and value
            and all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in value)):
        raise ValueError(f"input_shape must be a list of positive ints; got {reprlib.repr(value)}")
    return tuple(value)


def _check_sizes(layers: list[Layer], input_shape: tuple[int, ...] | None, source: str,
                 max_bytes: int) -> None:
    """ModelFileError if the layers, once built, would hold more than ``max_bytes`` of weights, or one
    sample's values at some layer would; computed from the shapes alone, before anything is built."""
    shape = input_shape
    if layers and isinstance(layers[0], Input):
        shape = layers[0].shape  # Sequential.add builds with it at once
    elif layers and layers[0].declared_input_shape is not None:
        shape = layers[0].declared_input_shape
    if shape is None:
        return  # nothing gets built, so nothing is allocated
    weights = 0
    for layer in layers:
        if isinstance(layer, Input):
            continue  # Sequential.add refuses one that is not first
        output_shape = layer.compute_output_shape(shape)
        weights += layer.count_weights(shape)
        if weights * WEIGHT_BYTES > max_bytes:
            raise ModelFileError(f"{source}: its architecture would create {weights:,} weights "
                                 f"({weights * WEIGHT_BYTES:,} bytes) by {layer.label()}, more than "
                                 f"max_bytes={max_bytes:,}; nothing was built")
        for values in (shape, output_shape):
            if math.prod(values) * WEIGHT_BYTES > max_bytes:
                raise ModelFileError(f"{source}: one sample at {layer.label()} would have the shape "
                                     f"{values} ({math.prod(values) * WEIGHT_BYTES:,} bytes), more than "
                                     f"max_bytes={max_bytes:,}; nothing was built")
        shape = output_shape


def _custom(value, custom_objects: dict[str, type]):
    """A setting of a layer's config: a ``{"class_name", "config"}`` dict naming a class of ``custom_objects``
    (a regularizer of one's own) becomes an instance of it, ``from_config``; anything else stays as it is."""
    if isinstance(value, dict) and value.get("class_name") in custom_objects:
        return custom_objects[value["class_name"]].from_config(value.get("config") or {})
    return value


def _compile_config(model: Sequential) -> dict[str, Any] | None:
    if model.optimizer is None:
        return None
    optimizer = model.optimizer
    return {"optimizer": {"class_name": type(optimizer).__name__, "config": optimizer.get_config(),
                          "iterations": optimizer.iterations},
            "loss": None if model.loss is None else {"class_name": type(model.loss).__name__,
                                                     "config": model.loss.get_config()},
            "metrics": [metrics_module.serialize(m) for m in model.metrics],
            "implementation": model.implementation}


def _compile(model: Sequential, spec: dict, data: NpzReader, array, source: str,
             custom_objects: dict[str, type]) -> None:
    optimizer = _instance(OPTIMIZERS, spec["optimizer"], custom_objects, source)
    loss = spec["loss"] and _instance(LOSSES, spec["loss"], custom_objects, source)
    metrics = [metrics_module.get(m) if isinstance(m, str)  # a name: older files
               else _instance(METRICS, m, custom_objects, source) for m in _list(spec["metrics"])]
    model.compile(optimizer, loss=loss, metrics=metrics,
                  implementation=spec["implementation"] if "implementation" in spec else spec["kernels"])
    optimizer.iterations = check_int(spec["optimizer"]["iterations"], "the optimizer's iterations", minimum=0)
    params = {name: param for name, param, _ in _all_parameters(model)}
    for key in data.names:
        if key.startswith("optimizer/"):
            name, slot = key[len("optimizer/"):].rsplit("/", 1)
            if name not in params:
                raise ModelFileError(f"{source}: optimizer state {key!r} names no parameter of the model")
            optimizer.state.setdefault(name, {})[slot] = array(key, params[name])


def _all_parameters(model: Sequential):
    for layer in model.layers:
        for key, param in layer.params.items():
            yield f"{layer.name}/{key}", param, None
