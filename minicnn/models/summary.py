"""The table ``model.summary()`` prints, as Keras 3 prints it: each layer's name (type), output
shape and parameter count, then the totals of trainable and non-trainable parameters, in
numbers and bytes. Non-trainable: the parameters of layers with ``trainable = False``, and
every layer's state (moving statistics)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from minicnn.models import Sequential


def print_summary(model: Sequential, print_fn: Callable[[str], None] = print) -> None:
    """Pass the table of the (built) ``model``, as one string, to ``print_fn``."""
    rows = [(f"{layer.name} ({type(layer).__name__})", str((None, *layer.output_shape)),
             f"{layer.count_params():,}")
            for layer in model.layers]
    widths = (max(33, *(len(name) for name, _, _ in rows)), 26, 13)

    def line(left: str, mid: str, right: str, fill: str) -> str:
        return left + mid.join(fill * (w + 2) for w in widths) + right

    def row(cells: tuple[str, str, str], edge: str) -> str:
        name, shape, count = cells
        return (f"{edge} {name:<{widths[0]}} {edge} {shape:<{widths[1]}} "
                f"{edge} {count:>{widths[2]}} {edge}")

    trainable = [p for layer in model.layers if layer.trainable for p in layer.params.values()]
    frozen = [p for layer in model.layers for p in
              [*(() if layer.trainable else layer.params.values()), *layer.state.values()]]

    def count(arrays: list[np.ndarray]) -> str:
        return f"{sum(a.size for a in arrays):,} ({_format_bytes(sum(a.nbytes for a in arrays))})"

    out = [f'Model: "{model.name}"', line("┏", "┳", "┓", "━"),
           row(("Layer (type)", "Output Shape", "Param #"), "┃"), line("┡", "╇", "┩", "━")]
    out += [row(r, "│") for r in rows]
    out += [line("└", "┴", "┘", "─"),
            f" Total params: {count(trainable + frozen)}",
            f" Trainable params: {count(trainable)}",
            f" Non-trainable params: {count(frozen)}"]
    print_fn("\n".join(out))


def _format_bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.2f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")
