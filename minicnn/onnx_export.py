"""ONNX export: a ``Sequential`` model as an ONNX graph (``model.export(path, format="onnx")``).

The graph is built with the ``onnx`` package (the ``onnx`` extra), one node (or a few) per
layer, the weights as initializers, and checked with ``onnx.checker`` before it is written
(atomically). Its input ``input`` has the model's input shape with a free batch axis,
(N, H, W, C) for images, and its output ``output`` the model's output shape: it computes
what ``model.predict`` computes (inference: dropout off, batch normalization on its moving
statistics).

minicnn is channels-last (N, H, W, C); ONNX's ``Conv`` and pooling operators are
channels-first (N, C, H, W). The graph transposes an image to (N, C, H, W) once, at the
first layer that needs it, and keeps it so: element-wise layers work in either layout, a
softmax or batch normalization of images is told its channel axis is 1. ``Flatten``
transposes back to (N, H, W, C) before it flattens, so that the vector's order is
minicnn's (and Keras') and the next ``Dense`` kernel applies unchanged; an image output is
transposed back at the end.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from minicnn.files import atomic_write
from minicnn.layers import (
    Activation,
    AveragePooling2D,
    BatchNormalization,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAveragePooling2D,
    Layer,
    LeakyReLU,
    MaxPooling2D,
    ReLU,
    Softmax,
)

__all__ = ["OPSET", "export_onnx", "to_onnx"]

OPSET = 17
"""The ONNX operator set the graph uses (every operator here has had its current form since 13)."""

IR_VERSION = 8
"""The ONNX file format version that goes with :data:`OPSET` 17, which onnxruntime 1.12 and later read."""

TO_CHANNELS_FIRST = [0, 3, 1, 2]
TO_CHANNELS_LAST = [0, 2, 3, 1]

ACTIVATION_OPS = {None: None, "linear": None, "relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh",
                  "softmax": "Softmax"}
"""minicnn's activations by name (:mod:`minicnn.activations`) and the ONNX operator of each."""


@dataclass
class _Graph:
    """The graph as it grows: its nodes and initializers, and the tensor the next layer reads."""

    tensor: str
    """The name of the current tensor (the last layer's output)."""
    rank: int
    """Its rank, with the batch axis."""
    channels_first: bool = False
    """True while an image is held as (N, C, H, W)."""
    nodes: list = field(default_factory=list)
    initializers: list = field(default_factory=list)

    def add(self, op: str, inputs: list[str], name: str, **attributes) -> None:
        """A node ``name`` computing ``op`` on the current tensor (and ``inputs``); its output
        becomes the current tensor."""
        self.nodes.append(helper.make_node(op, [self.tensor, *inputs], [name], name=name, **attributes))
        self.tensor = name

    def constant(self, name: str, value: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value, dtype=np.float32), name))
        return name

    def to_channels_first(self, name: str) -> None:
        if not self.channels_first:
            self.add("Transpose", [], f"{name}/to_nchw", perm=TO_CHANNELS_FIRST)
            self.channels_first = True

    def to_channels_last(self, name: str) -> None:
        if self.channels_first:
            self.add("Transpose", [], f"{name}/to_nhwc", perm=TO_CHANNELS_LAST)
            self.channels_first = False

    @property
    def channel_axis(self) -> int:
        return 1 if self.channels_first else -1


def to_onnx(model) -> onnx.ModelProto:
    """The ONNX model of a built minicnn ``Sequential`` ``model`` in float32, checked by ``onnx.checker``.

    Raises a ValueError naming the layer for a layer class that has no ONNX form here (a layer
    of one's own), and for a model that is not built or not float32.
    """
    if not model.built:
        raise ValueError("export: the model is not built yet; start it with an Input layer "
                         "or call build((None, *input_shape))")
    if model.dtype != np.float32:
        raise ValueError(f"export: ONNX export writes float32 models; this one is {model.dtype} "
                         "(model.astype(np.float32) converts it)")
    taken = [layer.name for layer in model.layers if layer.name in ("input", "output")]
    if taken:
        raise ValueError(f"export: the graph's input and output are called 'input' and 'output'; rename "
                         f"the layers called {taken}")
    graph = _Graph("input", 1 + len(model.input_shape))
    for layer in model.layers:
        _add_layer(graph, layer)
    graph.to_channels_last("output")
    graph.nodes.append(helper.make_node("Identity", [graph.tensor], ["output"], name="output"))
    batch = ["N"]
    onnx_graph = helper.make_graph(
        graph.nodes, model.name,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [*batch, *model.input_shape])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [*batch, *model.output_shape])],
        graph.initializers)
    proto = helper.make_model(onnx_graph, producer_name="minicnn",
                              opset_imports=[helper.make_opsetid("", OPSET)])
    proto.ir_version = IR_VERSION
    onnx.checker.check_model(proto, full_check=True)
    return proto


def export_onnx(model, path: str | os.PathLike) -> None:
    """Write :func:`to_onnx` of ``model`` to ``path`` (an ``.onnx`` file), atomically."""
    proto = to_onnx(model)
    atomic_write(path, lambda f: f.write(proto.SerializeToString()))


def _add_layer(graph: _Graph, layer: Layer) -> None:
    """Append the nodes of ``layer`` (exact class match: a subclass may change the maths)."""
    name = layer.name
    kind = type(layer)
    if kind is Conv2D:
        graph.to_channels_first(name)
        # ONNX's kernel layout is (F, C, KH, KW); minicnn's (KH, KW, C, F)
        kernel = graph.constant(f"{name}/kernel", layer.params["kernel"].transpose(3, 2, 0, 1))
        bias = [graph.constant(f"{name}/bias", layer.params["bias"])] if layer.use_bias else []
        top, bottom, left, right = layer.pads
        graph.add("Conv", [kernel, *bias], f"{name}/convolution", kernel_shape=list(layer.kernel_size),
                  strides=list(layer.strides), pads=[top, left, bottom, right])
        _add_activation(graph, layer.activation, name)
    elif kind is Dense:
        kernel = graph.constant(f"{name}/kernel", layer.params["kernel"])
        bias = graph.constant(f"{name}/bias", layer.params["bias"])
        graph.add("Gemm", [kernel, bias], f"{name}/affine")
        _add_activation(graph, layer.activation, name)
    elif kind is MaxPooling2D:
        graph.to_channels_first(name)
        graph.add("MaxPool", [], name, kernel_shape=[layer.pool_size] * 2, strides=[layer.strides] * 2)
    elif kind is AveragePooling2D:
        graph.to_channels_first(name)
        graph.add("AveragePool", [], name, kernel_shape=list(layer.pool_size), strides=list(layer.strides))
    elif kind is GlobalAveragePooling2D:
        graph.to_channels_first(name)
        graph.add("GlobalAveragePool", [], f"{name}/mean")  # (N, C, 1, 1)
        graph.add("Flatten", [], name, axis=1)
        graph.channels_first, graph.rank = False, 2
    elif kind is BatchNormalization:
        _add_batch_normalization(graph, layer)
    elif kind is Flatten:
        graph.to_channels_last(name)
        graph.add("Flatten", [], name, axis=1)
        graph.rank = 2
    elif kind is Dropout:
        graph.add("Identity", [], name)  # inference: the identity
    elif kind in (Activation, ReLU, Softmax):
        _add_activation(graph, layer.activation, name, always=True)
    elif kind is LeakyReLU:
        graph.add("LeakyRelu", [], name, alpha=layer.negative_slope)
    else:
        raise ValueError(f"export: {layer.label()} has no ONNX form; ONNX export covers minicnn's own "
                         "layers: Conv2D, Dense, MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D, "
                         "BatchNormalization, Dropout, Flatten, Activation, ReLU, LeakyReLU and Softmax")


def _add_activation(graph: _Graph, activation: str | None, name: str, always: bool = False) -> None:
    """The node of ``activation`` (none for ``linear``/None, unless ``always``: an Identity, so
    that an activation layer keeps its name in the graph)."""
    op = ACTIVATION_OPS[activation]
    if op == "Softmax":  # over minicnn's last axis, the channels
        graph.add(op, [], name, axis=graph.channel_axis)
    elif op is not None:
        graph.add(op, [], name)
    elif always:
        graph.add("Identity", [], name)


def _add_batch_normalization(graph: _Graph, layer: BatchNormalization) -> None:
    """Inference form, on the moving statistics: ONNX's ``BatchNormalization`` normalises axis 1,
    the channels of (N, C) vectors and of (N, C, H, W) images."""
    name = layer.name
    if graph.rank == 4:
        graph.to_channels_first(name)
    elif graph.rank != 2:
        raise ValueError(f"export: {layer.label()} on inputs of shape {layer.input_shape} has no ONNX form "
                         "here; ONNX export covers BatchNormalization of images (H, W, C) and vectors (D,)")
    statistics = [graph.constant(f"{name}/{key}", values) for key, values in
                  (("gamma", layer.params["gamma"]), ("beta", layer.params["beta"]),
                   ("moving_mean", layer.state["moving_mean"]),
                   ("moving_variance", layer.state["moving_variance"]))]
    graph.add("BatchNormalization", statistics, name, epsilon=layer.epsilon)
