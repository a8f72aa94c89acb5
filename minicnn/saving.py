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
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from minicnn import metrics as metrics_module
from minicnn.files import atomic_write
from minicnn.registry import LAYERS, LOSSES, METRICS, OPTIMIZERS, Registry

if TYPE_CHECKING:
    from minicnn.models import Sequential

FORMAT = "minicnn.npz/1"
"""Written into every file, so :func:`load_model` can tell a minicnn model from any other ``.npz``."""


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
               custom_objects: Mapping[str, type] | None = None) -> Sequential:
    """Rebuild a ``model_class`` model saved by :func:`save_model`, compiled as it was if it was compiled.

    Classes are found by name in :mod:`minicnn.registry`; ``custom_objects`` adds classes of
    one's own by class name (``{"Scale": Scale}``), as Keras' ``custom_objects`` does.

    Raises :class:`ModelFileError` naming the file and what is wrong with it: not a
    minicnn model, truncated or damaged, an array missing or of the wrong shape or dtype,
    weights that are not finite.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            return _load(path, data, model_class, dict(custom_objects or {}))
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise ModelFileError(f"load_model: {path} is not a readable minicnn model file "
                             f"(a damaged or truncated .npz?): {exc}") from exc
    except ValueError as exc:
        if isinstance(exc, ModelFileError):
            raise
        raise ModelFileError(f"load_model: {path} is not a minicnn model file: {exc}") from exc


def _load(path: Path, data, model_class: type[Sequential], custom_objects: dict[str, type]) -> Sequential:
    if not isinstance(data, np.lib.npyio.NpzFile) or "__config__" not in data.files:
        raise ModelFileError(f"load_model: {path} is not a minicnn model file (it has no __config__)")
    config = json.loads(str(data["__config__"]))
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ModelFileError(f"load_model: {path} is not a minicnn model file of format {FORMAT}")
    model = _build(config["model"], path, model_class, custom_objects)

    def array(key: str, like: np.ndarray) -> np.ndarray:
        if key not in data.files:
            raise ModelFileError(f"load_model: {path} lacks the array {key!r}")
        stored = data[key]
        if stored.shape != like.shape or stored.dtype.kind != "f":
            raise ModelFileError(f"load_model: {key} in {path} is {stored.dtype} {stored.shape}; "
                                 f"the model needs floats of shape {like.shape}")
        if not np.isfinite(stored).all():
            raise ModelFileError(f"load_model: {key} in {path} holds NaN or infinite values")
        return stored.astype(like.dtype)

    for layer in model.layers:
        layer.params = {key: array(f"{layer.name}/{key}", value) for key, value in layer.params.items()}
        layer.state = {key: array(f"{layer.name}/state/{key}", value) for key, value in layer.state.items()}
        if layer.name in config["rng"]:
            layer.rng.bit_generator.state = config["rng"][layer.name]
    if config["compile"] is not None:
        _compile(model, config["compile"], data, array, path, custom_objects)
    return model


def model_from_json(text: str, model_class: type[Sequential],
                    custom_objects: Mapping[str, type] | None = None) -> Sequential:
    """The (untrained, uncompiled) ``model_class`` model whose architecture ``Sequential.to_json()`` wrote;
    ``custom_objects`` as in :func:`load_model`."""
    spec = json.loads(text)
    if not isinstance(spec, dict) or spec.get("class_name") != "Sequential" or "config" not in spec:
        raise ValueError("model_from_json: expected the JSON of Sequential.to_json(), "
                         '{"class_name": "Sequential", "config": ...}')
    return _build(spec["config"], Path("<json>"), model_class, dict(custom_objects or {}))


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
    there with its shape, and nothing else; nothing is changed unless all of them fit."""
    path = Path(path)
    model._require_built("load_weights")
    try:
        with np.load(path, allow_pickle=False) as data:
            stored = {key: data[key] for key in data.files}
    except (zipfile.BadZipFile, EOFError, ValueError) as exc:
        raise ModelFileError(f"load_weights: {path} is not a readable weights file: {exc}") from exc
    slots = dict(_weight_slots(model))
    if stored.keys() != slots.keys():
        raise ModelFileError(f"load_weights: {path} holds the arrays {sorted(stored)}; the model needs "
                             f"{sorted(slots)} (same layer names)")
    for key, value in stored.items():
        if value.shape != slots[key].shape or value.dtype.kind != "f" or not np.isfinite(value).all():
            raise ModelFileError(f"load_weights: {key} in {path} is {value.dtype} {value.shape}; the model "
                                 f"needs finite floats of shape {slots[key].shape}")
    for layer in model.layers:
        for store, prefix in ((layer.params, ""), (layer.state, "state/")):
            for key in store:
                store[key] = stored[f"{layer.name}/{prefix}{key}"].astype(layer.dtype)


def _weight_slots(model: Sequential):
    for layer in model.layers:
        yield from ((f"{layer.name}/{key}", value) for key, value in layer.params.items())
        yield from ((f"{layer.name}/state/{key}", value) for key, value in layer.state.items())


def _find(registry: Registry, name: str, custom_objects: dict[str, type], path: Path) -> type:
    """The class named ``name`` in ``custom_objects`` or else in ``registry``; ModelFileError otherwise."""
    if name in custom_objects:
        return custom_objects[name]
    if name not in registry:
        raise ModelFileError(f"load_model: {path} holds a {registry.kind} of unknown class {name!r}; minicnn "
                             f"knows {', '.join(registry.names())}. For a class of your own, pass "
                             f"custom_objects={{{name!r}: {name}}}")
    return registry.get(name)


def _build(spec: dict, path: Path, model_class: type[Sequential], custom_objects: dict[str, type]
           ) -> Sequential:
    model = model_class(name=spec["name"])
    for layer_spec in spec["layers"]:
        cls = _find(LAYERS, layer_spec["class_name"], custom_objects, path)
        model.add(cls(**{key: _custom(value, custom_objects) for key, value in layer_spec["config"].items()}))
    if spec["input_shape"] is not None:
        model.build((None, *spec["input_shape"]))
    return model


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


def _compile(model: Sequential, spec: dict, data, array, path: Path, custom_objects: dict[str, type]) -> None:
    def instance(registry: Registry, class_spec: dict):
        return _find(registry, class_spec["class_name"], custom_objects, path)(**class_spec["config"])

    optimizer = instance(OPTIMIZERS, spec["optimizer"])
    loss = spec["loss"] and instance(LOSSES, spec["loss"])
    metrics = [metrics_module.get(m) if isinstance(m, str) else instance(METRICS, m)  # a name: older files
               for m in spec["metrics"]]
    model.compile(optimizer, loss=loss, metrics=metrics,
                  implementation=spec["implementation"] if "implementation" in spec else spec["kernels"])
    optimizer.iterations = int(spec["optimizer"]["iterations"])
    params = {name: param for name, param, _ in _all_parameters(model)}
    for key in data.files:
        if key.startswith("optimizer/"):
            name, slot = key[len("optimizer/"):].rsplit("/", 1)
            if name not in params:
                raise ModelFileError(f"load_model: optimizer state {key!r} names no parameter of the model")
            optimizer.state.setdefault(name, {})[slot] = array(key, params[name])


def _all_parameters(model: Sequential):
    for layer in model.layers:
        for key, param in layer.params.items():
            yield f"{layer.name}/{key}", param, None
