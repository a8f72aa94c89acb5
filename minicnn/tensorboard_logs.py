"""TensorBoard event files, written with the ``tensorboard`` package (the ``tensorboard`` extra).

:class:`EventWriter` writes one run folder's event file (``logs/train``, ``logs/validation``):
scalars, histograms and images, each a summary built by TensorBoard's own functions
(``scalar_pb``, ``histogram_pb``, the image plugin's metadata) in the form ``tf.summary``
writes (a tensor with its plugin's metadata), as ``Event`` protos framed by TensorBoard's
``RecordWriter``. Nothing here encodes protobuf by hand. An event file is a stream that
grows while training runs (TensorBoard reads it live), so it is appended to, not written
atomically as minicnn's other files are.

:func:`filter_grid` draws a Conv2D kernel (:func:`first_conv2d`'s) as one image, for
:class:`minicnn.callbacks.TensorBoard`.
"""

from __future__ import annotations

import io
import math
import os
import socket
import time
import uuid
from pathlib import Path

import numpy as np
from PIL import Image
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins.histogram.summary_v2 import histogram_pb
from tensorboard.plugins.image import metadata as image_metadata
from tensorboard.plugins.scalar.summary_v2 import scalar_pb
from tensorboard.summary.writer.record_writer import RecordWriter
from tensorboard.util import tensor_util

from minicnn.layers import Conv2D

__all__ = ["EventWriter", "event_file_name", "filter_grid", "first_conv2d"]


def event_file_name() -> str:
    """A new event file's name as TensorBoard's writers make them (``events.out.tfevents.<time>.<host>...``),
    unique: ordered by the time, then a random part."""
    host, pid, unique = socket.gethostname(), os.getpid(), uuid.uuid4().hex
    return f"events.out.tfevents.{int(time.time()):010d}.{host}.{pid}.{unique}"


class EventWriter:
    """One event file, ``path``, appended to: made (with its version record) if new, else continued.

    Each call adds a summary at ``step``, written through at once (no background thread). A
    callback that runs over several ``fit`` calls (one epoch each, as the k-fold example's
    checkpointed training does) reopens its file and appends, so that a run folder holds one
    file whose steps grow, which TensorBoard reads in order.
    """

    def __init__(self, path: str | os.PathLike):
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        new = not path.exists()
        self.records = RecordWriter(open(path, "ab"))  # closed by close()
        if new:
            self._write(event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2"))

    def scalar(self, tag: str, value: float, step: int) -> None:
        self._add(scalar_pb(tag, np.float32(value)), step)

    def histogram(self, tag: str, values: np.ndarray, step: int) -> None:
        """The histogram of ``values`` (any shape) in TensorBoard's 30 equal buckets."""
        self._add(histogram_pb(tag, values), step)

    def image(self, tag: str, image: np.ndarray, step: int) -> None:
        """One uint8 image, (H, W) grey or (H, W, 3) RGB, as a PNG."""
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG")
        height, width = image.shape[:2]
        tensor = tensor_util.make_tensor_proto([str(width).encode(), str(height).encode(), buffer.getvalue()])
        summary = summary_pb2.Summary()
        metadata = image_metadata.create_summary_metadata(display_name=None, description=None)
        summary.value.add(tag=tag, tensor=tensor, metadata=metadata)
        self._add(summary, step)

    def _add(self, summary: summary_pb2.Summary, step: int) -> None:
        self._write(event_pb2.Event(wall_time=time.time(), step=int(step), summary=summary))

    def _write(self, event: event_pb2.Event) -> None:
        self.records.write(event.SerializeToString())
        self.records.flush()

    def close(self) -> None:
        self.records.close()


def first_conv2d(model) -> Conv2D | None:
    """The model's first Conv2D layer, whose filters :func:`filter_grid` draws; None if it has none."""
    return next((layer for layer in model.layers if isinstance(layer, Conv2D)), None)


GAP_COLOUR = (40, 90, 160)
"""The colour between the filters (and of empty cells): blue, which no grey weight takes."""


def filter_grid(kernel: np.ndarray, zoom: int = 8, gap: int = 2) -> np.ndarray:
    """A Conv2D ``kernel`` (KH, KW, C, F) as one uint8 RGB image: the F filters in grey, in a grid of
    ``ceil(sqrt(F))`` columns, each filter its C channels side by side (KH, KW * C), each weight a
    ``zoom`` x ``zoom`` square, ``gap`` pixels of :data:`GAP_COLOUR` between filters.

    One scale for the whole kernel, its minimum black and its maximum white (all mid-grey if
    constant), so that filters compare by brightness.
    """
    kh, kw, c, f = kernel.shape
    low, high = float(kernel.min()), float(kernel.max())
    scaled = (kernel - low) / (high - low) if high > low else np.full(kernel.shape, 0.5)
    cells = np.round(scaled * 255).astype(np.uint8)
    cells = cells.transpose(3, 0, 2, 1).reshape(f, kh, c * kw)  # filter, row, (channel, column)
    cells = cells.repeat(zoom, axis=1).repeat(zoom, axis=2)
    columns = math.ceil(math.sqrt(f))
    rows = math.ceil(f / columns)
    cell_h, cell_w = cells.shape[1:]
    grid = np.empty((rows * (cell_h + gap) - gap, columns * (cell_w + gap) - gap, 3), np.uint8)
    grid[...] = GAP_COLOUR
    for index, cell in enumerate(cells):
        top, left = (index // columns) * (cell_h + gap), (index % columns) * (cell_w + gap)
        grid[top:top + cell_h, left:left + cell_w] = cell[..., None]
    return grid
