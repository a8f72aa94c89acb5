"""The command line the k-fold example and the Keras baseline share: flags, checks, data, printing.

Every bad flag ends in one ``error:`` line (exit status 2 for flags, 1 for data that
cannot be had), never a traceback, and before anything is written. :func:`one_line_failures`
does the same for a failure of the run (exit status 1), and stops the run cleanly on
Ctrl-C (130) or SIGTERM (143); its output never fails on a terminal that is not UTF-8.
"""

from __future__ import annotations

import argparse
import codecs
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from minicnn import datasets
from minicnn.experiments.crossval import CrossValidationResult, HoldoutResult
from minicnn.experiments.data import DATASETS, Data, load_data
from minicnn.experiments.protocol import BATCH_SIZE, FULL, LEARNING_RATE, QUICK

VERBOSITY = (0, 1, 2, "auto")
"""``--verbose``'s values: ``fit``'s (see :mod:`minicnn.trainers.progress`)."""


def verbosity(text: str) -> int | str:
    """``--verbose``'s value as ``fit`` takes it: ``auto``, or 0, 1 or 2 as an int."""
    return text if text == "auto" else int(text)


def protocol_parser(description: str) -> argparse.ArgumentParser:
    """A parser with the protocol's flags: the folds, epochs, data, seed and output folder."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--folds", type=int, help=f"number of KFold splits ({FULL['folds']}; "
                        f"{QUICK['folds']} with --quick)")
    parser.add_argument("--epochs", type=int, help=f"epochs per model ({FULL['epochs']}; "
                        f"{QUICK['epochs']} with --quick)")
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE, help=f"mini-batch size ({BATCH_SIZE})")
    parser.add_argument("--seed", type=int, default=0, help="seed of the whole run, >= 0 (0)")
    parser.add_argument("--limit", type=int, metavar="N",
                        help="cross-validate on the first N images only; the final model trains and tests on "
                        "the first images of the training and test sets, N in all, in their proportion "
                        f"(all; {QUICK['limit']:,} with --quick, or all if the dataset is smaller)")
    parser.add_argument("--quick", action="store_true", help="every step on less data, in about a "
                        "minute on 2 cores: " + ", ".join(f"{k} {v}" for k, v in QUICK.items()))
    parser.add_argument("--dataset", type=_dataset, default="mnist", metavar="NAME",
                        help=f"{', '.join(DATASETS)}, or idx:DIR (any folder of MNIST-format files) "
                        "(mnist; digits is bundled with scikit-learn, its last 20%% the test set)")
    parser.add_argument("--data-dir", metavar="DIR", help="where the dataset's files are "
                        "(default: $MINICNN_DATA/<dataset>/, else the download cache)")
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help="output folder, new or empty (runs/<UTC time>/)")
    parser.add_argument("--verbose", type=verbosity, choices=VERBOSITY, default="auto",
                        help="0 no training output, 1 progress bars and a line per epoch, 2 the line only, "
                        "auto (default) 1 on a terminal, else 2")
    return parser


def check_args(parser: argparse.ArgumentParser, args: argparse.Namespace,
               out_must_be_new: bool = True) -> argparse.Namespace:
    """Fill the presets into ``args`` and check every flag; ``parser.error`` (exit 2) on a bad one."""
    args.limit_is_preset = args.quick and args.limit is None
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    for flag, value, minimum in (("--folds", args.folds, 2), ("--epochs", args.epochs, 1),
                                 ("--batch-size", args.batch_size, 1), ("--seed", args.seed, 0),
                                 ("--limit", args.limit, 2)):
        if value is not None and value < minimum:
            parser.error(f"{flag} must be at least {minimum}; got {value}")
    if args.limit is not None and args.limit < args.folds:
        parser.error(f"--limit {args.limit} leaves fewer images than --folds {args.folds}")
    if args.out is None:
        args.out = Path("runs") / datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    if out_must_be_new:
        check_new_out(parser, args.out)
    return args


def check_new_out(parser: argparse.ArgumentParser, out: Path) -> None:
    """``parser.error`` (exit 2) unless ``out`` is a new or empty folder, or cannot even be looked at."""
    try:
        taken = out.exists() and (not out.is_dir() or any(out.iterdir()))
    except OSError as exc:
        parser.error(f"--out {out}: {exc.strerror or exc}")
    if taken:
        parser.error(f"--out {out} already exists and is not an empty directory; "
                     "choose a new one so an earlier run's results are not overwritten")


def _dataset(name: str) -> str:
    if name in DATASETS or (name.startswith("idx:") and len(name) > 4):
        return name
    raise argparse.ArgumentTypeError(f"expected one of {', '.join(DATASETS)} or idx:DIR; got {name!r}")


def load_run_data(args: argparse.Namespace) -> Data:
    """The data of ``args.dataset``, cut to ``args.limit``; SystemExit with one clear message if impossible.

    A ``--quick`` limit larger than the dataset means the whole dataset (``args.limit``
    becomes None); an explicit one is an error.
    """
    try:
        data = load_data(args.dataset, args.data_dir)
    except datasets.DatasetError as exc:
        raise SystemExit(no_data_message(args.dataset, exc)) from None
    if args.limit is not None and args.limit_is_preset and args.limit >= len(data.x_cv):
        args.limit = None
    if args.limit is not None:
        try:
            data = data.limited(args.limit)
        except ValueError as exc:
            raise SystemExit(f"error: --{exc}") from None
    if len(data.x_cv) < args.folds:
        raise SystemExit(f"error: --folds {args.folds} needs at least {args.folds} images; "
                         f"{data.title} has {len(data.x_cv)}")
    return data


def no_data_message(dataset: str, exc: Exception) -> str:
    """The error for a dataset that cannot be had: what failed, and the three ways out."""
    title = DATASETS.get(dataset, dataset)
    return (f"error: cannot load {title}: {exc}\n"
            f"Point to the files with --data-dir DIR, or set MINICNN_DATA=DIR with the files in "
            f"DIR/{dataset}/; or try --dataset digits, which is bundled with scikit-learn and needs "
            "no download.")


def config(args: argparse.Namespace, data: Data) -> dict[str, Any]:
    """The settings that define a run's numbers: recorded in results.json and every part."""
    return {"dataset": data.name, "folds": args.folds, "epochs": args.epochs, "batch_size": args.batch_size,
            "seed": args.seed, "limit": args.limit, "quick": args.quick, "learning_rate": LEARNING_RATE}


def print_header(args: argparse.Namespace, data: Data, parameters: int) -> None:
    if args.quick:
        print("QUICK RUN: every step on less data, for a quick look; not the published protocol.")
    print(f"Dataset: {data.title}, images {data.x_cv.shape[1:]}, {data.num_classes} classes")
    which = f"the first {len(data.x_cv):,}" if args.limit else f"all {len(data.x_cv):,}"
    print(f"Cross-validation: unshuffled {args.folds}-fold KFold over {which} images "
          "(training images, then test images)")
    print(f"Held-out test: a final model trained on {len(data.x_train):,} training images, "
          f"scored once on {len(data.x_test):,} test images it never saw")
    print(f"Model: published CNN, {parameters:,} parameters, Adam(learning_rate={LEARNING_RATE}); "
          f"{args.epochs} epochs, batch size {args.batch_size}, seed {args.seed}")
    print(f"Output: {args.out}{os.sep}\n")


def print_summary(cv: CrossValidationResult, test: HoldoutResult, total_seconds: float, out: Path) -> None:
    print(f"\n{'Fold':>4} {'Train':>7} {'Val':>7} {'Loss':>8} {'Accuracy':>9} {'Fit s':>8} {'s/epoch':>8}")
    for f in cv.folds:
        print(f"{f.fold:>4} {f.train_size:>7,} {f.val_size:>7,} {f.loss:>8.4f} {f.accuracy:>9.3%} "
              f"{f.fit_seconds:>8.1f} {f.seconds_per_epoch:>8.1f}")
    print(f"Mean over folds: loss {cv.mean_loss:.4f} (± {cv.std_loss:.4f}), "
          f"accuracy {cv.mean_accuracy:.3%} (± {cv.std_accuracy:.3%})")
    print(f"Held-out test ({test.test_size:,} images, final model trained on {test.train_size:,}): "
          f"loss {test.loss:.4f}, accuracy {test.accuracy:.3%}")
    print(f"Total wall time: {total_seconds:.1f} s")
    written = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    print(f"Written to {out}{os.sep}: " + ", ".join(written))


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread as Ctrl-C raises KeyboardInterrupt: the run unwinds the same way."""


ASCII_FALLBACKS = {"±": "+/-", "×": "x", "…": "...", "→": "->", "–": "-", "—": "-", "━": "-", "┃": "|"}
"""How characters a terminal cannot show are written instead (anything else becomes ``?``)."""


@contextmanager
def one_line_failures(errors: tuple[type[Exception], ...], out: Path | None = None) -> Iterator[None]:
    """Within the block: ``errors`` and OSError end the program with one ``error:`` line (exit 1);
    Ctrl-C and SIGTERM with one line saying what is kept in ``out`` (exit 130 and 143).

    A second Ctrl-C or SIGTERM while the run cleans up (its lock waits for its workers) is
    ignored. Output (stdout and stderr) falls back to :data:`ASCII_FALLBACKS` on a terminal
    that cannot show a character, instead of failing after the training.
    """
    in_main_thread = threading.current_thread() is threading.main_thread()
    handlers = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)} \
        if in_main_thread else {}
    streams = [(stream, stream.errors) for stream in (sys.stdout, sys.stderr)
               if hasattr(stream, "reconfigure")]
    for stream, _ in streams:
        stream.reconfigure(errors=_fallback_errors())
    try:
        yield
    except KeyboardInterrupt as exc:
        name, code = ("SIGTERM", 143) if isinstance(exc, Terminated) else ("Ctrl-C", 130)
        kept = f"; what is done is kept in {out}: go on with --resume {out}" if out is not None else ""
        print(f"stopped by {name}{kept}", file=sys.stderr)
        raise SystemExit(code) from None
    except errors as exc:
        raise SystemExit(f"error: {exc}") from None
    except OSError as exc:
        raise SystemExit(f"error: {os_error_message(exc)}") from None
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        for stream, errors_before in streams:
            stream.reconfigure(errors=errors_before)


def _stop(signum: int, frame) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def _fallback_errors() -> str:
    """The name of the codec error handler that writes :data:`ASCII_FALLBACKS` (registered once)."""
    name = "minicnn_ascii_fallbacks"
    try:
        codecs.lookup_error(name)
    except LookupError:
        codecs.register_error(name, lambda exc: (
            "".join(ASCII_FALLBACKS.get(c, "?") for c in exc.object[exc.start:exc.end]), exc.end))
    return name


def os_error_message(exc: OSError) -> str:
    """An OSError as one line naming its file, e.g. ``out/fold_1.json: No space left on device``.

    A failed write (ENOSPC) names no file: the one :func:`minicnn.files.atomic_write` was
    writing is then found in the traceback.
    """
    path = exc.filename or _path_being_written(exc)
    reason = exc.strerror or str(exc)
    return f"{os.fspath(path)}: {reason}" if path else f"{reason} ({type(exc).__name__})"


def _path_being_written(exc: BaseException) -> str | None:
    from minicnn.files import atomic_write

    path, frame = None, exc.__traceback__
    while frame is not None:
        if frame.tb_frame.f_code is atomic_write.__code__:
            path = frame.tb_frame.f_locals.get("path")
        frame = frame.tb_next
    return None if path is None else os.fspath(path)
