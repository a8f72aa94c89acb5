"""Write a tiny CIFAR-10 look-alike in CIFAR-10's binary format, to try examples/cifar10_cnn.py offline.

    python examples/synthetic_cifar10.py runs/synthetic-cifar10
    python examples/cifar10_cnn.py --quick --binary runs/synthetic-cifar10

Writes ``data_batch_1.bin`` .. ``data_batch_5.bin`` and ``test_batch.bin`` into the folder:
3073-byte records, one label byte (0..9) then a 32x32 image channels-first (1024 red, 1024 green,
1024 blue bytes), as the real files. Each class has its own mean colour under uniform noise, so a
model can learn something from it; nothing else about it resembles CIFAR-10.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from minicnn.files import atomic_write

TRAIN_FILES = [f"data_batch_{i}.bin" for i in range(1, 6)]
TEST_FILE = "test_batch.bin"


def records(n: int, colours: np.ndarray, rng: np.random.Generator) -> bytes:
    """``n`` records: labels 0..9 in turn, images of their class's colour (``colours``: (10, 3) RGB)
    plus uniform noise."""
    labels = np.arange(n) % 10
    images = colours[labels][:, :, None] + rng.uniform(-40, 40, (n, 3, 1024))  # (N, C, H*W)
    out = np.empty((n, 3073), np.uint8)
    out[:, 0] = labels
    out[:, 1:] = np.clip(images, 0, 255).astype(np.uint8).reshape(n, 3072)
    return out.tobytes()


def write(folder: str | Path, per_batch: int = 60, n_test: int = 60, seed: int = 0) -> Path:
    """Write the six batch files (``per_batch`` training images each, ``n_test`` test images)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    colours = np.linspace(40, 215, 30).reshape(10, 3)[rng.permutation(10)]
    for name, n in [*((name, per_batch) for name in TRAIN_FILES), (TEST_FILE, n_test)]:
        data = records(n, colours, rng)
        atomic_write(folder / name, lambda f, data=data: f.write(data))
    return folder


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="where to write the batch files")
    parser.add_argument("--per-batch", type=int, default=60, help="training images per batch file (5 files)")
    parser.add_argument("--test", type=int, default=60, help="test images")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(f"wrote {write(args.folder, args.per_batch, args.test, args.seed)}")


if __name__ == "__main__":
    main()
