"""``Sequential``: a stack of layers, and the maths of one training step through it.

The model holds its layers and builds them (``add``, ``build``, ``get_layer``), their weights
(``get_weights``, ``set_weights``, ``count_params``), its steps (the layers, or in the fast
implementation fused runs of them, :mod:`minicnn.fused`) and the forward and backward pass
through them (``compute_loss_and_gradients``: forward through every step, the loss on the
logits, backward through every step in reverse; ``docs/backprop.md#the-training-step``).
It saves and loads through :mod:`minicnn.saving` and prints its table through
:mod:`minicnn.models.summary`. Keras' verbs that train and use it, ``compile``, ``fit``,
``evaluate``, ``predict``, it inherits from :class:`minicnn.trainers.trainer.Trainer`.

Which implementation runs is the model's explicit choice: ``compile(..., implementation="reference")``
pins it; with ``implementation=None`` (the default) the model follows the active one
(``with minicnn.implementation.use(...)``, ``MINICNN_IMPLEMENTATION``; fast unless told otherwise).
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from collections.abc import Callable, Iterator

import numpy as np

from minicnn import fused, losses, saving
from minicnn.implementation import use as use_implementation
from minicnn.layers import Input, Layer
from minicnn.layers.base import Step
from minicnn.models.summary import print_summary
from minicnn.trainers.trainer import Trainer

__all__ = ["Sequential", "load_model", "model_from_json"]


class Sequential(Trainer):
    """A linear stack of layers, e.g. ``Sequential([Input((28, 28, 1)), Conv2D(32, 3), ...])``.

    The model is built (shapes fixed, weights created) as soon as the input
    shape is known: from a leading ``Input`` layer, ``build()``, or the first
    data it sees. Layers get Keras' names (``conv2d``, ``conv2d_1``, ...) unless named.
    """

    def __init__(self, layers: list[Layer] | None = None, name: str = "sequential"):
        super().__init__()
        self.name = name
        self.layers: list[Layer] = []
        self.input_shape: tuple | None = None
        self.implementation: str | None = None
        """``"fast"`` or ``"reference"`` as :meth:`compile` chose; None follows the active one."""
        for layer in layers or []:
            self.add(layer)

    # ------------------------------------------------------------------ structure

    def add(self, layer: Layer) -> None:
        """Append a layer (an ``Input``, or a layer given ``input_shape=``, only as the first one)."""
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add: expected a minicnn layer; got {type(layer).__name__}")
        if isinstance(layer, Input):
            if self.layers or self.input_shape is not None:
                raise ValueError("Sequential.add: an Input layer can only come first")
            self.build((None, *layer.shape))
            return
        taken = {existing.name for existing in self.layers}
        if any(layer is existing for existing in self.layers):
            raise ValueError(f"Sequential.add: {layer.label()} is in the model already")
        if layer.name is None:
            layer.name = _unique_name(layer.default_name, taken)
        elif layer.name in taken:
            raise ValueError(f"Sequential.add: the model has a layer named {layer.name!r} already; "
                             "layer names must be unique (they key the saved weights)")
        if layer.declared_input_shape is not None:
            if self.layers or self.input_shape is not None:
                raise ValueError(f"Sequential.add: {layer.label()} was given input_shape="
                                 f"{layer.declared_input_shape}, but only the first layer can declare the "
                                 "model's input shape")
            self.input_shape = layer.declared_input_shape
        self.layers.append(layer)
        if self.input_shape is not None:
            self._build_layers()

    def build(self, input_shape: tuple) -> None:
        """Fix the input shape, Keras-style with the batch axis: ``build((None, 28, 28, 1))``."""
        self.input_shape = tuple(int(d) for d in input_shape[1:])
        self._build_layers()

    def _build_layers(self) -> None:
        shape = self.input_shape
        for layer in self.layers:
            if not layer.built:
                layer.build(shape)
            elif layer.input_shape != shape:
                raise ValueError(f"{layer.label()}: built for inputs {layer.input_shape}, "
                                 f"but the previous layer gives {shape}")
            shape = layer.output_shape

    @property
    def built(self) -> bool:
        return self.input_shape is not None

    def _require_built(self, verb: str) -> None:
        if not self.built:
            raise ValueError(f"{verb}: the model is not built yet; start it with an Input layer "
                             "or call build((None, *input_shape))")

    @property
    def output_shape(self) -> tuple:
        return self.layers[-1].output_shape if self.layers else self.input_shape

    def count_params(self) -> int:
        """Every layer's parameters and state (moving statistics), as Keras' ``count_params``."""
        return sum(layer.count_params() for layer in self.layers)

    def get_layer(self, name: str | None = None, index: int | None = None) -> Layer:
        """The layer called ``name``, or at position ``index``, as Keras' ``get_layer``."""
        if (name is None) == (index is None):
            raise ValueError("get_layer: pass either name or index")
        if index is not None:
            if not -len(self.layers) <= index < len(self.layers):
                raise ValueError(f"get_layer: index {index} is out of range for {len(self.layers)} layers")
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"get_layer: no layer named {name!r}; the layers are "
                         f"{[layer.name for layer in self.layers]}")

    def get_weights(self) -> list[np.ndarray]:
        """Copies of every layer's weights, layer by layer, in Keras' order: its parameters
        (kernel then bias; gamma then beta), then its state (moving mean then moving variance)."""
        return [w.copy() for layer in self.layers for w in layer.get_weights()]

    def set_weights(self, weights: list[np.ndarray]) -> None:
        """Set every layer's weights from a list in the order of :meth:`get_weights` (Keras' order)."""
        counts = [len(layer.weights) for layer in self.layers]
        if len(weights) != sum(counts):
            raise ValueError(f"set_weights: the model has {sum(counts)} weight arrays; got {len(weights)}")
        start = 0
        for layer, count in zip(self.layers, counts, strict=True):
            layer.set_weights(weights[start:start + count])
            start += count

    def astype(self, dtype) -> Sequential:
        """Convert every layer's parameters to ``dtype`` in place (float64 for gradient checks)."""
        for layer in self.layers:
            layer.astype(dtype)
        return self

    @property
    def dtype(self) -> np.dtype:
        return next((layer.dtype for layer in self.layers if layer.params), np.dtype(np.float32))

    def summary(self, print_fn: Callable[[str], None] = print) -> None:
        """Print the layer table Keras prints: name (type), output shape, parameter count
        (:func:`minicnn.models.summary.print_summary`)."""
        self._require_built("summary")
        print_summary(self, print_fn)

    # ------------------------------------------------------------------ forward and backward

    def steps(self, input_gradient: bool = True) -> list[Step]:
        """The steps that run the layers (:func:`minicnn.fused.planner.plan`): each Conv2D with the
        BatchNormalization, activation, pooling and Dropout that follow it becomes one fused step, which
        on the reference path runs its layers one by one; every other layer is a step of its own. Every
        step keeps the layer contract. ``minicnn.fused.describe(model.steps())`` prints the plan."""
        return fused.plan(self.layers, input_gradient)

    def implementation_context(self) -> contextlib.AbstractContextManager:
        """A context in which this model's computations run: its own implementation, else the active one."""
        return use_implementation(self.implementation) if self.implementation else contextlib.nullcontext()

    def path(self) -> contextlib.AbstractContextManager:
        """Deprecated: the old name of :meth:`implementation_context`."""
        warnings.warn("Sequential.path() is deprecated: use Sequential.implementation_context()",
                      DeprecationWarning, stacklevel=2)
        return self.implementation_context()

    @property
    def kernels(self) -> str | None:
        """Deprecated: the old name of :attr:`implementation`."""
        warnings.warn("Sequential.kernels is deprecated: use Sequential.implementation",
                      DeprecationWarning, stacklevel=2)
        return self.implementation

    @kernels.setter
    def kernels(self, value: str | None) -> None:
        warnings.warn("Sequential.kernels is deprecated: use Sequential.implementation",
                      DeprecationWarning, stacklevel=2)
        self.implementation = value

    @property
    def ends_in_softmax(self) -> bool:
        return bool(self.layers) and getattr(self.layers[-1], "activation", None) == "softmax"

    def __call__(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """The model's output for a batch ``x`` of shape ``(N, *input_shape)``."""
        with self.implementation_context():
            for step in self.steps():
                x = step.forward(x, training)
        return x

    def logits(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """What the loss reads, for a batch ``x``: shape (N, K).

        The input of the final softmax when the model ends in one (the loss fuses the
        two), else the model's output (logits, for a loss with ``from_logits=True``).
        """
        with self.implementation_context():
            return self._logits(self.steps(), x, training)

    def _logits(self, steps: list[Step], x: np.ndarray, training: bool) -> np.ndarray:
        *body, last = steps
        for step in body:
            x = step.forward(x, training)
        return last.forward_affine(x, training) if self.ends_in_softmax else last.forward(x, training)

    def compute_loss_and_gradients(self, x: np.ndarray, y: np.ndarray, input_gradient: bool = True,
                                   sample_weight: np.ndarray | None = None
                                   ) -> tuple[float, np.ndarray, np.ndarray | None]:
        """One forward and backward pass in training mode; fills every layer's ``grads``.

        x: ``(N, *input_shape)``, y: one-hot (N, K). The loss is the cross-entropy on the
        logits ``z`` (:meth:`logits`); a final softmax is fused with it, so
        ``dz = (p - y) / N`` enters that layer's affine part directly. Returns
        ``(loss, z, dx)``: the mean loss plus the weight penalties (:meth:`regularization_loss`; their
        gradients join ``grads``), the logits (N, K) and the gradient
        of the loss with respect to ``x`` (None if ``input_gradient=False``,
        which lets training skip work nobody uses). ``sample_weight`` (N,) scales
        each sample's loss (see :func:`minicnn.losses.softmax_cross_entropy`).
        """
        loss_fn = self.loss or losses.CategoricalCrossentropy(from_logits=not self.ends_in_softmax)
        with self.implementation_context():
            steps = self.steps(input_gradient)
            z = self._logits(steps, x, training=True)
            loss, dz = loss_fn.loss_and_gradient(z, y, sample_weight)
            *body, last = steps
            dout = last.backward_affine(dz) if self.ends_in_softmax else last.backward(dz)
            for step in reversed(body):
                dout = step.backward(dout)
        loss += self.add_regularization_gradients()
        return loss, z, dout if input_gradient else None

    def regularization_loss(self) -> float:
        """The weight penalties of the trainable layers at their current weights, summed (Keras'
        ``sum(model.losses)``): what :meth:`compute_loss_and_gradients` adds to the data loss."""
        return float(sum(layer.regularization_loss() for layer in self.layers if layer.trainable))

    def regularization_gradients(self) -> dict[str, np.ndarray]:
        """The gradient of :meth:`regularization_loss` for each penalised parameter, by its name
        (``"dense/kernel"``)."""
        return {f"{layer.name}/{key}": grad for layer in self.layers if layer.trainable
                for key, grad in layer.regularization_gradients().items()}

    def add_regularization_gradients(self) -> float:
        """Add the weight penalties' gradients to the layers' ``grads`` (after a backward pass, in either
        implementation: the steps have filled every layer's ``grads``); return the penalty,
        :meth:`regularization_loss` (``docs/backprop.md#l2-regularisation``)."""
        for layer in self.layers:
            if layer.trainable:
                for key, grad in layer.regularization_gradients().items():
                    layer.grads = {**layer.grads, key: layer.grads[key] + grad}
        return self.regularization_loss()

    def parameters_and_gradients(self, trainable_only: bool = True
                                 ) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        """``(name, param, grad)`` for every parameter the optimizer updates, names like ``"conv2d/kernel"``.

        ``trainable_only=False`` includes the layers with ``trainable = False`` (for gradient checks).
        """
        for layer in self.layers:
            if layer.trainable or not trainable_only:
                for key, param in layer.params.items():
                    yield f"{layer.name}/{key}", param, layer.grads[key]

    # ------------------------------------------------------------------ saving

    def get_config(self) -> dict:
        return {"name": self.name, "input_shape": self.input_shape,
                "layers": [{"class_name": type(layer).__name__, "config": layer.get_config()}
                           for layer in self.layers]}

    def to_json(self, **kwargs) -> str:
        """The architecture as JSON, ``{"class_name": "Sequential", "config": ...}`` (no weights);
        :func:`minicnn.model_from_json` reads it back. ``kwargs`` go to ``json.dumps``."""
        return json.dumps({"class_name": "Sequential", "config": self.get_config()}, **kwargs)

    def save(self, path: str | os.PathLike) -> None:
        """Write the model to one ``.npz`` file, atomically: see :func:`minicnn.saving.save_model`."""
        saving.save_model(self, path)

    def save_weights(self, path: str | os.PathLike) -> None:
        """Write every layer's weights (params and state) to a ``.weights.npz`` file, atomically."""
        saving.save_weights(self, path)

    def load_weights(self, path: str | os.PathLike) -> None:
        """Set the weights from a file written by :meth:`save_weights` (same layer names and shapes)."""
        saving.load_weights(self, path)

    def export(self, filepath: str | os.PathLike, format: str | None = None, verbose: bool = True) -> None:
        """Write the model for inference elsewhere, as Keras 3's ``export``: ``format="onnx"`` (the one
        format minicnn writes) an ONNX file (:mod:`minicnn.onnx_export`, the ``onnx`` extra)."""
        if format != "onnx":
            raise ValueError(f"export: minicnn exports format='onnx' only; got format={format!r} (Keras' "
                             "'tf_saved_model' and 'openvino' need TensorFlow: minicnn.keras_compat."
                             "to_keras(model).export(...) exports from Keras)")
        try:
            from minicnn import onnx_export
        except ModuleNotFoundError as exc:
            if (exc.name or "").split(".")[0] != "onnx":
                raise
            raise ModuleNotFoundError("export(format='onnx') needs the onnx package: "
                                      "pip install 'minicnn[onnx]'", name="onnx") from None
        onnx_export.export_onnx(self, filepath)
        if verbose:
            print(f"Saved artifact at '{os.fspath(filepath)}'.")


def load_model(path: str | os.PathLike, custom_objects: dict[str, type] | None = None, *,
               max_bytes: int = saving.MAX_BYTES) -> Sequential:
    """Rebuild a model written by :meth:`Sequential.save`: architecture, weights, state, and the
    compile settings and optimizer state if it was compiled (:func:`minicnn.saving.load_model`).
    ``custom_objects``: classes of one's own that the file names, by class name (``{"Scale": Scale}``).
    ``max_bytes`` (1 GiB): the most the file's arrays and the model's weights may take, checked
    before anything is read or built; raise it for a larger model from a file you trust."""
    return saving.load_model(path, Sequential, custom_objects, max_bytes)


def model_from_json(text: str, custom_objects: dict[str, type] | None = None, *,
                    max_bytes: int = saving.MAX_BYTES) -> Sequential:
    """The (untrained, uncompiled) model whose architecture :meth:`Sequential.to_json` wrote;
    ``max_bytes`` caps its weights, checked before it is built."""
    return saving.model_from_json(text, Sequential, custom_objects, max_bytes)


def _unique_name(base: str, taken: set) -> str:
    name, i = base, 0
    while name in taken:
        i += 1
        name = f"{base}_{i}"
    return name
