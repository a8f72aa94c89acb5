"""``Input``: declares the per-sample input shape of a model."""

from __future__ import annotations

from minicnn.layers.base import Layer
from minicnn.registry import LAYERS

__all__ = ["Input"]


@LAYERS.register()
class Input(Layer):
    """Declares the per-sample input shape, e.g. ``Input((28, 28, 1))``; computes nothing."""

    default_name = "input_layer"
    docs_section = "the-layer-contract"

    def __init__(self, shape: tuple, name: str | None = None):
        super().__init__(name)
        self.shape = tuple(int(d) for d in shape)
        if not self.shape or any(d < 1 for d in self.shape):
            raise ValueError(f"{type(self).__name__}: shape must be positive sizes without the batch axis; "
                             f"got {shape}")

    def get_config(self) -> dict:
        return {"shape": self.shape, **super().get_config()}
