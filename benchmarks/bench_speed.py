"""Training and inference throughput of minicnn and Keras on the published MNIST model, side by side.

    python benchmarks/bench_speed.py                 # full: 56,000-image epochs, 3 repeats
    python benchmarks/bench_speed.py --quick         # a smoke run of a minute or two
    python benchmarks/bench_speed.py --threads 1 2   # also one thread: parallel efficiency
    python benchmarks/bench_speed.py --background-load 1   # beside one busy process
    python benchmarks/bench_speed.py --background-load 0 1 # quiet and beside one, alternating

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
- inference throughput: ``predict`` on the test images, images/s, the median of
  ``PREDICT_REPEATS`` calls after one untimed call (which lets Keras trace its
  predict function for both batch shapes, the full and the last, shorter one);
- beside each median, the fastest steady epoch and the fastest predict call of
  all repetitions, and the cores kept busy (CPU seconds of all the worker's
  threads over wall-clock seconds): a framework whose epochs alternate between
  two speeds shows it there (on some VMs TensorFlow runs some epochs on about
  one core, see ``docs/performance.md``);
- peak resident memory of the worker process.

minicnn's NumPy reference implementation (``MINICNN_IMPLEMENTATION=reference``, no fused
Numba steps) is measured too, on fewer images, so students see what the fast one buys.

With several ``--threads`` counts every framework runs at each, and the
report adds the parallel efficiency ``images/s at T threads / (T * images/s
at 1 thread)``. ``--background-load N`` keeps N busy processes (pure Python
loops) running beside the measurement, as on a shared machine; they stop
when the benchmark ends, or by themselves after ``BUSY_LIMIT_S`` seconds if
it dies. With several loads (``0 1``) every repetition runs each in turn, so
the quiet and the loaded figures come from one run, and the report gives
each loaded ratio to Keras against the quiet one. Before any of that,
``machine.py`` records the CPU (model, family,
model number, flags), NumPy's BLAS kernel and the machine's measured sgemm
GFLOP/s and memory bandwidth. Results go to ``--out`` as ``speed.json`` and
``speed.md``, or ``speed_background_load_1.*``, ``speed_threads_1_2.*``,
``speed_background_load_0_1.*`` and so on
for runs with other settings (:func:`result_stem`), so no run overwrites another kind.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

FRAMEWORKS = ("minicnn", "minicnn-numpy", "keras")
IMPLEMENTATION = {"minicnn": "fast", "minicnn-numpy": "reference"}
"""``MINICNN_IMPLEMENTATION`` for each minicnn variant: the fast implementation and the NumPy reference."""
PREDICT_REPEATS = 5
"""Timed ``predict`` calls per run, after one untimed call."""
BUSY_LIMIT_S = 4 * 3600
"""A background-load process stops by itself after this long, or as soon as the benchmark is gone."""


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
    return {**time_epochs(lambda: model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0), epochs),
            **time_predict(lambda: model.predict(x_test, batch_size=batch_size))}


def timed(fn) -> tuple[float, float]:
    """Wall-clock and CPU seconds of ``fn()``; CPU seconds count every thread of this process."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def time_epochs(fit_one_epoch, epochs: int) -> dict[str, list[float]]:
    """Wall-clock and CPU seconds of each of ``epochs`` calls of ``fit_one_epoch()``."""
    times = [timed(fit_one_epoch) for _ in range(epochs)]
    return {"epoch_seconds": [wall for wall, _ in times], "epoch_cpu_seconds": [cpu for _, cpu in times]}


def time_predict(predict) -> dict:
    """``PREDICT_REPEATS`` calls of ``predict()`` after one untimed call.

    Returns their wall-clock and CPU seconds, and the median wall-clock seconds as ``predict_seconds``.
    """
    predict()
    times = [timed(predict) for _ in range(PREDICT_REPEATS)]
    walls = [wall for wall, _ in times]
    return {"predict_seconds": statistics.median(walls), "predict_seconds_all": walls,
            "predict_cpu_seconds": [cpu for _, cpu in times]}


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
    return {**time_epochs(lambda: model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0, shuffle=True),
                          epochs),
            **time_predict(lambda: model.predict(x_test, batch_size=batch_size, verbose=0))}


def worker(args: argparse.Namespace) -> None:
    """Run one measurement and print it as one JSON line on stdout."""
    if args.worker == "keras":  # TensorFlow loads its libraries before minicnn sets its thread defaults
        import tensorflow  # noqa: F401
    x, y, x_test, source = load_data(args.train_images, args.test_images)
    if args.worker == "keras":
        result = run_keras(x, y, x_test, args.epochs, args.batch_size, args.threads)
    else:
        result = run_minicnn(x, y, x_test, args.epochs, args.batch_size)
    result.update(data=source, train_images=len(x), test_images=len(x_test),
                  peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(result))


# --------------------------------------------------------------------------- the driver


def spawn(framework: str, args: argparse.Namespace, threads: int, numba_cache: str,
          train_images: int) -> dict:
    env = dict(os.environ)
    env.update(NUMBA_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
               OMP_NUM_THREADS=str(threads), NUMBA_CACHE_DIR=numba_cache, TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("MINICNN_KERNELS", None)  # the old name of MINICNN_IMPLEMENTATION: both set is an error
    if framework in IMPLEMENTATION:
        env["MINICNN_IMPLEMENTATION"] = IMPLEMENTATION[framework]
    cmd = [sys.executable, __file__, "--worker", framework, "--epochs", str(args.epochs),
           "--train-images", str(train_images), "--test-images", str(args.test_images),
           "--batch-size", str(args.batch_size), "--threads", str(threads)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{framework} worker failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


BUSY_LOOP = """
import os, sys, time
parent, deadline = int(sys.argv[1]), time.monotonic() + float(sys.argv[2])
while os.getppid() == parent and time.monotonic() < deadline:
    for _ in range(100_000):
        pass
"""


@contextlib.contextmanager
def background_load(processes: int):
    """Keep ``processes`` busy processes running for the duration of the ``with`` block.

    Each spins in a pure Python loop (one core's worth of load) and checks
    every few milliseconds whether this process is still its parent and its
    ``BUSY_LIMIT_S`` are not over, so none outlives the benchmark for long.
    """
    busy = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP, str(os.getpid()), str(BUSY_LIMIT_S)])
            for _ in range(processes)]
    try:
        yield
    finally:
        for p in busy:
            p.terminate()
        for p in busy:
            p.wait()


def keras_available() -> bool:
    return all(importlib.util.find_spec(name) is not None for name in ("tensorflow", "keras"))


def summarize(runs: list[dict]) -> dict:
    """Medians over repetitions of one framework's runs."""
    steady = [r["train_images"] / statistics.median(r["epoch_seconds"][1:]) for r in runs]
    overhead = [r["epoch_seconds"][0] - statistics.median(r["epoch_seconds"][1:]) for r in runs]
    return {
        "train_images_per_s": statistics.median(steady),
        "train_images_per_s_all": steady,
        "train_images_per_s_fastest": max(r["train_images"] / min(r["epoch_seconds"][1:]) for r in runs),
        "train_cores": statistics.median(sum(r["epoch_cpu_seconds"][1:]) / sum(r["epoch_seconds"][1:])
                                         for r in runs),
        "seconds_per_56000_image_epoch": 56000 / statistics.median(steady),
        "first_epoch_overhead_s": statistics.median(overhead),
        "first_epoch_overhead_cold_s": overhead[0],
        "predict_images_per_s": statistics.median(r["test_images"] / r["predict_seconds"] for r in runs),
        "predict_images_per_s_fastest": max(r["test_images"] / min(r["predict_seconds_all"]) for r in runs),
        "predict_cores": statistics.median(sum(r["predict_cpu_seconds"]) / sum(r["predict_seconds_all"])
                                           for r in runs),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "train_images": runs[0]["train_images"],
        "data": runs[0]["data"],
        "repeats": len(runs),
    }


def parallel_efficiency(by_threads: dict[int, dict[str, dict]]) -> dict[str, dict[int, dict[str, float]]]:
    """Per framework and thread count T > 1: ``images/s at T / (T * images/s at 1 thread)``.

    Training and inference separately; empty unless one thread was measured.
    """
    if 1 not in by_threads:
        return {}
    single = by_threads[1]
    return {f: {t: {k: by_threads[t][f][key] / (t * single[f][key])
                    for k, key in (("train", "train_images_per_s"), ("predict", "predict_images_per_s"))}
                for t in by_threads if t > 1}
            for f in single}


def markdown(results: dict) -> str:
    m, c = results["machine"], results["config"]
    blas = ", ".join(f"{b['library']}: {b['internal_api']} {b['version']} ({b['architecture']} kernels)"
                     for b in m["blas"])
    lim = m["limits"]
    loads = ", ".join(map(str, c["background_load"]))
    lines = [f"Measured {results['date']} on {machine_module().describe_cpu(m['cpu'])}, {m['cores']} cores; "
             f"batch {c['batch_size']}, medians of {c['repeats']} repetitions, "
             f"background load: {loads} busy process(es).", "",
             f"Machine limits with {m['limits_threads']} threads ({blas}"
             + (f"; {', '.join(f'{k}={v}' for k, v in m['blas_environment'].items())}"
                if m["blas_environment"] else "")
             + f"): sgemm {lim['sgemm_conv2_gflops']:.0f} GFLOP/s on the conv2 shape "
             f"25088x288 @ 288x64, {lim['sgemm_square_gflops']:.0f} GFLOP/s on 2048x2048; "
             f"memory copy {lim['copy_gb_per_s']:.1f} GB/s (read + write)."]
    for load, by_threads in results["by_background_load"].items():
        for threads, summary in by_threads.items():
            lines += table(summary, f"{threads} thread(s), {load} busy process(es) beside:")
    for load, per_framework in results["parallel_efficiency"].items():
        if per_framework:
            lines += ["", f"Parallel efficiency, {load} busy process(es) beside: images/s at T threads "
                      "/ (T x images/s at 1 thread):", "",
                      "| | threads | training | inference |", "|---|---:|---:|---:|"]
            lines += [f"| {f} | {t} | {e['train']:.0%} | {e['predict']:.0%} |"
                      for f, per_t in per_framework.items() for t, e in per_t.items()]
    lines += [""] * bool(results["loaded_over_quiet"])
    lines += [f"Beside {load} busy process(es), minicnn's ratio to Keras at {threads} thread(s) is "
              f"{r['train']:.2f} of the quiet one for training and {r['predict']:.2f} for inference."
              for load, per_t in results["loaded_over_quiet"].items() for threads, r in per_t.items()]
    return "\n".join(lines) + "\n"


def table(summary: dict, title: str) -> list[str]:
    """One markdown table of ``summary`` (framework -> figures), with the minicnn/Keras ratios."""
    lines = ["", title, "",
             "| | training images/s (fastest epoch) | s per 56k-image epoch "
             "| first-epoch overhead (cold / warm) | inference images/s (fastest call) "
             "| cores busy, training / inference | peak memory |", "|---|---:|---:|---:|---:|---:|---:|"]
    for name, row in summary.items():
        lines.append(f"| {name} | {row['train_images_per_s']:,.0f} "
                     f"({row['train_images_per_s_fastest']:,.0f}) "
                     f"| {row['seconds_per_56000_image_epoch']:.1f} "
                     f"| {row['first_epoch_overhead_cold_s']:.1f} s "
                     f"/ {row['first_epoch_overhead_s']:.1f} s "
                     f"| {row['predict_images_per_s']:,.0f} ({row['predict_images_per_s_fastest']:,.0f}) "
                     f"| {row['train_cores']:.2f} / {row['predict_cores']:.2f} "
                     f"| {row['peak_rss_mb']:,.0f} MB |")
    if "keras" in summary:
        train, infer = keras_ratios(summary)
        best_train, best_infer = keras_ratios(summary, fastest=True)
        lines += ["", f"minicnn / Keras: training {train:.2f}x, inference {infer:.2f}x by the medians; "
                  f"each one's fastest epoch and call against the other's: training {best_train:.2f}x, "
                  f"inference {best_infer:.2f}x."]
    return lines


def keras_ratios(summary: dict, fastest: bool = False) -> tuple[float, float]:
    """minicnn's training and inference throughput over Keras': of the medians, or of each one's fastest."""
    suffix = "_fastest" if fastest else ""
    return tuple(summary["minicnn"][key + suffix] / summary["keras"][key + suffix]
                 for key in ("train_images_per_s", "predict_images_per_s"))


def loaded_over_quiet(by_load: dict[int, dict[int, dict[str, dict]]]
                      ) -> dict[int, dict[int, dict[str, float]]]:
    """Per load N > 0 and thread count: minicnn's ratio to Keras beside N busy processes over the quiet ratio.

    Empty unless the quiet machine (load 0) and Keras were measured.
    """
    if 0 not in by_load:
        return {}
    out = {}
    for load, by_threads in by_load.items():
        if load > 0:
            out[load] = {}
            for threads, summary in by_threads.items():
                if "keras" in summary:
                    loaded, quiet = keras_ratios(summary), keras_ratios(by_load[0][threads])
                    out[load][threads] = {"train": loaded[0] / quiet[0], "predict": loaded[1] / quiet[1]}
    return out


def machine_module():
    """``benchmarks/machine.py``, loaded from beside this file (the benchmarks are scripts, no package)."""
    spec = importlib.util.spec_from_file_location("machine", Path(__file__).with_name("machine.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def drive(args: argparse.Namespace) -> None:
    # A terminated driver raises SystemExit instead of dying at once, so subprocess.run
    # kills the running worker and the background load stops with it.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(f"{__file__}: terminated"))
    frameworks = [f for f in FRAMEWORKS if f != "keras" or keras_available()]
    if "keras" not in frameworks:
        print("TensorFlow/Keras not installed (pip install -e '.[keras]'): measuring minicnn only.")
    print("measuring the machine's limits ...", flush=True)
    machine = machine_module().describe_in_subprocess(threads=max(args.threads))
    loads, threads_list = args.background_load, args.threads
    runs = {load: {t: {f: [] for f in frameworks} for t in threads_list} for load in loads}
    with tempfile.TemporaryDirectory() as numba_cache:
        for rep in range(args.repeats):
            for load in loads:
                with background_load(load):
                    for threads in threads_list:
                        for framework in frameworks:
                            images = args.train_images // (4 if framework == "minicnn-numpy" else 1)
                            run = spawn(framework, args, threads, numba_cache, images)
                            runs[load][threads][framework].append(run)
                            epochs = ", ".join(f"{s:.1f}" for s in run["epoch_seconds"])
                            print(f"repeat {rep + 1}/{args.repeats} load {load} {threads} thread(s) "
                                  f"{framework:14s} epochs [{epochs}] s on {run['train_images']} images; "
                                  f"predict {run['predict_seconds']:.2f} s", flush=True)
    by_load = {load: {t: {f: summarize(r) for f, r in per_t.items()} for t, per_t in per_load.items()}
               for load, per_load in runs.items()}
    results = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        "machine": machine,
        "config": {k: getattr(args, k) for k in ("train_images", "test_images", "epochs", "batch_size",
                                                   "threads", "repeats", "background_load")},
        "summary": by_load[loads[0]][max(threads_list)],
        "by_background_load": by_load,
        "parallel_efficiency": {load: parallel_efficiency(per_t) for load, per_t in by_load.items()},
        "loaded_over_quiet": loaded_over_quiet(by_load),
        "runs": runs,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from minicnn.files import atomic_write

    stem = result_stem(args.threads, args.background_load)
    atomic_write(out / f"{stem}.json", lambda f: f.write(json.dumps(results, indent=2).encode()))
    table = markdown(json.loads(json.dumps(results)))
    atomic_write(out / f"{stem}.md", lambda f: f.write(table.encode()))
    print()
    print(table)
    print(f"written to {out / f'{stem}.json'} and {out / f'{stem}.md'}")


def result_stem(threads: list[int], background_load: list[int]) -> str:
    """``speed`` for one thread count on a quiet machine, with the settings that differ appended."""
    stem = "speed"
    if len(threads) > 1:
        stem += "_threads_" + "_".join(map(str, threads))
    if background_load != [0]:
        stem += "_background_load_" + "_".join(map(str, background_load))
    return stem


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train-images", type=int, default=56000, help="images per training epoch")
    parser.add_argument("--test-images", type=int, default=10000, help="images for inference")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run; the first counts as warm-up")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, nargs="+", default=[os.cpu_count()],
                        help="threads for every framework; several counts (e.g. 1 2) measure each")
    parser.add_argument("--background-load", type=int, nargs="+", default=[0], metavar="N",
                        help="busy processes to run beside the measurement; several counts (e.g. 0 1) "
                             "alternate within each repetition")
    parser.add_argument("--repeats", type=int, default=3, help="runs per framework, alternating")
    parser.add_argument("--quick", action="store_true", help="small epochs and one repeat, for a smoke test")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"), help="output directory")
    parser.add_argument("--worker", choices=FRAMEWORKS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.train_images, args.test_images, args.epochs, args.repeats = 4096, 2048, 2, 1
    if args.epochs < 2:
        parser.error("--epochs must be at least 2: the first epoch is warm-up")
    if any(t < 1 for t in args.threads) or len(set(args.threads)) != len(args.threads):
        parser.error(f"--threads must be distinct positive counts; got {args.threads}")
    loads = args.background_load
    if any(n < 0 for n in loads) or len(set(loads)) != len(loads):
        parser.error(f"--background-load must be distinct counts of 0 or more processes; got {loads}")
    if args.worker:
        (args.threads,) = args.threads
    else:
        args.threads = sorted(args.threads)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    worker(args) if args.worker else drive(args)


if __name__ == "__main__":
    main()
