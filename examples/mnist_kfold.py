"""The published MNIST k-fold experiment, end to end, with minicnn.

1. Cross-validation: all 70,000 MNIST digits (the 60,000 training images, then
   the 10,000 test images), scaled to [0, 1], split by an unshuffled 5-fold
   KFold; per fold a fresh published CNN (Adam, lr 0.001, categorical
   cross-entropy) trains 10 epochs in batches of 128, validating on its
   held-out fold every epoch.
2. Held-out test: a final model trains on the 60,000 training images and is
   scored once on the 10,000 test images it never saw. The confusion matrix,
   the classification report and the misclassified images describe that test.

Writes to ``--out`` (default ``runs/<UTC time>/``): ``fold_<k>.json`` as each
fold ends, ``test.json``, ``final_model.npz``, ``confusion_matrix.png``,
``classification_report.txt``, ``misclassified.png``, then ``learning_curves.png``
and ``results.json`` (the schema of ``minicnn.experiments.results``, shared with
the Keras baseline). Each model is checkpointed after every epoch, so
``--resume DIR`` continues an interrupted run where it stopped.

    python examples/mnist_kfold.py                  # the full protocol
    python examples/mnist_kfold.py --quick          # every step on less data, about a minute
    python examples/mnist_kfold.py --jobs 2         # two folds at once
    python examples/mnist_kfold.py --scheduler tcp://HOST:8786   # the folds on a Dask cluster
    python examples/mnist_kfold.py --fold 3 --out part3          # one part only (or --fold final) ...
    python examples/mnist_kfold.py --merge DIR      # ... then results.json from the parts in DIR
    python examples/mnist_kfold.py --resume DIR     # go on with an interrupted run (same flags)
    python examples/mnist_kfold.py --quick --tensorboard logs   # then: tensorboard --logdir logs
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from collections.abc import Sequence
from contextlib import ExitStack
from functools import partial
from pathlib import Path

import minicnn
from minicnn import viz
from minicnn.experiments import cli, evaluation, parallel, protocol, rundir
from minicnn.experiments.checkpoints import remove_checkpoints
from minicnn.experiments.crossval import cross_validate, fit_and_test
from minicnn.experiments.data import DATASETS, Data
from minicnn.experiments.published_model import mnist_cnn
from minicnn.experiments.results import build_results, read_parts, write_results
from minicnn.files import atomic_write
from minicnn.saving import ModelFileError


def parse_args(argv: Sequence[str] | None):
    parser = cli.protocol_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1, metavar="N", help="folds trained at once (1)")
    parser.add_argument("--scheduler", metavar="ADDRESS", help="train the folds on the Dask cluster whose "
                        "scheduler is at ADDRESS, e.g. tcp://10.0.0.1:8786 (pip install minicnn[cluster])")
    parser.add_argument("--fold", type=_fold, metavar="K", help="run fold K only (1..folds), or 'final' for "
                        "the final model and its test; --merge the parts afterwards")
    parser.add_argument("--resume", type=Path, metavar="DIR", help="go on with the interrupted run in DIR; "
                        "give the flags it was started with")
    parser.add_argument("--merge", type=Path, metavar="DIR", help="write results.json and the learning "
                        "curves from the parts (fold files, test.json) gathered in DIR, and nothing else")
    parser.add_argument("--tensorboard", type=Path, metavar="DIR", help="also write TensorBoard logs to "
                        "DIR/fold_<k>/ and DIR/final/ (pip install minicnn[tensorboard])")
    args = parser.parse_args(argv)
    if args.merge and args.resume:
        parser.error("--merge and --resume are separate steps; give one")
    for flag, folder in (("--resume", args.resume), ("--merge", args.merge)):
        if folder is not None and not folder.is_dir():
            parser.error(f"{flag} {folder}: no such directory")
    if args.resume:
        if args.out is not None:
            parser.error("--resume DIR writes to DIR: leave out --out")
        args.out = args.resume
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1; got {args.jobs}")
    if args.scheduler and importlib.util.find_spec("distributed") is None:
        parser.error('--scheduler needs Dask: pip install "minicnn[cluster]"')
    if args.tensorboard and importlib.util.find_spec("tensorboard") is None:
        parser.error('--tensorboard needs TensorBoard: pip install "minicnn[tensorboard]"')
    args = cli.check_args(parser, args, out_must_be_new=not (args.resume or args.merge))
    if isinstance(args.fold, int) and args.fold > args.folds:
        parser.error(f"--fold {args.fold} is not one of the {args.folds} folds")
    return args


def _fold(text: str) -> int | str:
    if text == "final" or (text.isdigit() and int(text) >= 1):
        return text if text == "final" else int(text)
    raise argparse.ArgumentTypeError(f"expected a fold number from 1 or 'final'; got {text!r}")


def main(argv: Sequence[str] | None = None) -> dict | None:
    """Run the experiment with command-line ``argv``; returns what it writes to results.json, if it does.

    Every failure is one ``error:`` line (exit 1); Ctrl-C and SIGTERM stop it cleanly (exit
    130 and 143), the finished folds and the last epoch checkpoints kept for ``--resume``.
    """
    args = parse_args(argv)
    errors = (rundir.RunDirError, rundir.NonFiniteScoreError, FloatingPointError, ModelFileError)
    with cli.one_line_failures(errors, out=None if args.merge else args.out):
        if args.merge:
            rundir.check_merge_folder(args.merge)  # before the lock: nothing is written into a folder refused
            with rundir.RunLock(args.merge):
                return merge(args.merge)
        data = cli.load_run_data(args)  # before anything is written: bad data leaves no folder behind
        record = rundir.run_record(cli.config(args, data), data.sha256())
        if args.resume:
            rundir.check_manifest(args.out, record)
        with ExitStack() as stack:
            args.backend = connect(args.scheduler, stack)
            stack.enter_context(rundir.RunLock(args.out))
            return run(args, data, record)


def run(args, data: Data, record: dict) -> dict | None:
    """The folds, then the final model, then results.json; or the one part ``--fold`` names.

    Each session (the first, and each ``--resume``) is recorded in the run's manifest with
    its own wall time, so ``total_seconds`` is the sum over sessions.
    """
    started = time.perf_counter()
    if args.resume:
        rundir.check_manifest(args.out, record)
        rundir.check_parts(args.out, record)
    else:
        rundir.check_empty(args.out)
        rundir.write_manifest(args.out, record)
    sessions = rundir.begin_session(args.out)
    try:
        cli.print_header(args, data, mnist_cnn(data.x_cv.shape[1:], data.num_classes).count_params())
        if args.fold != "final":
            train_folds(args, data, record)
        if args.fold in (None, "final"):
            train_final_model(args, data, record)
        if args.fold is not None:
            print(f"\nPart {args.fold} is in {args.out}. With every part in one folder: "
                  f"python {Path(__file__).name} --merge DIR")
            return None
        sessions[-1]["seconds"] = time.perf_counter() - started
        return merge(args.out, sessions=sessions, threads=thread_counts(args))
    finally:
        rundir.end_session(args.out, time.perf_counter() - started)


def thread_counts(args) -> dict[str, int | str | None]:
    """How the folds ran: at once (jobs), and the threads each used, minicnn's and BLAS's.

    minicnn's products run BLAS on one thread whatever the BLAS library's own count
    (``docs/backprop.md#products-whose-sums-do-not-depend-on-the-thread-count``).
    """
    from threadpoolctl import threadpool_info

    blas = max((pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"),
               default=None)
    if args.backend == "dask":
        return {"jobs": "dask", "minicnn_per_job": None, "blas_in_products": 1, "blas_library": blas}
    import numba

    per_job = numba.get_num_threads() if args.jobs == 1 else parallel.threads_per_task(args.jobs)
    return {"jobs": args.jobs, "minicnn_per_job": per_job, "blas_in_products": 1, "blas_library": blas}


def connect(scheduler: str | None, stack: ExitStack) -> str | None:
    """The folds' joblib backend: "dask" with a client of ``scheduler`` open on ``stack``, else None."""
    if scheduler is None:
        return None
    from distributed import Client

    try:
        stack.enter_context(Client(scheduler))
    except OSError as exc:
        raise SystemExit(f"error: cannot reach the Dask scheduler at {scheduler}: {exc}") from None
    return "dask"


def train_folds(args, data: Data, record: dict) -> None:
    """Cross-validation: every fold (or ``--fold K``), in parallel with ``--jobs`` or ``--scheduler``."""
    n_jobs = -1 if args.backend == "dask" and args.jobs == 1 else args.jobs  # -1: every Dask thread
    cross_validate(partial(protocol.fold_model, data.x_cv.shape[1:], data.num_classes, args.seed),
                   data.x_cv, minicnn.to_categorical(data.y_cv, data.num_classes),
                   n_splits=args.folds, epochs=args.epochs, batch_size=args.batch_size, out_dir=args.out,
                   verbose=args.verbose, fit_kwargs=partial(fold_fit_kwargs, args.seed, args.tensorboard),
                   folds=None if args.fold is None else [args.fold], n_jobs=n_jobs, backend=args.backend,
                   record=record, resume=True, checkpoints=args.backend is None)  # Dask: workers' disks


def fold_fit_kwargs(seed: int, log_dir: Path | None, fold_index: int) -> dict:
    """Fold ``fold_index``'s (from 0) fit arguments: the protocol's, and the ``--tensorboard`` callback."""
    return {**protocol.fold_fit_kwargs(seed, fold_index), **tensorboard(log_dir, f"fold_{fold_index + 1}")}


def tensorboard(log_dir: Path | None, part: str) -> dict:
    """``{"callbacks": [TensorBoard]}`` logging to ``log_dir/part``, or nothing without ``--tensorboard``:
    per epoch the scalars, and histograms of the weights and gradients with the first layer's filters."""
    if log_dir is None:
        return {}
    return {"callbacks": [minicnn.callbacks.TensorBoard(log_dir / part, histogram_freq=1, write_images=True)]}


def train_final_model(args, data: Data, record: dict) -> None:
    """The final model: train on the training set, test once; writes test.json last, after its outputs."""
    if (args.out / "test.json").exists():
        rundir.read_part(args.out / "test.json", record)  # its fields are checked by the merge
        print("The final model and its test are done already.")
        return
    print(f"\nFinal model: training on {len(data.x_train):,} images, then testing on {len(data.x_test):,}")
    seed = protocol.final_seed(args.seed)
    model, test = fit_and_test(
        protocol.build_model(data.x_cv.shape[1:], data.num_classes, seed),
        data.x_train, minicnn.to_categorical(data.y_train, data.num_classes),
        data.x_test, minicnn.to_categorical(data.y_test, data.num_classes),
        epochs=args.epochs, batch_size=args.batch_size, verbose=args.verbose,
        fit_kwargs={"seed": protocol.shuffle_seed(seed), **tensorboard(args.tensorboard, "final")},
        checkpoint_dir=args.out / "checkpoints" / "final",
        record=record)
    rundir.refuse_link(args.out / "final_model.npz")
    model.save(args.out / "final_model.npz")
    print("\n" + write_test_outputs(model, data, args.out, args.batch_size))
    rundir.write_part(args.out / "test.json", test.to_dict(), record)
    remove_checkpoints(args.out / "checkpoints" / "final")


def write_test_outputs(model: minicnn.Sequential, data: Data, out: Path, batch_size: int) -> str:
    """Write the test set's confusion matrix, classification report, misclassified images and
    most-confused pairs, and what the final model learned: its first-layer filters, one test
    image's feature maps through every layer, and saliency maps of the first test images.

    Returns the report's text, which is also written to classification_report.txt.
    """
    probabilities = model.predict(data.x_test, batch_size=batch_size)
    about = f"final model on the {len(data.x_test):,} held-out test images of {data.title}"
    cm = evaluation.confusion_matrix(data.y_test, probabilities, data.num_classes)
    evaluation.plot_confusion_matrix(cm, out / "confusion_matrix.png", title=f"Confusion matrix: {about}")
    evaluation.plot_misclassified(data.x_test, data.y_test, probabilities, out / "misclassified.png",
                                  title="Misclassified held-out test images (final model)")
    viz.plot_confused_pairs(data.x_test, data.y_test, probabilities, out / "confused_pairs.png")
    viz.plot_filters(model, out / "filters.png")
    viz.plot_feature_maps(model, data.x_test[:1], out / "feature_maps.png")
    viz.plot_saliency(model, data.x_test[:8], data.y_test[:8], out / "saliency.png")
    report = (f"Classification report: {about} (trained on {len(data.x_train):,} images)\n\n"
              + evaluation.classification_report(data.y_test, probabilities,
                                                 [str(c) for c in range(data.num_classes)]))
    atomic_write(out / "classification_report.txt", lambda f: f.write(report.encode()))
    return report


def merge(out: Path, sessions: list[dict] | None = None, threads: dict | None = None) -> dict:
    """results.json and learning_curves.png from the parts in ``out``; returns the results.

    ``sessions`` are the run's sessions, each with its own wall time, and ``total_seconds``
    their sum; for parts made elsewhere, it is the sum of the parts' own times. ``threads``
    (see :func:`thread_counts`) is recorded too when given.
    """
    record, cv, test = read_parts(out)
    config = record["config"]
    title = f"Learning curves: {config['folds']}-fold cross-validation on " \
            f"{DATASETS.get(config['dataset'], config['dataset'])}"
    rundir.refuse_link(out / "learning_curves.png")
    evaluation.plot_learning_curves([f.history for f in cv.folds], out / "learning_curves.png", title)
    if sessions is None:
        total_seconds = sum(f.wall_seconds for f in cv.folds) + test.fit_seconds
    else:
        total_seconds = sum(session["seconds"] for session in sessions)
    results = build_results(framework="minicnn", dataset=config["dataset"], versions=_versions(),
                            config=config, cv=cv, test=test, total_seconds=total_seconds)
    if sessions is not None:
        results["sessions"] = sessions
    if threads is not None:
        results["threads"] = threads
    rundir.refuse_link(out / "results.json")
    write_results(out / "results.json", results)
    cli.print_summary(cv, test, total_seconds, out)
    return results


def _versions() -> dict[str, str]:
    import numba
    import sklearn

    return {"minicnn": minicnn.__version__, "numba": numba.__version__, "scikit-learn": sklearn.__version__}


if __name__ == "__main__":
    main()
