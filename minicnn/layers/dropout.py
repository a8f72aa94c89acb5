"""``Dropout``: inverted dropout (``docs/backprop.md#dropout``)."""

from __future__ import annotations

import numpy as np

from minicnn.layers.base import Layer
from minicnn.registry import LAYERS
from minicnn.seeding import make_rng

__all__ = ["Dropout"]


@LAYERS.register()
class Dropout(Layer):
    """Inverted dropout: any shape in, same shape out.

    In training each value is kept with probability ``1 - rate`` and scaled by
    ``1 / (1 - rate)``, so the expected output equals the input and inference
    is the identity, with no rescaling. The mask is drawn from the layer's own
    generator ``rng`` (seeded by ``seed``; saved with the model), with ``rate``
    exact to 1/65536.
    """

    default_name = "dropout"
    docs_section = "dropout"
    keras_requires = {"noise_shape": None}

    def __init__(self, rate: float, seed: int | None = None, name: str | None = None,
                 input_shape: tuple | None = None):
        super().__init__(name, input_shape=input_shape)
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= rate < 1.0:
            raise ValueError(f"{type(self).__name__}: rate must be a number in [0, 1); got {rate!r}")
        self.rate = float(rate)
        self.seed = seed
        self.rng = make_rng(seed)

    def get_config(self) -> dict:
        return {"rate": self.rate, "seed": self.seed, **super().get_config()}

    def forward_pass(self, x: np.ndarray, training: bool) -> tuple[np.ndarray, dict | None]:
        if not training:
            return x, None
        mask = self.draw_mask(x.shape, x.dtype)
        return x * mask, {"mask": mask}

    def draw_mask(self, shape: tuple, dtype) -> np.ndarray:
        """A fresh mask: ``1 / (1 - rate)`` where a value is kept, 0 where it is dropped.

        Each value gets 16 random bits, cut from the generator's raw 64-bit
        output (several times faster than float uniforms), and is dropped when
        they are below ``round(rate * 65536)``: the rate is exact to 1/65536
        (0.25 and 0.5 exactly).
        """
        size = int(np.prod(shape))
        bits = self.rng.bit_generator.random_raw((size + 3) // 4).view(np.uint16)[:size]
        keep = bits.reshape(shape) >= round(self.rate * 65536)
        return keep * np.dtype(dtype).type(1.0 / (1.0 - self.rate))

    def backward_pass(self, dout: np.ndarray, cache: dict) -> tuple[np.ndarray, dict]:
        return dout * cache["mask"], {}

    def to_keras(self, keras_layers):
        return keras_layers.Dropout(self.rate, seed=self.seed, name=self.name)

    @classmethod
    def from_keras(cls, config: dict, activation: str | None) -> Dropout:
        return cls(config["rate"], seed=config["seed"], name=config["name"])
