"""Training and inference speed of a zoo of common CNNs in minicnn, Keras and PyTorch, side by side.

    python benchmarks/bench_zoo.py                        # every model, every framework installed
    python benchmarks/bench_zoo.py --models seed cifar10  # some of the models
    python benchmarks/bench_zoo.py --quick                # a smoke run of a few minutes
    python benchmarks/bench_zoo.py --tree before=/tmp/old # also another checkout of minicnn, alternating

The zoo (:data:`ZOO`) is written once, as Keras layer calls, and built from that
one description in every framework: minicnn and Keras take the same
constructors, PyTorch gets the equivalent ``torch.nn`` modules (NCHW, the same
shapes, the same parameter counts; ``'same'`` padding as ``k // 2``). Each
measurement runs in a fresh process (``--worker``), the frameworks alternate
model by model and repetition by repetition, all at the same threads, batch and
random data (float32 images in [0, 1], one-hot labels, the same seed), so a
machine that gets busier or quieter affects all alike. Reported per model and
framework:

- training: images/s of the steady epochs (every epoch after the first), median
  over repetitions and the fastest epoch of all (Adam, batch 128, shuffled,
  dropout on, BatchNormalization in training mode);
- inference: images/s of ``predict`` (PyTorch: ``eval()`` under
  ``torch.inference_mode()``), median of ``PREDICT_REPEATS`` calls after an
  untimed one, and the fastest call;
- minicnn over Keras and over PyTorch, fastest against fastest (Keras' medians
  mix its two epoch speeds, see ``docs/performance.md``) and by the medians.

``minicnn-numpy`` is minicnn's NumPy reference implementation, on an eighth of the
images. PyTorch is an optional extra of the benchmarks (``pip install -e
".[bench]"``; on this project's machines ``pip install torch==2.13.0`` takes the
CPU build from disk); a framework that is not installed is left out with a note.
The CPU, NumPy's BLAS and its environment are recorded beside the table
(``machine.py``). Results go to ``--out`` as ``zoo.json`` and ``zoo.md``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent
PREDICT_REPEATS = 5

ZOO: dict[str, dict] = {
    "seed": {
        "about": "the published MNIST model (README): conv-pool-dropout x2, dense, softmax",
        "input": (28, 28, 1), "train_images": 12800,
        "layers": [
            ("Conv2D", dict(filters=32, kernel_size=3, padding="same", activation="relu")),
            ("MaxPooling2D", dict(pool_size=2)), ("Dropout", dict(rate=0.25)),
            ("Conv2D", dict(filters=64, kernel_size=3, padding="same", activation="relu")),
            ("MaxPooling2D", dict(pool_size=2)), ("Dropout", dict(rate=0.25)),
            ("Flatten", {}), ("Dense", dict(units=128, activation="relu")), ("Dropout", dict(rate=0.5)),
            ("Dense", dict(units=10, activation="softmax"))]},
    "cifar10": {
        "about": "examples/cifar10_cnn.py: conv (no bias)-BN-ReLU x5, max-pooling, dropout, global average",
        "input": (32, 32, 3), "train_images": 3200,
        "layers": [
            *[layer for filters in (32, 32) for layer in (
                ("Conv2D", dict(filters=filters, kernel_size=3, padding="same", use_bias=False)),
                ("BatchNormalization", {}), ("ReLU", {}))],
            ("MaxPooling2D", dict(pool_size=2)), ("Dropout", dict(rate=0.2)),
            *[layer for filters in (64, 64) for layer in (
                ("Conv2D", dict(filters=filters, kernel_size=3, padding="same", use_bias=False)),
                ("BatchNormalization", {}), ("ReLU", {}))],
            ("MaxPooling2D", dict(pool_size=2)), ("Dropout", dict(rate=0.3)),
            ("Conv2D", dict(filters=128, kernel_size=3, padding="same", use_bias=False)),
            ("BatchNormalization", {}), ("ReLU", {}),
            ("GlobalAveragePooling2D", {}), ("Dense", dict(units=10, activation="softmax"))]},
    "lenet5": {
        "about": "LeNet-5: 5x5 convolutions with tanh, average pooling, three dense layers",
        "input": (28, 28, 1), "train_images": 12800,
        "layers": [
            ("Conv2D", dict(filters=6, kernel_size=5, padding="same", activation="tanh")),
            ("AveragePooling2D", dict(pool_size=2)),
            ("Conv2D", dict(filters=16, kernel_size=5, padding="valid", activation="tanh")),
            ("AveragePooling2D", dict(pool_size=2)), ("Flatten", {}),
            ("Dense", dict(units=120, activation="tanh")), ("Dense", dict(units=84, activation="tanh")),
            ("Dense", dict(units=10, activation="softmax"))]},
    "vgg": {
        "about": "a VGG-style stack on 32x32x3: (conv-conv-pool) x3 with 32, 64, 128 filters, dense",
        "input": (32, 32, 3), "train_images": 3200,
        "layers": [
            *[layer for filters in (32, 64, 128) for layer in (
                ("Conv2D", dict(filters=filters, kernel_size=3, padding="same", activation="relu")),
                ("Conv2D", dict(filters=filters, kernel_size=3, padding="same", activation="relu")),
                ("MaxPooling2D", dict(pool_size=2)))],
            ("Flatten", {}), ("Dense", dict(units=128, activation="relu")), ("Dropout", dict(rate=0.5)),
            ("Dense", dict(units=10, activation="softmax"))]},
    "allconv": {
        "about": "an all-convolutional net: stride-2 convolutions instead of pooling, a 1x1 classifier",
        "input": (32, 32, 3), "train_images": 3200,
        "layers": [
            ("Conv2D", dict(filters=32, kernel_size=3, padding="same", activation="relu")),
            ("Conv2D", dict(filters=32, kernel_size=3, strides=2, padding="same", activation="relu")),
            ("Conv2D", dict(filters=64, kernel_size=3, padding="same", activation="relu")),
            ("Conv2D", dict(filters=64, kernel_size=3, strides=2, padding="same", activation="relu")),
            ("Conv2D", dict(filters=128, kernel_size=3, padding="same", activation="relu")),
            ("Conv2D", dict(filters=10, kernel_size=1, padding="valid")),
            ("GlobalAveragePooling2D", {}), ("Activation", dict(activation="softmax"))]},
    "typical": {
        "about": "what tutorials teach: Conv2D(relu)-BatchNormalization-MaxPool x2, dense, dropout",
        "input": (28, 28, 1), "train_images": 6400,
        "layers": [
            *[layer for filters in (32, 64) for layer in (
                ("Conv2D", dict(filters=filters, kernel_size=3, activation="relu")),
                ("BatchNormalization", {}), ("MaxPooling2D", dict(pool_size=2)))],
            ("Flatten", {}), ("Dense", dict(units=64, activation="relu")), ("Dropout", dict(rate=0.5)),
            ("Dense", dict(units=10, activation="softmax"))]},
}
"""Each model: its input shape (H, W, C), images per training epoch, and its layers as Keras calls."""

FRAMEWORKS = ("minicnn", "minicnn-numpy", "keras", "torch")
REFERENCE_SHARE = 8
"""``minicnn-numpy`` trains on ``1 / REFERENCE_SHARE`` of the images: it is that much slower."""


# --------------------------------------------------------------------------- workers (subprocesses)


def random_data(shape: tuple[int, int, int], train_images: int, test_images: int):
    """float32 images (N, H, W, C) in [0, 1] and one-hot labels of 10 classes, the same in every framework."""
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.random((train_images, *shape), dtype=np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, train_images)]
    return x, y, rng.random((test_images, *shape), dtype=np.float32)


def keras_style_model(module, spec: dict):
    """The zoo model ``spec`` built by ``module``, minicnn or keras: the two share the constructors."""
    layers = [module.Input(spec["input"])]
    layers += [getattr(module.layers, name)(**kwargs) for name, kwargs in spec["layers"]]
    return module.Sequential(layers)


def run_minicnn(spec: dict, x, y, x_test, epochs: int, batch_size: int) -> dict:
    import minicnn

    minicnn.set_random_seed(0)
    model = keras_style_model(minicnn, spec)
    model.compile(optimizer=minicnn.Adam(), loss="categorical_crossentropy", metrics=["accuracy"])
    return {**bench.time_epochs(lambda: model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0), epochs),
            **bench.time_predict(lambda: model.predict(x_test, batch_size=batch_size, verbose=0))}


def run_keras(spec: dict, x, y, x_test, epochs: int, batch_size: int, threads: int) -> dict:
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    import keras

    keras.utils.set_random_seed(0)
    model = keras_style_model(keras, spec)
    model.compile(optimizer=keras.optimizers.Adam(), loss="categorical_crossentropy", metrics=["accuracy"])
    return {**bench.time_epochs(lambda: model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0,
                                                  shuffle=True), epochs),
            **bench.time_predict(lambda: model.predict(x_test, batch_size=batch_size, verbose=0))}


def torch_model(spec: dict):
    """The zoo model ``spec`` as ``torch.nn`` modules on NCHW input, ending in logits.

    The final softmax is left to the loss (``CrossEntropyLoss`` takes logits), as PyTorch code does.
    """
    from torch import nn

    activations = {"relu": nn.ReLU, "tanh": nn.Tanh, "softmax": None, None: None}
    h, w, c = spec["input"]
    modules: list = []
    features = None  # the flat width once Flatten or global pooling has run

    def add_activation(name):
        if activations[name] is not None:
            modules.append(activations[name]())

    for name, kw in spec["layers"]:
        if name == "Conv2D":
            k, s = kw["kernel_size"], kw.get("strides", 1)
            pad = k // 2 if kw.get("padding") == "same" else 0
            bias = kw.get("use_bias", True)
            modules.append(nn.Conv2d(c, kw["filters"], k, stride=s, padding=pad, bias=bias))
            c, h, w = kw["filters"], (h + 2 * pad - k) // s + 1, (w + 2 * pad - k) // s + 1
            add_activation(kw.get("activation"))
        elif name == "BatchNormalization":
            modules.append(nn.BatchNorm2d(c, eps=1e-3, momentum=0.01))  # Keras' defaults
        elif name in ("ReLU", "Activation"):
            add_activation(kw.get("activation", "relu"))
        elif name in ("MaxPooling2D", "AveragePooling2D"):
            pool = nn.MaxPool2d if name == "MaxPooling2D" else nn.AvgPool2d
            modules.append(pool(kw["pool_size"]))
            h, w = h // kw["pool_size"], w // kw["pool_size"]
        elif name == "Dropout":
            modules.append(nn.Dropout(kw["rate"]))
        elif name == "Flatten":
            modules.append(nn.Flatten())
            features = c * h * w
        elif name == "GlobalAveragePooling2D":
            modules += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
            features = c
        elif name == "Dense":
            modules.append(nn.Linear(features, kw["units"]))
            features = kw["units"]
            add_activation(kw.get("activation"))
        else:
            raise ValueError(f"no PyTorch equivalent written for the zoo's layer {name}")
    return nn.Sequential(*modules)


def run_torch(spec: dict, x, y, x_test, epochs: int, batch_size: int, threads: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = torch_model(spec)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)  # Keras' epsilon
    loss_fn = torch.nn.CrossEntropyLoss()
    images = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
    labels = torch.from_numpy(y.argmax(axis=1))
    test = torch.from_numpy(x_test.transpose(0, 3, 1, 2).copy())

    def one_epoch():
        model.train()
        order = torch.randperm(len(images))
        for start in range(0, len(images), batch_size):
            batch = order[start:start + batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss_fn(model(images[batch]), labels[batch]).backward()
            optimizer.step()

    def predict():
        model.eval()
        with torch.inference_mode():
            return torch.cat([torch.softmax(model(test[i:i + batch_size]), dim=1)
                              for i in range(0, len(test), batch_size)])

    return {**bench.time_epochs(one_epoch, epochs), **bench.time_predict(predict)}


def worker(args: argparse.Namespace) -> None:
    """Run one measurement of one model and print it as one JSON line on stdout."""
    if args.worker == "keras":  # TensorFlow loads its libraries before minicnn sets its thread defaults
        import tensorflow  # noqa: F401
    spec = ZOO[args.model]
    x, y, x_test = random_data(spec["input"], args.train_images, args.test_images)
    if args.worker == "keras":
        result = run_keras(spec, x, y, x_test, args.epochs, args.batch_size, args.threads)
    elif args.worker == "torch":
        result = run_torch(spec, x, y, x_test, args.epochs, args.batch_size, args.threads)
    else:
        result = run_minicnn(spec, x, y, x_test, args.epochs, args.batch_size)
    result.update(train_images=len(x), test_images=len(x_test),
                  peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(result))


# --------------------------------------------------------------------------- the driver


def installed(framework: str) -> bool:
    needs = {"keras": ("tensorflow", "keras"), "torch": ("torch",)}.get(framework, ())
    return all(importlib.util.find_spec(name) is not None for name in needs)


def spawn(framework: str, model: str, args: argparse.Namespace, numba_cache: str, tree: Path | None) -> dict:
    """One measurement in a fresh process; ``tree`` is a minicnn checkout to import instead of this one."""
    env = dict(os.environ)
    threads = str(args.threads)
    env.update(NUMBA_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads, OMP_NUM_THREADS=threads,
               NUMBA_CACHE_DIR=numba_cache, TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("MINICNN_KERNELS", None)
    kind = "minicnn" if tree is not None else framework
    if kind.startswith("minicnn"):
        env["MINICNN_IMPLEMENTATION"] = "reference" if kind == "minicnn-numpy" else "fast"
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    share = REFERENCE_SHARE if kind == "minicnn-numpy" else 1
    train_images = (args.train_images or ZOO[model]["train_images"]) // share
    cmd = [sys.executable, __file__, "--worker", kind, "--models", model, "--epochs", str(args.epochs),
           "--train-images", str(train_images), "--test-images", str(args.test_images // share),
           "--batch-size", str(args.batch_size), "--threads", threads]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"error: the {framework} worker on {model} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def summarize(runs: list[dict]) -> dict:
    """Medians and fastest over the repetitions of one framework on one model."""
    steady = [r["train_images"] / statistics.median(r["epoch_seconds"][1:]) for r in runs]
    return {
        "train": statistics.median(steady),
        "train_fastest": max(r["train_images"] / min(r["epoch_seconds"][1:]) for r in runs),
        "predict": statistics.median(r["test_images"] / r["predict_seconds"] for r in runs),
        "predict_fastest": max(r["test_images"] / min(r["predict_seconds_all"]) for r in runs),
        "first_epoch_overhead_s": statistics.median(
            r["epoch_seconds"][0] - statistics.median(r["epoch_seconds"][1:]) for r in runs),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "repeats": len(runs),
    }


def ratio(summary: dict, other: str, key: str) -> float | None:
    """minicnn's ``key`` figure over ``other``'s, or None when ``other`` was not measured."""
    if other not in summary or "minicnn" not in summary:
        return None
    return summary["minicnn"][key] / summary[other][key]


def markdown(results: dict) -> str:
    m, c = results["machine"], results["config"]
    blas = ", ".join(f"{b['internal_api']} {b['version']} ({b['architecture']} kernels)" for b in m["blas"])
    env = ", ".join(f"{k}={v}" for k, v in m["blas_environment"].items()) or "no OPENBLAS_* variables set"
    lines = [f"Measured {results['date']} on {bench.machine_module().describe_cpu(m['cpu'])}, "
             f"{c['threads']} threads; NumPy's BLAS: {blas}; {env}. Batch {c['batch_size']}, random data, "
             f"{c['epochs'] - 1} steady epochs per run, {c['repeats']} run(s) per framework, alternating. "
             "Images/s: median (fastest).", "",
             "| model | framework | training img/s | inference img/s |", "|---|---|---:|---:|"]
    for model, summary in results["summary"].items():
        for framework, row in summary.items():
            lines.append(f"| {model} | {framework} | {row['train']:,.0f} ({row['train_fastest']:,.0f}) "
                         f"| {row['predict']:,.0f} ({row['predict_fastest']:,.0f}) |")
    lines += ["", "minicnn over each, fastest against fastest (by the medians in brackets):", "",
              "| model | / Keras, training | / Keras, inference "
              "| / PyTorch, training | / PyTorch, inference |",
              "|---|---:|---:|---:|---:|"]
    for model, summary in results["summary"].items():
        cells = []
        for other in ("keras", "torch"):
            for key in ("train", "predict"):
                fast, median = ratio(summary, other, key + "_fastest"), ratio(summary, other, key)
                cells.append("-" if fast is None else f"{fast:.2f}x ({median:.2f}x)")
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def parse_tree(text: str) -> tuple[str, Path]:
    name, sep, path = text.partition("=")
    tree = Path(path).resolve()
    if not sep or not name or not (tree / "minicnn" / "__init__.py").is_file():
        raise argparse.ArgumentTypeError(f"expected NAME=DIR with DIR a minicnn checkout; got {text!r}")
    return name, tree


def drive(args: argparse.Namespace) -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(f"{__file__}: terminated"))
    frameworks = [f for f in args.frameworks if installed(f)]
    for f in sorted(set(args.frameworks) - set(frameworks)):
        print(f"{f} is not installed (pip install -e '.[{'bench' if f == 'torch' else f}]'): left out.")
    entries = [(f, None) for f in frameworks] + [(name, tree) for name, tree in args.tree]
    print("measuring the machine's limits ...", flush=True)
    machine = bench.machine_module().describe_in_subprocess(threads=args.threads)
    runs: dict[str, dict[str, list]] = {m: {name: [] for name, _ in entries} for m in args.models}
    with tempfile.TemporaryDirectory() as caches:
        for rep in range(args.repeats):
            for model in args.models:
                for name, tree in entries:
                    run = spawn(name, model, args, str(Path(caches) / name), tree)
                    runs[model][name].append(run)
                    epochs = ", ".join(f"{s:.2f}" for s in run["epoch_seconds"])
                    print(f"repeat {rep + 1}/{args.repeats} {model:8s} {name:14s} epochs [{epochs}] s on "
                          f"{run['train_images']} images; predict {run['predict_seconds']:.2f} s", flush=True)
    results = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        "machine": machine,
        "config": {k: getattr(args, k)
                   for k in ("test_images", "epochs", "batch_size", "threads", "repeats")},
        "zoo": {m: ZOO[m] for m in args.models},
        "summary": {m: {f: summarize(r) for f, r in per_f.items()} for m, per_f in runs.items()},
        "runs": runs,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from minicnn.files import atomic_write

    text = markdown(json.loads(json.dumps(results)))
    atomic_write(out / "zoo.json", lambda f: f.write(json.dumps(results, indent=2, default=str).encode()))
    atomic_write(out / "zoo.md", lambda f: f.write(text.encode()))
    print()
    print(text)
    print(f"written to {out / 'zoo.json'} and {out / 'zoo.md'}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", choices=list(ZOO), default=list(ZOO), help="zoo models to run")
    parser.add_argument("--frameworks", nargs="+", choices=FRAMEWORKS, default=list(FRAMEWORKS))
    parser.add_argument("--tree", type=parse_tree, action="append", default=[], metavar="NAME=DIR",
                        help="also minicnn (fast) from another checkout, under NAME; repeatable")
    parser.add_argument("--train-images", type=int, default=None,
                        help="images per training epoch (default: each model's own, see ZOO)")
    parser.add_argument("--test-images", type=int, default=2560, help="images for inference")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run; the first counts as warm-up")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="threads for every framework")
    parser.add_argument("--repeats", type=int, default=2, help="runs per framework and model, alternating")
    parser.add_argument("--quick", action="store_true", help="small epochs and one repeat, for a smoke test")
    parser.add_argument("--out", default=str(BENCHMARKS / "results"), help="output directory")
    parser.add_argument("--worker", choices=FRAMEWORKS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.train_images, args.test_images, args.epochs, args.repeats = 512, 256, 2, 1
    if args.epochs < 2:
        parser.error("--epochs must be at least 2: the first epoch is warm-up")
    if args.threads < 1:
        parser.error(f"--threads must be a positive count; got {args.threads}")
    if args.worker:
        (args.model,) = args.models
    return args


def load_bench_speed():
    """``benchmarks/bench_speed.py``, whose timing helpers this script shares (the benchmarks are scripts)."""
    spec = importlib.util.spec_from_file_location("bench_speed", BENCHMARKS / "bench_speed.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = load_bench_speed()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    worker(args) if args.worker else drive(args)


if __name__ == "__main__":
    main()
