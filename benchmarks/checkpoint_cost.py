"""What the ``fsync`` calls of ``minicnn.files.atomic_write`` cost an epoch checkpoint of the seed model.

    python benchmarks/checkpoint_cost.py                    # 50 saves each way, in ./ (the disk runs use)
    python benchmarks/checkpoint_cost.py --repeats 200 --dir /path/on/the/run/disk
    python benchmarks/checkpoint_cost.py --epoch            # also one 56,000-image epoch, for the ratio

An epoch checkpoint is ``model.save("epoch_<e>.npz")`` of the experiment's model (the
published MNIST CNN compiled with Adam, after one step so the file holds Adam's moments,
as every checkpoint does). The saves alternate, one durable (the file and its folder
flushed to the disk, as ``atomic_write`` does) and one with ``os.fsync`` replaced by a
no-op (the file only in the page cache), so a machine that gets busier or quieter affects
both alike. Reported: the minimum and the median of each, and their difference, the cost
of durability per checkpoint. ``--epoch`` times one training epoch on 56,000 random
images (a fold of the experiment) and gives the median cost as a share of it.

Measure on the file system the runs write to: on a tmpfs ``fsync`` costs nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np

from minicnn.experiments.protocol import build_model

EPOCH_IMAGES = 56_000
"""The training images of one fold of the experiment (70,000 MNIST images, 5 folds)."""


def seed_model():
    """The experiment's model with Adam's moments, as an epoch checkpoint holds it."""
    model = build_model((28, 28, 1), 10, seed=0)
    rng = np.random.default_rng(0)
    x = rng.random((32, 28, 28, 1), dtype=np.float32)
    model.train_on_batch(x, np.eye(10, dtype=np.float32)[np.arange(32) % 10])
    return model


def time_saves(model, folder: Path, repeats: int) -> dict[str, list[float]]:
    """Seconds per ``model.save``, durable and not, ``repeats`` of each, alternating."""
    seconds: dict[str, list[float]] = {"with fsync": [], "without fsync": []}
    path = folder / "epoch_1.npz"
    skip_fsync = {"with fsync": contextlib.nullcontext, "without fsync": lambda: mock.patch.object(
        os, "fsync", lambda fd: None)}
    for _ in range(repeats):
        for kind in seconds:
            with skip_fsync[kind]():
                start = time.perf_counter()
                model.save(path)
                seconds[kind].append(time.perf_counter() - start)
    return seconds


def epoch_seconds(model) -> float:
    """Seconds of one training epoch of ``model`` on ``EPOCH_IMAGES`` random images, batch 128."""
    rng = np.random.default_rng(1)
    x = rng.random((EPOCH_IMAGES, 28, 28, 1), dtype=np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, EPOCH_IMAGES)]
    start = time.perf_counter()
    model.fit(x, y, epochs=1, batch_size=128, verbose=0, seed=0)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50, help="saves of each kind (default 50)")
    parser.add_argument("--dir", type=Path, default=Path.cwd(),
                        help="where to write the checkpoints (a temporary folder inside it; default ./)")
    parser.add_argument("--epoch", action="store_true", help="also time one epoch, for the cost's share")
    args = parser.parse_args()
    model = seed_model()
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="checkpoint_cost-") as folder:
        model.save(Path(folder) / "warm-up.npz")
        seconds = time_saves(model, Path(folder), args.repeats)
        size = (Path(folder) / "epoch_1.npz").stat().st_size
    print(f"epoch checkpoint of the seed model: {size / 2**20:.2f} MiB, {args.repeats} saves each way, "
          f"in {args.dir.resolve()}")
    for kind, values in seconds.items():
        median = statistics.median(values)
        print(f"  {kind:14s} min {min(values) * 1e3:8.2f} ms   median {median * 1e3:8.2f} ms")
    cost = statistics.median(seconds["with fsync"]) - statistics.median(seconds["without fsync"])
    print(f"  fsync's cost (difference of the medians): {cost * 1e3:.2f} ms per checkpoint")
    if args.epoch:
        epoch = epoch_seconds(model)
        share = statistics.median(seconds["with fsync"]) / epoch
        print(f"  one {EPOCH_IMAGES:,}-image epoch: {epoch:.1f} s; a durable checkpoint is {share:.3%} of it "
              f"(fsync alone {cost / epoch:.3%})")


if __name__ == "__main__":
    main()
