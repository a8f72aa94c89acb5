"""Training and inference throughput of minicnn and Keras on the published MNIST model, side by side.

    python benchmarks/bench_speed.py                 # full: 56,000-image epochs, 3 repeats
    python benchmarks/bench_speed.py --quick         # a smoke run of a minute or two

Each measurement runs in a fresh subprocess (``--worker``), so each framework
keeps its own thread settings (minicnn's are set when it is imported, and
would slow TensorFlow down) and its own peak memory is measured. The
frameworks alternate, repetition by repetition, so a machine that gets busier
or quieter during the run affects both alike. Reported are medians over
repetitions of:

- training throughput: images/s over whole epochs after the first
  (forward + backward + Adam, batch 128, shuffled, dropout on);
- first-epoch overhead: first epoch minus a steady epoch (Numba or
  tf.function compilation; minicnn's first repetition uses an empty Numba
  cache, later ones the warm on-disk cache);
- inference throughput: ``predict`` on the test images, images/s;
- peak resident memory of the worker process.

minicnn's NumPy-reference backend (``MINICNN_KERNELS=reference``, no fused Numba
steps) is measured too, on fewer images, so students see what the fast path buys.
Results go to ``--out`` as ``speed.json`` and ``speed.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

FRAMEWORKS = ("minicnn", "minicnn-numpy", "keras")


# --------------------------------------------------------------------------- workers (subprocesses)


def load_data(train_images: int, test_images: int):
    """The first MNIST images as float32 NHWC in [0, 1] with one-hot labels, or random data if absent."""
    import numpy as np

    from minicnn import datasets

    try:
        (x, y), (x_test, _) = datasets.load_mnist(download=False)
        source = "mnist"
    except datasets.DatasetError:
        rng = np.random.default_rng(0)
        x = rng.integers(0, 256, (60000, 28, 28), dtype=np.uint8)
        y = rng.integers(0, 10, 60000).astype(np.uint8)
        x_test, source = x[:10000], "random"
    x = datasets.prepare_images(x[:train_images])
    y = np.eye(10, dtype=np.float32)[y[:train_images]]
    return x, y, datasets.prepare_images(x_test[:test_images]), source


def run_minicnn(x, y, x_test, epochs: int, batch_size: int) -> dict:
    import minicnn
    from minicnn.experiments.published_model import mnist_cnn

    minicnn.set_random_seed(0)
    model = mnist_cnn()
    model.compile(optimizer=minicnn.Adam(), loss="categorical_crossentropy", metrics=["accuracy"])
    epoch_seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0)
        epoch_seconds.append(time.perf_counter() - start)
    start = time.perf_counter()
    model.predict(x_test, batch_size=batch_size)
    return {"epoch_seconds": epoch_seconds, "predict_seconds": time.perf_counter() - start}


def run_keras(x, y, x_test, epochs: int, batch_size: int, threads: int) -> dict:
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    import keras
    from keras import layers

    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((28, 28, 1)),
        layers.Conv2D(32, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(2),
        layers.Dropout(0.25),
        layers.Conv2D(64, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(2),
        layers.Dropout(0.25),
        layers.Flatten(),
        layers.Dense(128, activation="relu"),
        layers.Dropout(0.5),
        layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(), loss="categorical_crossentropy", metrics=["accuracy"])
    epoch_seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0, shuffle=True)
        epoch_seconds.append(time.perf_counter() - start)
    model.predict(x_test[:batch_size], batch_size=batch_size, verbose=0)  # trace predict once
    start = time.perf_counter()
    model.predict(x_test, batch_size=batch_size, verbose=0)
    return {"epoch_seconds": epoch_seconds, "predict_seconds": time.perf_counter() - start}


def worker(args: argparse.Namespace) -> None:
    """Run one measurement and print it as one JSON line on stdout."""
    if args.worker == "keras":
        import tensorflow  # noqa: F401  (first, so minicnn's thread settings do not reach it)
    else:
        import minicnn  # noqa: F401  (first: its thread settings must precede NumPy)
    x, y, x_test, source = load_data(args.train_images, args.test_images)
    if args.worker == "keras":
        result = run_keras(x, y, x_test, args.epochs, args.batch_size, args.threads)
    else:
        result = run_minicnn(x, y, x_test, args.epochs, args.batch_size)
    result.update(data=source, train_images=len(x), test_images=len(x_test),
                  peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(result))


# --------------------------------------------------------------------------- the driver


def spawn(framework: str, args: argparse.Namespace, numba_cache: str, train_images: int) -> dict:
    env = dict(os.environ)
    threads = str(args.threads)
    env.update(NUMBA_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads, OMP_NUM_THREADS=threads,
               NUMBA_CACHE_DIR=numba_cache, TF_CPP_MIN_LOG_LEVEL="2")
    env["MINICNN_KERNELS"] = "reference" if framework == "minicnn-numpy" else "fast"
    cmd = [sys.executable, __file__, "--worker", framework, "--epochs", str(args.epochs),
           "--train-images", str(train_images), "--test-images", str(args.test_images),
           "--batch-size", str(args.batch_size), "--threads", threads]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{framework} worker failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def keras_available() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(name) is not None for name in ("tensorflow", "keras"))


def summarize(runs: list[dict]) -> dict:
    """Medians over repetitions of one framework's runs."""
    steady = [r["train_images"] / statistics.median(r["epoch_seconds"][1:]) for r in runs]
    overhead = [r["epoch_seconds"][0] - statistics.median(r["epoch_seconds"][1:]) for r in runs]
    return {
        "train_images_per_s": statistics.median(steady),
        "train_images_per_s_all": steady,
        "seconds_per_56000_image_epoch": 56000 / statistics.median(steady),
        "first_epoch_overhead_s": statistics.median(overhead),
        "first_epoch_overhead_cold_s": overhead[0],
        "predict_images_per_s": statistics.median(r["test_images"] / r["predict_seconds"] for r in runs),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "train_images": runs[0]["train_images"],
        "data": runs[0]["data"],
        "repeats": len(runs),
    }


def markdown(results: dict) -> str:
    s = results["summary"]
    m, c = results["machine"], results["config"]
    lines = [f"Measured {results['date']} on {m['cpu']} ({m['cores']} cores), {c['threads']} threads, "
             f"batch {c['batch_size']}, medians of {c['repeats']} repetitions.", "",
             "| | training images/s | s per 56k-image epoch | first-epoch overhead (cold / warm) "
             "| inference images/s | peak memory |", "|---|---:|---:|---:|---:|---:|"]
    for name, row in s.items():
        lines.append(f"| {name} | {row['train_images_per_s']:,.0f} "
                     f"| {row['seconds_per_56000_image_epoch']:.1f} "
                     f"| {row['first_epoch_overhead_cold_s']:.1f} s / {row['first_epoch_overhead_s']:.1f} s "
                     f"| {row['predict_images_per_s']:,.0f} | {row['peak_rss_mb']:,.0f} MB |")
    if "keras" in s:
        train = s["minicnn"]["train_images_per_s"] / s["keras"]["train_images_per_s"]
        infer = s["minicnn"]["predict_images_per_s"] / s["keras"]["predict_images_per_s"]
        lines += ["", f"minicnn / Keras: training {train:.2f}x, inference {infer:.2f}x."]
    return "\n".join(lines) + "\n"


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform()}


def drive(args: argparse.Namespace) -> None:
    frameworks = [f for f in FRAMEWORKS if f != "keras" or keras_available()]
    if "keras" not in frameworks:
        print("TensorFlow/Keras not installed (pip install -e '.[keras]'): measuring minicnn only.")
    runs: dict[str, list[dict]] = {f: [] for f in frameworks}
    with tempfile.TemporaryDirectory() as numba_cache:
        for rep in range(args.repeats):
            for framework in frameworks:
                images = args.train_images // 4 if framework == "minicnn-numpy" else args.train_images
                run = spawn(framework, args, numba_cache, images)
                runs[framework].append(run)
                epochs = ", ".join(f"{s:.1f}" for s in run["epoch_seconds"])
                print(f"repeat {rep + 1}/{args.repeats} {framework:14s} epochs [{epochs}] s on "
                      f"{run['train_images']} images; predict {run['predict_seconds']:.2f} s", flush=True)
    results = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        "machine": machine(),
        "config": {k: getattr(args, k) for k in ("train_images", "test_images", "epochs", "batch_size",
                                                   "threads", "repeats")},
        "summary": {f: summarize(r) for f, r in runs.items()},
        "runs": runs,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from minicnn.files import atomic_write

    atomic_write(out / "speed.json", lambda f: f.write(json.dumps(results, indent=2).encode()))
    table = markdown(results)
    atomic_write(out / "speed.md", lambda f: f.write(table.encode()))
    print()
    print(table)
    print(f"written to {out / 'speed.json'} and {out / 'speed.md'}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train-images", type=int, default=56000, help="images per training epoch")
    parser.add_argument("--test-images", type=int, default=10000, help="images for inference")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run; the first counts as warm-up")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="threads for every framework")
    parser.add_argument("--repeats", type=int, default=3, help="runs per framework, alternating")
    parser.add_argument("--quick", action="store_true", help="small epochs and one repeat, for a smoke test")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"), help="output directory")
    parser.add_argument("--worker", choices=FRAMEWORKS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.train_images, args.test_images, args.epochs, args.repeats = 4096, 2048, 2, 1
    if args.epochs < 2:
        parser.error("--epochs must be at least 2: the first epoch is warm-up")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    worker(args) if args.worker else drive(args)


if __name__ == "__main__":
    main()
