"""Cold start: what the first epoch of the seed model costs with an empty Numba cache, and with a warm one.

    python benchmarks/cold_start.py               # 3 repetitions of a cold and a warm process
    python benchmarks/cold_start.py --repeats 1 --images 1280   # a smoke run
    python benchmarks/cold_start.py --tree before=/tmp/old      # also another checkout, alternating

Each repetition runs two fresh processes (``--worker``) on one new, empty cache folder
(``NUMBA_CACHE_DIR``): the first finds the cache cold and compiles minicnn's kernels, the second
finds them on disk. Each process imports minicnn, builds the seed model
(:func:`minicnn.experiments.published_model.mnist_cnn`) and trains it for two epochs on
random 28x28 images (batch 128); the first-epoch overhead is the first epoch minus the second.
Beside it: how many kernel versions Numba compiled and loaded from the cache, and the seconds
spent compiling (Numba's ``numba:compile`` events, outermost ones only). Reported are the
median and the smallest over the repetitions, with the CPU and the date (``machine.py``).
With ``--tree NAME=DIR`` each repetition also runs the checkout in DIR (``PYTHONPATH``), right
after this one's, with its own empty cache: its rows are "NAME, cold" and "NAME, warm".
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from bench_zoo import parse_tree  # benchmarks/bench_zoo.py, beside this script
from machine import cpu_info, describe_cpu  # benchmarks/machine.py, beside this script

KINDS = ("cold", "warm")


def worker(images: int, batch_size: int) -> dict:
    """One process's measurement: import, two epochs, Numba's compile counts and seconds."""
    started = time.perf_counter()
    import numpy as np
    from numba.core import event

    import minicnn
    from minicnn.experiments.published_model import mnist_cnn

    imported = time.perf_counter() - started

    class CompileTimer(event.Listener):
        """Seconds inside outermost compilations (a kernel compiles the kernels it calls within)."""

        def __init__(self):
            self.depth, self.seconds, self.started = 0, 0.0, 0.0

        def on_start(self, _: event.Event) -> None:
            if self.depth == 0:
                self.started = time.perf_counter()
            self.depth += 1

        def on_end(self, _: event.Event) -> None:
            self.depth -= 1
            if self.depth == 0:
                self.seconds += time.perf_counter() - self.started

    timer = CompileTimer()
    event.register("numba:compile", timer)
    model = mnist_cnn(seed=0)
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(0)
    x = rng.random((images, 28, 28, 1), dtype=np.float32)
    y = minicnn.to_categorical(rng.integers(0, 10, images), 10)
    epochs = []
    for epoch in range(2):
        start = time.perf_counter()
        model.fit(x, y, batch_size=batch_size, epochs=epoch + 1, initial_epoch=epoch, verbose=0, seed=0)
        epochs.append(time.perf_counter() - start)
    from numba.core.dispatcher import Dispatcher

    # every Numba kernel of the minicnn modules imported (as minicnn.trainers.progress.minicnn_kernels,
    # which an older checkout given by --tree may lack)
    kernels = [value for name, module in list(sys.modules.items()) if name.split(".")[0] == "minicnn"
               for value in vars(module).values() if isinstance(value, Dispatcher)]
    return {"import_s": imported, "first_epoch_s": epochs[0], "steady_epoch_s": epochs[1],
            "overhead_s": epochs[0] - epochs[1], "compile_s": timer.seconds,
            "compiled": sum(sum(k.stats.cache_misses.values()) for k in kernels),
            "loaded": sum(sum(k.stats.cache_hits.values()) for k in kernels)}


def spawn(cache: str, images: int, batch_size: int, tree: Path | None = None) -> dict:
    """One worker process on the Numba cache folder ``cache``; ``tree``: a checkout to import instead."""
    env = {**os.environ, "NUMBA_CACHE_DIR": cache}
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    env.pop("MINICNN_IMPLEMENTATION", None)  # the fast implementation, whose kernels compile
    done = subprocess.run([sys.executable, __file__, "--worker", "--images", str(images),
                           "--batch-size", str(batch_size)], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"worker failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def summarize(runs: dict[str, list[dict]]) -> dict[str, dict[str, float]]:
    """Per kind, the median and the smallest of each figure over the repetitions."""
    return {kind: {f"{key}_{how}": fn(run[key] for run in kind_runs)
                   for key in kind_runs[0] for how, fn in (("median", _median), ("min", min))}
            for kind, kind_runs in runs.items()}


def _median(values) -> float:
    return statistics.median(list(values))


def markdown(results: dict) -> str:
    lines = [f"Cold start of the seed model, {results['date']}, {results['cpu']}, "
             f"{results['images']} images an epoch, batch {results['batch_size']}, "
             f"{results['repeats']} repetitions (median, smallest):", "",
             "| cache | first-epoch overhead, s | compiling, s | kernels compiled / loaded | import, s |",
             "|---|---:|---:|---:|---:|"]
    for kind, s in results["summary"].items():
        lines.append(f"| {kind} | {s['overhead_s_median']:.1f} ({s['overhead_s_min']:.1f}) "
                     f"| {s['compile_s_median']:.1f} ({s['compile_s_min']:.1f}) "
                     f"| {s['compiled_median']:.0f} / {s['loaded_median']:.0f} "
                     f"| {s['import_s_median']:.2f} ({s['import_s_min']:.2f}) |")
    return "\n".join(lines) + "\n"


def drive(args: argparse.Namespace) -> None:
    trees = [(None, None), *args.tree]
    runs: dict[str, list[dict]] = {kind if name is None else f"{name}, {kind}": []
                                   for name, _ in trees for kind in KINDS}
    for repeat in range(args.repeats):
        for name, tree in trees:
            with tempfile.TemporaryDirectory(prefix="minicnn-cold-start-") as cache:
                for kind in KINDS:  # the first process fills the empty cache, the second finds it warm
                    label = kind if name is None else f"{name}, {kind}"
                    run = spawn(cache, args.images, args.batch_size, tree)
                    runs[label].append(run)
                    print(f"repetition {repeat + 1}, {label}: overhead {run['overhead_s']:.1f} s, compiling "
                          f"{run['compile_s']:.1f} s, {run['compiled']} compiled, {run['loaded']} loaded",
                          flush=True)
    results = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d"), "cpu": describe_cpu(cpu_info()),
               "images": args.images, "batch_size": args.batch_size, "repeats": args.repeats,
               "trees": {name: str(tree) for name, tree in args.tree},
               "runs": runs, "summary": summarize(runs)}
    print("\n" + markdown(results))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        from minicnn.files import atomic_write, atomic_write_json

        atomic_write_json(args.out / "cold_start.json", results)
        atomic_write(args.out / "cold_start.md", lambda f: f.write(markdown(results).encode()))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="repetitions of a cold and a warm process (3)")
    parser.add_argument("--images", type=int, default=6400, help="images per epoch (6400: 50 batches)")
    parser.add_argument("--batch-size", type=int, default=128, help="batch size (128)")
    parser.add_argument("--out", type=Path, help="also write cold_start.json and cold_start.md here")
    parser.add_argument("--tree", type=parse_tree, action="append", default=[],
                        metavar="NAME=DIR", help="also another minicnn checkout, alternating; repeatable")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for flag, value in (("--repeats", args.repeats), ("--images", args.images),
                        ("--batch-size", args.batch_size)):
        if value < 1:
            parser.error(f"{flag} must be at least 1; got {value}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.images, args.batch_size)))
    else:
        drive(args)


if __name__ == "__main__":
    main()
