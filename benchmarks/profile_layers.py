"""Where a training step's time goes, and how far each step is from what the machine can do.

    python benchmarks/profile_layers.py                         # fast (Numba, fused steps), then reference
    python benchmarks/profile_layers.py --implementation fast   # one of them (--kernels: its old name)
    python benchmarks/profile_layers.py --model cifar10         # another model of bench_zoo.py's zoo

The model is the published MNIST model (``seed``) or another of the zoo in
``bench_zoo.py``, on random data. In the fast implementation, layers fused into
one step (Conv2D -> MaxPooling2D -> Dropout, say) are one row. Times are medians over ``--steps`` training
steps at ``--batch-size``, after warm-up steps that pay for compilation.

Each row also gives the step's achieved GFLOP/s and GB/s, next to the
machine's limits measured by ``machine.py`` (NumPy's sgemm on a square
matrix, and a large copy):

- FLOPs are those of the dense computation, from the shapes: a convolution
  costs ``2*N*OH*OW*KH*KW*C*F`` forward and as much again for each of
  ``dW`` and ``dx`` backward (``dx`` only where it is computed), a Dense
  layer ``2*N*D*U`` likewise. The fused pooled backward skips the three
  quarters of the gradient that max-pooling zeroes, so its figure is the
  GEMM-equivalent rate, the one to compare with sgemm.
- Bytes are those of the arrays the step reads and writes: input, output,
  parameters and gradients, and what forward keeps for backward. Temporaries
  (an im2col matrix) are not counted, so GB/s is a lower bound of the traffic.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict

import numpy as np
from bench_zoo import ZOO, keras_style_model  # benchmarks/bench_zoo.py, beside this script
from machine import describe_cpu, describe_in_subprocess  # benchmarks/machine.py, beside this script

import minicnn
from minicnn import implementation
from minicnn.layers import Conv2D, Dense
from minicnn.losses import softmax_cross_entropy


def step_name(step) -> str:
    return "+".join(layer.name for layer in step.layers)


def nbytes(*values) -> int:
    """Bytes of all distinct arrays in ``values`` (arrays, dicts and lists of them, None).

    Views of one buffer starting at the same address (a reshape) count once.
    """
    seen: dict[int, int] = {}

    def walk(v):
        if isinstance(v, np.ndarray):
            seen[v.ctypes.data] = max(v.nbytes, seen.get(v.ctypes.data, 0))
        elif isinstance(v, dict):
            for item in v.values():
                walk(item)
        elif isinstance(v, (list, tuple)):
            for item in v:
                walk(item)

    walk(values)
    return sum(seen.values())


def flops(step, x_shape: tuple) -> tuple[float, float]:
    """Floating-point operations of ``step`` forward and backward on an input of ``x_shape``.

    Dense-computation counts (see the module docstring); 0 for steps that only move data.
    """
    layer = getattr(step, "conv", step)
    grads_per_product = 2 if getattr(step, "input_gradient", True) else 1  # dW, and dx if computed
    if isinstance(layer, Conv2D):
        oh, ow, f = layer.compute_output_shape(x_shape[1:])
        kh, kw = layer.kernel_size
        forward = 2.0 * x_shape[0] * oh * ow * kh * kw * x_shape[3] * f
    elif isinstance(layer, Dense):
        forward = 2.0 * x_shape[0] * x_shape[1] * layer.units
    else:
        return 0.0, 0.0
    return forward, grads_per_product * forward


def timed(times: list, fn, *args):
    start = time.perf_counter()
    result = fn(*args)
    times.append(time.perf_counter() - start)
    return result


def profile(name: str, batch_size: int, steps: int, warmup: int = 3,
            model_name: str = "seed") -> dict[str, dict[str, float]]:
    """Per step name: median milliseconds forward and backward, and their FLOPs and bytes, in
    implementation ``name``, of the zoo model ``model_name``.

    Rows for every step of the model, plus the loss and the Adam update.
    """
    with implementation.use(name):
        return _profile(batch_size, steps, warmup, model_name)


def _profile(batch_size: int, steps: int, warmup: int, model_name: str) -> dict[str, dict[str, float]]:
    minicnn.set_random_seed(0)
    spec = ZOO[model_name]
    model = keras_style_model(minicnn, spec)
    model.compile("adam", loss="categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.random((batch_size, *spec["input"]), dtype=np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, batch_size)]
    fwd, bwd = defaultdict(list), defaultdict(list)
    work: dict[str, dict[str, float]] = defaultdict(dict)
    for i in range(warmup + steps):
        record = i >= warmup
        plan = model.steps(input_gradient=False)
        *body, last = plan
        out, inputs = x, []
        for step in body:
            inputs.append(out)
            out = timed(fwd[step_name(step)], step.forward, out, True)
        z = timed(fwd[last.name], last.forward_affine, out, True)
        _, dz = timed(fwd["loss"], softmax_cross_entropy, z, y)
        dout = timed(bwd[last.name], last.backward_affine, dz)
        count(work[last.name], last, out, z, dz, dout)
        for step, step_input in zip(reversed(body), reversed(inputs), strict=True):
            dprev = timed(bwd[step_name(step)], step.backward, dout)
            count(work[step_name(step)], step, step_input, None, dout, dprev)
            dout = dprev
        timed(bwd["adam"], model.optimizer.apply_gradients, model.parameters_and_gradients())
        params = sum(p.size for _, p, _ in model.parameters_and_gradients())
        work["adam"].update(backward_bytes=7.0 * 4 * params)  # reads p, g, m, v; writes p, m, v
        if not record:
            fwd.clear()
            bwd.clear()
    names = list(fwd) + [n for n in bwd if n not in fwd]
    return {n: {"forward": 1000 * statistics.median(fwd[n]) if n in fwd else 0.0,
                "backward": 1000 * statistics.median(bwd[n]) if n in bwd else 0.0,
                **work.get(n, {})} for n in names}


def count(row: dict, step, x: np.ndarray, out: np.ndarray | None, dout: np.ndarray,
          dx: np.ndarray | None) -> None:
    """Fill ``row`` with the FLOPs and bytes of ``step`` (forward ``x -> out``, backward ``dout -> dx``).

    Called after backward: the step's cache still holds what forward kept.
    """
    forward, backward = flops(step, x.shape)
    layers = step.layers
    params = [layer.params for layer in layers]
    cache = [step.cache] + [layer.cache for layer in layers]  # views counted once
    row.update(forward_flops=forward, backward_flops=backward,
               forward_bytes=nbytes(x, params, dout if out is None else out, cache),
               backward_bytes=nbytes(dout, cache, params, [layer.grads for layer in layers], dx))


def rate(amount: float, ms: float, unit: float) -> str:
    return f"{amount / (ms / 1000) / unit:,.0f}" if amount and ms > 0 else ""


def print_table(name: str, rows: dict[str, dict[str, float]], batch_size: int, limits: dict,
                model_name: str = "seed") -> None:
    total = sum(r["forward"] + r["backward"] for r in rows.values())
    peak, bandwidth = limits["sgemm_square_gflops"], limits["copy_gb_per_s"]
    work = sum(r.get("forward_flops", 0.0) + r.get("backward_flops", 0.0) for r in rows.values())
    print(f"\n{model_name}, {name} implementation, batch {batch_size}: {total:.1f} ms per step "
          f"(~{1000 * batch_size / total:,.0f} images/s from the sum of medians); "
          f"{work / 1e9:.2f} GFLOP a step, {work / (total / 1000) / 1e9:,.0f} GFLOP/s")
    print(f"| {'step':<36} | fwd ms | bwd ms | share | fwd GFLOP/s | bwd GFLOP/s "
          f"| of sgemm {peak:.0f} | GB/s | of copy {bandwidth:.0f} |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in rows.items():
        ms = r["forward"] + r["backward"]
        flop = r.get("forward_flops", 0.0) + r.get("backward_flops", 0.0)
        gbytes = r.get("forward_bytes", 0.0) + r.get("backward_bytes", 0.0)
        of_peak = f"{flop / (ms / 1000) / 1e9 / peak:.0%}" if flop else ""
        of_bw = f"{gbytes / (ms / 1000) / 1e9 / bandwidth:.0%}" if gbytes else ""
        print(f"| {name:<36} | {r['forward']:.2f} | {r['backward']:.2f} | {ms / total:.1%} "
              f"| {rate(r.get('forward_flops', 0), r['forward'], 1e9)} "
              f"| {rate(r.get('backward_flops', 0), r['backward'], 1e9)} | {of_peak} "
              f"| {rate(gbytes, ms, 1e9)} | {of_bw} |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--implementation", "--kernels", choices=implementation.IMPLEMENTATIONS,
                        action="append", help="the implementation to profile (repeatable; default: both; "
                                              "--kernels is its old name)")
    parser.add_argument("--model", choices=list(ZOO), default="seed",
                        help="the model, from bench_zoo.py's zoo (default: the published MNIST model)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20, help="measured training steps")
    args = parser.parse_args(argv)
    machine = describe_in_subprocess()
    blas = ", ".join(f"{b['internal_api']} {b['version']} {b['architecture']}" for b in machine["blas"])
    print(f"{describe_cpu(machine['cpu'])}, {machine['cores']} cores; {blas}, {machine['limits_threads']} "
          f"threads: sgemm {machine['limits']['sgemm_square_gflops']:.0f} GFLOP/s (2048x2048), "
          f"{machine['limits']['sgemm_conv2_gflops']:.0f} GFLOP/s (conv2 shape); "
          f"copy {machine['limits']['copy_gb_per_s']:.1f} GB/s")
    for name in args.implementation or list(implementation.IMPLEMENTATIONS):
        rows = profile(name, args.batch_size, args.steps, model_name=args.model)
        print_table(name, rows, args.batch_size, machine["limits"], args.model)


if __name__ == "__main__":
    main()
