"""Saving a model to one ``.npz`` file and loading it back, ready to go on training.

The file holds NumPy arrays and one JSON document, never pickled objects:

- ``<layer>/<key>``: each layer's parameters (``conv2d/kernel``, ...);
- ``<layer>/state/<key>``: each layer's non-trainable state (moving statistics, ...);
- ``optimizer/<parameter>/<slot>``: the optimizer's per-parameter state (Adam's ``m`` and ``v``);
- ``__config__``: JSON with the architecture (every layer's ``get_config()``), the compile
  settings (optimizer, loss, metrics, kernels), the optimizer's step count, and the state
  of every layer's random generator (Dropout's masks).

So :func:`minicnn.load_model` returns a model that continues training exactly where the
saved one stopped: the same weights, optimizer moments, step count and dropout masks.
Layers are found by class name in :attr:`minicnn.layers.Layer.registry`. This module
knows the file format, not the model class: ``Sequential.save`` and ``load_model`` (in
:mod:`minicnn.model`) call it, so the dependency runs one way.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from minicnn import losses, optimizers
from minicnn.files import atomic_write
from minicnn.layers import Layer

if TYPE_CHECKING:
    from minicnn.model import Sequential

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


def load_model(path: str | os.PathLike, model_class: type[Sequential]) -> Sequential:
    """Rebuild a ``model_class`` model saved by :func:`save_model`, compiled as it was if it was compiled.

    Raises :class:`ModelFileError` naming the file and what is wrong with it: not a
    minicnn model, truncated or damaged, an array missing or of the wrong shape or dtype,
    weights that are not finite.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            return _load(path, data, model_class)
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise ModelFileError(f"load_model: {path} is not a readable minicnn model file "
                             f"(a damaged or truncated .npz?): {exc}") from exc
    except ValueError as exc:
        if isinstance(exc, ModelFileError):
            raise
        raise ModelFileError(f"load_model: {path} is not a minicnn model file: {exc}") from exc


def _load(path: Path, data, model_class: type[Sequential]) -> Sequential:
    if not isinstance(data, np.lib.npyio.NpzFile) or "__config__" not in data.files:
        raise ModelFileError(f"load_model: {path} is not a minicnn model file (it has no __config__)")
    config = json.loads(str(data["__config__"]))
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ModelFileError(f"load_model: {path} is not a minicnn model file of format {FORMAT}")
    model = _build(config["model"], path, model_class)

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
        _compile(model, config["compile"], data, array)
    return model


def _build(spec: dict, path: Path, model_class: type[Sequential]) -> Sequential:
    model = model_class(name=spec["name"])
    for layer_spec in spec["layers"]:
        cls = Layer.registry.get(layer_spec["class_name"])
        if cls is None:
            raise ModelFileError(f"load_model: {path} holds a layer of unknown class "
                                 f"{layer_spec['class_name']!r}; known: {sorted(Layer.registry)}")
        model.add(cls(**layer_spec["config"]))
    if spec["input_shape"] is not None:
        model.build((None, *spec["input_shape"]))
    return model


def _compile_config(model: Sequential) -> dict[str, Any] | None:
    if model.optimizer is None:
        return None
    optimizer = model.optimizer
    return {"optimizer": {"class_name": type(optimizer).__name__, "config": optimizer.get_config(),
                          "iterations": optimizer.iterations},
            "loss": None if model.loss is None else {"class_name": type(model.loss).__name__,
                                                     "config": model.loss.get_config()},
            "metrics": model.metrics, "kernels": model.kernels}


def _compile(model: Sequential, spec: dict, data, array) -> None:
    optimizer_classes = {cls.__name__: cls for cls in optimizers.Optimizer.__subclasses__()}
    loss_classes = {cls.__name__: cls for cls in losses.Loss.__subclasses__()}
    optimizer = optimizer_classes[spec["optimizer"]["class_name"]](**spec["optimizer"]["config"])
    loss = spec["loss"] and loss_classes[spec["loss"]["class_name"]](**spec["loss"]["config"])
    model.compile(optimizer, loss=loss, metrics=spec["metrics"], kernels=spec["kernels"])
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
