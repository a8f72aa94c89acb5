"""minicnn's training and inference speed in two or more source trees, alternating in one run.

    python benchmarks/compare_trees.py before=/tmp/minicnn-old after=.
    python benchmarks/compare_trees.py before=/tmp/old after=. --numpy-first after-numpy-first=.

Each ``NAME=DIR`` is a checkout of minicnn; ``NAME=DIR`` with a name ending in
``-numpy-first`` (or every tree, with ``--numpy-first``) imports NumPy before minicnn.
Every repetition runs each tree once, in turn, in a fresh process: the worker of
``benchmarks/bench_speed.py`` of that tree, with that tree first on ``PYTHONPATH`` and a
Numba cache of its own (warmed by an untimed first run), at the same threads, images and
epochs. So a change of speed between trees is told apart from a machine that gets
busier or quieter during the run. Reported per tree: the median over repetitions of
the steady epochs' images/s and of ``predict``'s, the fastest of each, and each
median as a ratio to the first tree's. Prints a Markdown table; writes nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

NUMPY_FIRST = "-numpy-first"

RUN_WORKER = """
import runpy, sys
if sys.argv[1] == "numpy-first":
    import numpy  # noqa: F401  (before minicnn, as most scripts do)
script, sys.argv = sys.argv[2], sys.argv[2:]
runpy.run_path(script, run_name="__main__")
"""


def parse_tree(text: str) -> tuple[str, Path]:
    name, sep, path = text.partition("=")
    tree = Path(path).resolve()
    if not sep or not name or not (tree / "benchmarks" / "bench_speed.py").is_file():
        raise argparse.ArgumentTypeError(f"expected NAME=DIR with DIR a minicnn checkout; got {text!r}")
    return name, tree


def run_worker(name: str, tree: Path, args: argparse.Namespace, cache: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree), "NUMBA_CACHE_DIR": str(cache),
           "NUMBA_NUM_THREADS": str(args.threads), "OPENBLAS_NUM_THREADS": str(args.threads),
           "OMP_NUM_THREADS": str(args.threads), "MINICNN_KERNELS": "fast"}
    order = "numpy-first" if args.numpy_first or name.endswith(NUMPY_FIRST) else "minicnn-first"
    cmd = [sys.executable, "-c", RUN_WORKER, order, str(tree / "benchmarks" / "bench_speed.py"),
           "--worker", "minicnn", "--epochs", str(args.epochs), "--train-images", str(args.train_images),
           "--test-images", str(args.test_images), "--threads", str(args.threads)]
    done = subprocess.run(cmd, env=env, cwd=tree, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"error: the worker of {name} ({tree}) failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def speeds(result: dict, train_images: int, test_images: int) -> tuple[float, float, float, float]:
    """Steady-epoch images/s (median, fastest) and predict images/s (median, fastest) of one run."""
    steady = result["epoch_seconds"][1:]
    predict = result["predict_seconds_all"]
    return (train_images / statistics.median(steady), train_images / min(steady),
            test_images / statistics.median(predict), test_images / min(predict))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("trees", nargs="+", type=parse_tree, metavar="NAME=DIR")
    parser.add_argument("--repeats", type=int, default=5, help="runs per tree, alternating")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run; the first is warm-up")
    parser.add_argument("--train-images", type=int, default=28000)
    parser.add_argument("--test-images", type=int, default=10000)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--numpy-first", action="store_true", help="every tree imports NumPy before minicnn")
    args = parser.parse_args(argv)
    if len({name for name, _ in args.trees}) != len(args.trees):
        parser.error("each tree needs a name of its own")
    runs: dict[str, list[tuple[float, float, float, float]]] = {name: [] for name, _ in args.trees}
    with tempfile.TemporaryDirectory() as caches:
        for name, tree in args.trees:  # untimed: fills each tree's Numba cache
            run_worker(name, tree, argparse.Namespace(**{**vars(args), "epochs": 2, "train_images": 1024}),
                       Path(caches) / name)
        for repeat in range(args.repeats):
            for name, tree in args.trees if repeat % 2 == 0 else reversed(args.trees):
                runs[name].append(speeds(run_worker(name, tree, args, Path(caches) / name),
                                         args.train_images, args.test_images))
                print(f"repeat {repeat + 1}/{args.repeats} {name}: {runs[name][-1][0]:,.0f} training img/s, "
                      f"{runs[name][-1][2]:,.0f} inference img/s", file=sys.stderr)
    first = args.trees[0][0]
    median = {name: [statistics.median(r[i] for r in rs) for i in range(4)] for name, rs in runs.items()}
    best = {name: [max(r[i] for r in rs) for i in range(4)] for name, rs in runs.items()}
    print(f"| tree | training img/s, median (fastest) | vs {first} | inference img/s, median (fastest) "
          f"| vs {first} |")
    print("|---|---:|---:|---:|---:|")
    for name, _ in args.trees:
        m, b, m0 = median[name], best[name], median[first]
        print(f"| {name} | {m[0]:,.0f} ({b[1]:,.0f}) | {m[0] / m0[0]:.3f} | {m[2]:,.0f} ({b[3]:,.0f}) "
              f"| {m[2] / m0[2]:.3f} |")


if __name__ == "__main__":
    main()
