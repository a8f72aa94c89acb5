"""What the benchmarks run on: the CPU, NumPy's BLAS, and the machine's measured limits.

    python benchmarks/machine.py              # print them (all cores)
    python benchmarks/machine.py --threads 1  # limits of one core
    python benchmarks/machine.py --json       # one JSON object, for other scripts

``bench_speed.py`` stores these next to its throughput figures and
``profile_layers.py`` compares each layer's achieved GFLOP/s and GB/s with
them, so every speed claim carries its CPU and its distance to the hardware.

The limits are *measured*, not taken from a data sheet:

- ``sgemm_conv2_gflops``: NumPy's float32 matmul of the published model's
  second convolution as im2col computes it, (25088, 288) @ (288, 64);
- ``sgemm_square_gflops``: a square float32 matmul (2048 x 2048), the best
  case for BLAS and the closest measurable figure to the CPU's peak;
- ``copy_gb_per_s``: a 256 MB float32 array copied into another, counting the
  bytes read plus the bytes written (the traffic a streaming kernel causes).

Each is the median over repeats, so a shared machine's noise shows less.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

CONV2_GEMM = (25088, 288, 64)
"""(M, K, N) of the published model's second convolution at batch 128: 128*14*14 rows, 3*3*32 columns."""
SQUARE_GEMM = 2048
COPY_BYTES = 256 * 2**20

SIMD_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
              "avx512_bf16", "amx_tile")
"""The /proc/cpuinfo flags that decide which BLAS and LLVM kernels run, shown in short summaries."""


def cpu_info(cpuinfo: str | None = None) -> dict:
    """Model name, vendor, family, model, stepping and flags of the first CPU in ``/proc/cpuinfo``.

    ``cpuinfo`` is the file's text (read from the system when None). On systems
    without that file only ``model_name`` (from :mod:`platform`) is filled.
    """
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        if not line.strip():
            if fields:
                break  # the first processor's block is enough
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    flags = fields.get("flags", "").split()
    return {
        "model_name": fields.get("model name") or platform.processor() or platform.machine(),
        "vendor": fields.get("vendor_id"),
        "family": int(fields["cpu family"]) if "cpu family" in fields else None,
        "model": int(fields["model"]) if fields.get("model", "").isdigit() else None,
        "stepping": int(fields["stepping"]) if fields.get("stepping", "").isdigit() else None,
        "simd": [f for f in SIMD_FLAGS if f in flags],
        "flags": flags,
    }


def describe_cpu(cpu: dict) -> str:
    """One line for tables: ``AMD EPYC (family 25, model 17; avx2, avx512f, ...)``."""
    ids = ", ".join(f"{k} {cpu[k]}" for k in ("family", "model") if cpu.get(k) is not None)
    simd = ", ".join(cpu["simd"])
    details = "; ".join(part for part in (ids, simd) if part)
    return f"{cpu['model_name']} ({details})" if details else cpu["model_name"]


def blas_info() -> list[dict]:
    """The BLAS libraries loaded (NumPy's), from threadpoolctl: library, version, kernel, threads.

    OpenBLAS picks its kernels (``architecture``, e.g. ``SkylakeX``, ``Zen``,
    ``Haswell``) from the CPU it sees at load time, unless ``OPENBLAS_CORETYPE``
    forces one; a CPU newer than the OpenBLAS build may get an older kernel.
    """
    import numpy  # noqa: F401  (loads the BLAS threadpoolctl inspects)
    from threadpoolctl import threadpool_info

    keys = ("internal_api", "version", "architecture", "num_threads", "threading_layer", "filepath")
    pools = [{k: pool.get(k) for k in keys} for pool in threadpool_info() if pool.get("user_api") == "blas"]
    for pool in pools:
        pool["library"] = Path(pool.pop("filepath")).name  # no paths of the machine in the results
    return pools


def blas_environment() -> dict[str, str]:
    """Environment variables that steer OpenBLAS (``OPENBLAS_CORETYPE``, ``OPENBLAS_L2_SIZE``, ...)."""
    return {k: v for k, v in sorted(os.environ.items()) if k.startswith(("OPENBLAS", "GOTO"))}


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``fn()`` over ``repeats`` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def sgemm_gflops(m: int, k: int, n: int, repeats: int) -> float:
    """GFLOP/s of NumPy's float32 ``(m, k) @ (k, n)`` (2*m*k*n floating-point operations)."""
    import numpy as np

    rng = np.random.default_rng(0)
    a = rng.random((m, k), dtype=np.float32)
    b = rng.random((k, n), dtype=np.float32)
    out = np.empty((m, n), dtype=np.float32)
    return 2 * m * k * n / median_seconds(lambda: np.matmul(a, b, out=out), repeats) / 1e9


def copy_gb_per_s(nbytes: int, repeats: int) -> float:
    """Memory bandwidth of a large float32 copy, counting bytes read plus bytes written, in GB/s."""
    import numpy as np

    src = np.ones(nbytes // 4, dtype=np.float32)
    dst = np.empty_like(src)
    return 2 * nbytes / median_seconds(lambda: np.copyto(dst, src), repeats) / 1e9


def measure_limits(repeats: int = 15) -> dict[str, float]:
    """The machine's float32 GEMM speed and memory bandwidth, with NumPy's current thread setting."""
    return {
        "sgemm_conv2_gflops": sgemm_gflops(*CONV2_GEMM, repeats),
        "sgemm_square_gflops": sgemm_gflops(SQUARE_GEMM, SQUARE_GEMM, SQUARE_GEMM, max(3, repeats // 3)),
        "copy_gb_per_s": copy_gb_per_s(COPY_BYTES, repeats),
    }


def describe(threads: int | None = None, repeats: int = 15) -> dict:
    """Everything above in one dict: CPU, BLAS, its environment, library versions and measured limits.

    ``threads`` limits NumPy's BLAS threads during the measurement (None: as configured).
    """
    import numba
    import numpy as np
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads, user_api="blas"):
        limits = measure_limits(repeats)
        blas = blas_info()
    return {
        "cpu": cpu_info(),
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "blas": blas,
        "blas_environment": blas_environment(),
        "limits": limits,
        "limits_threads": blas[0]["num_threads"] if blas else threads,
    }


def describe_in_subprocess(threads: int | None = None) -> dict:
    """:func:`describe` run in a fresh process, so the caller's memory and thread pools stay untouched.

    (A process's peak memory survives ``exec`` on Linux: measuring in the
    benchmark driver would inflate the peak memory its workers report.)
    """
    cmd = [sys.executable, __file__, "--json"] + ([] if threads is None else ["--threads", str(threads)])
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, help="BLAS threads for the measured limits (default: all)")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--json", action="store_true", help="print everything, flags included, as JSON")
    args = parser.parse_args(argv)
    info = describe(args.threads, args.repeats)
    if args.json:
        print(json.dumps(info))
        return
    print(describe_cpu(info["cpu"]))
    info["cpu"].pop("flags")
    print(json.dumps(info, indent=2))


if __name__ == "__main__":
    main()
