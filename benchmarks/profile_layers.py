"""Where a training step's time goes: forward and backward time of each step of the published model.

    python benchmarks/profile_layers.py                  # Numba (fused steps), then the NumPy reference
    python benchmarks/profile_layers.py --kernels fast  # one of them

With the Numba kernels, each Conv2D -> MaxPooling2D -> Dropout run is one
fused step, so it is one row. Times are medians over ``--steps`` training
steps at ``--batch-size``, after warm-up steps that pay for compilation.
"""

from __future__ import annotations

import minicnn  # first: its thread settings must precede NumPy

import argparse
import statistics
import time
from collections import defaultdict

import numpy as np

from minicnn import kernels
from minicnn.losses import softmax_cross_entropy
from minicnn.experiments.published_model import mnist_cnn


def step_name(step) -> str:
    return "+".join(layer.name for layer in getattr(step, "layers", [step]))


def timed(times: list, fn, *args):
    start = time.perf_counter()
    result = fn(*args)
    times.append(time.perf_counter() - start)
    return result


def profile(path: str, batch_size: int, steps: int, warmup: int = 3) -> dict[str, dict[str, float]]:
    """Median milliseconds per step name, forward and backward, plus the loss and the Adam update."""
    with kernels.use(path):
        return _profile(batch_size, steps, warmup)


def _profile(batch_size: int, steps: int, warmup: int) -> dict[str, dict[str, float]]:
    minicnn.set_random_seed(0)
    model = mnist_cnn()
    model.compile("adam", loss="categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.random((batch_size, 28, 28, 1), dtype=np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, batch_size)]
    fwd, bwd = defaultdict(list), defaultdict(list)
    for i in range(warmup + steps):
        record = i >= warmup
        plan = model.steps(input_gradient=False)
        *body, last = plan
        out = x
        for step in body:
            out = timed(fwd[step_name(step)], step.forward, out, True)
        z = timed(fwd[last.name], last.forward_linear, out, True)
        _, dz = timed(fwd["loss"], softmax_cross_entropy, z, y)
        dout = timed(bwd[last.name], last.backward_linear, dz)
        for step in reversed(body):
            dout = timed(bwd[step_name(step)], step.backward, dout)
        timed(bwd["adam"], model.optimizer.apply_gradients, model.parameters_and_gradients())
        if not record:
            fwd.clear()
            bwd.clear()
    names = list(fwd) + [n for n in bwd if n not in fwd]
    return {n: {"forward": 1000 * statistics.median(fwd[n]) if n in fwd else 0.0,
                "backward": 1000 * statistics.median(bwd[n]) if n in bwd else 0.0} for n in names}


def print_table(path: str, rows: dict[str, dict[str, float]], batch_size: int) -> None:
    total = sum(r["forward"] + r["backward"] for r in rows.values())
    print(f"\n{path} kernels, batch {batch_size}: {total:.1f} ms per step "
          f"(~{1000 * batch_size / total:,.0f} images/s from the sum of medians)")
    print(f"| {'step':<40} | {'forward ms':>10} | {'backward ms':>11} | {'share':>6} |")
    print(f"|{'-' * 42}|{'-' * 11}:|{'-' * 12}:|{'-' * 7}:|")
    for name, r in rows.items():
        share = (r["forward"] + r["backward"]) / total
        print(f"| {name:<40} | {r['forward']:>10.2f} | {r['backward']:>11.2f} | {share:>6.1%} |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kernels", choices=kernels.PATHS, action="append",
                        help="path to profile (repeatable; default: both)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20, help="measured training steps")
    args = parser.parse_args(argv)
    for path in args.kernels or list(kernels.PATHS):
        print_table(path, profile(path, args.batch_size, args.steps), args.batch_size)


if __name__ == "__main__":
    main()
