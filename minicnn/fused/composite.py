"""``FusedStep``: what every fused step shares, a run of layers with the contract of one layer.

A fused step is a :class:`~minicnn.layers.base.Step` over several layers: its parameters are
theirs, under the names the model gives them (``"conv2d/kernel"``); its gradients go back to
each layer (:meth:`FusedStep.set_grads`); its errors name the run (``fused step
"conv2d+batch_normalization+re_lu"``). On the reference implementation it runs its layers'
own forward and backward passes one by one, the code ``docs/backprop.md`` derives; a subclass
writes the fast implementation, ``_forward_fast`` and ``_backward_fast``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from minicnn import implementation
from minicnn.layers import Layer
from minicnn.layers.base import Step


class FusedStep(Step):
    """A run of layers computed as one step: their own passes (reference), or fused kernels (fast)."""

    input_gradient: bool
    """False for a model's first step in training: the fast implementation skips ``dx`` then."""

    @property
    def layers(self) -> list[Layer]:
        raise NotImplementedError

    @property
    def name(self) -> str:
        return "+".join(layer.name for layer in self.layers)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(layer.name for layer in self.layers)})"

    def label(self) -> str:
        return f'fused step "{self.name}"'

    @property
    def params(self) -> dict[str, np.ndarray]:
        """Every layer's parameters, under the names the model gives them: ``"conv2d/kernel"``."""
        return {f"{layer.name}/{key}": p for layer in self.layers for key, p in layer.params.items()}

    @property
    def grads(self) -> dict[str, np.ndarray]:
        return {f"{layer.name}/{key}": g for layer in self.layers for key, g in layer.grads.items()}

    def set_grads(self, grads: dict[str, np.ndarray]) -> None:
        """Check ``grads`` against ``params``, as a layer does, then hand each layer its own."""
        self.check_grads(grads)
        for layer in self.layers:
            layer.grads = {key: grads[f"{layer.name}/{key}"] for key in layer.params}

    def check_input(self, x: np.ndarray) -> None:
        """The first layer's checks of ``x`` (building it on first use), then the other layers built
        on first use too, each for its predecessor's output: the fast kernels read all their weights."""
        first, *rest = self.layers
        first.check_input(x)
        shape = first.output_shape
        for layer in rest:
            if not layer.built:
                layer.build(shape)
            shape = layer.output_shape

    def forward_pass(self, x: np.ndarray, training: bool) -> tuple[np.ndarray, dict]:
        """The layers' own forward passes (reference implementation), or the fused kernels (fast)."""
        if implementation.current() == "reference":
            for layer in self.layers:
                x = layer.forward(x, training)
            return x, {"implementation": "reference"}
        return self._forward_fast(x, training)

    def backward_pass(self, dout: np.ndarray, cache: dict) -> tuple[np.ndarray | None, dict]:
        """As the forward ran: the layers' own backward passes (reference), or the fused kernels (fast)."""
        if cache["implementation"] == "reference":
            for layer in reversed(self.layers):
                dout = layer.backward(dout)
            return dout, self.grads
        return self._backward_fast(dout, cache)

    def _forward_fast(self, x: np.ndarray, training: bool) -> tuple[np.ndarray, dict]:
        raise NotImplementedError

    def _backward_fast(self, dout: np.ndarray, cache: dict) -> tuple[np.ndarray | None, dict]:
        raise NotImplementedError


class DeferredCache(dict):
    """A layer cache some of whose entries are computed only when first read."""

    def __init__(self, ready: dict[str, Any], **deferred: Callable[[], Any]):
        super().__init__(ready)
        self._deferred = deferred

    def __missing__(self, key: str) -> Any:
        if key not in self._deferred:
            raise KeyError(key)
        value = self[key] = self._deferred.pop(key)()
        return value
