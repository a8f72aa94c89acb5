"""``Trainer``: the Keras verbs that train and use a model: ``compile``, ``fit``, ``train_on_batch``,
``evaluate`` and ``predict``.

:class:`minicnn.models.Sequential` inherits them, as Keras' ``Model`` inherits its ``Trainer``.
The model brings the structure and the maths: ``compute_loss_and_gradients`` (one forward and
backward pass, weight penalties included), ``regularization_loss``, ``parameters_and_gradients``,
``logits``, its call (the outputs), ``implementation_context`` and ``implementation`` (which
:meth:`Trainer.compile` sets). A training step is that forward and backward pass, then one
optimizer step over the trainable parameters (``docs/backprop.md#the-training-step``). ``fit``
takes its batches from a data adapter (:mod:`minicnn.trainers.data_adapters`) and runs with BLAS
held to one thread (:func:`minicnn.threads.one_blas_thread`); ``evaluate`` and ``predict`` run
their batches side by side, one per thread.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from minicnn import losses, optimizers, threads
from minicnn import metrics as metrics_module
from minicnn.callbacks import Callback, CallbackList, History, TerminateOnNaN
from minicnn.implementation import accepts_kernels_keyword
from minicnn.implementation import check as check_implementation
from minicnn.trainers.data_adapters import (
    Batch,
    DataAdapter,
    check_data,
    check_x,
    get_data_adapter,
    per_sample_weights,
)
from minicnn.trainers.progress import EpochBar, compiling_notice, epoch_line, resolve_verbose
from minicnn.validation import check_int

__all__ = ["Trainer"]


@dataclass
class FitRun:
    """One call of ``fit``: what its loop over epochs reads."""

    data: DataAdapter
    """Each epoch's batches (``data.epoch(e)``) and their number (``data.steps``, None if unknown)."""
    validation_data: tuple[np.ndarray, np.ndarray] | None
    """``(x_val, y_val)`` (the targets one-hot), evaluated after every epoch; or None."""
    epochs: int
    initial_epoch: int
    batch_size: int
    """The batch size of the validation."""
    verbose: int
    """0, 1 or 2 (``"auto"`` resolved; see :mod:`minicnn.trainers.progress`)."""
    callbacks: CallbackList
    """The user's callbacks, then :attr:`history`."""
    history: History
    skip_non_finite: bool
    """True with a ``TerminateOnNaN`` among the callbacks: a non-finite loss skips its update."""


class Trainer:
    """Keras' verbs for a model: mixed into :class:`minicnn.models.Sequential` (see the module's text)."""

    def __init__(self):
        self.optimizer: optimizers.Optimizer | None = None
        self.loss: losses.Loss | None = None
        self.metrics: list[metrics_module.Metric] = []
        self.stop_training = False
        """Set to True (by a callback) to end ``fit`` after the current batch."""

    # ------------------------------------------------------------------ compile

    @accepts_kernels_keyword
    def compile(self, optimizer="adam", loss: str | losses.Loss | None = None,
                metrics: list | None = None, implementation: str | None = None) -> None:
        """Choose the optimizer (name or instance), the loss (name or instance), the metrics
        (names such as ``"accuracy"`` or :mod:`minicnn.metrics` instances) and, optionally, the
        implementation every computation runs (``"fast"`` or ``"reference"``; None follows the
        active one, see :mod:`minicnn.implementation`). ``kernels=`` is the deprecated old name
        of ``implementation=``."""
        chosen = [metrics_module.get(m) for m in (metrics or [])]
        names = [m.name for m in chosen]
        if len(set(names)) != len(names) or "loss" in names:
            raise ValueError(f"compile: metric names must be unique and not 'loss'; got {names}")
        if implementation is not None:
            check_implementation(implementation, "compile: implementation")
        loss = losses.get(loss) if loss is not None else None
        if loss is not None:
            self._check_loss_fits_output(loss)
        self.optimizer = optimizers.get(optimizer)
        self.loss = loss
        self.metrics = chosen
        self.implementation = implementation

    @property
    def metrics_names(self) -> list[str]:
        """``["loss", *metric names]``: the order of :meth:`evaluate`'s list (Keras 2's meaning)."""
        return ["loss", *(m.name for m in self.metrics)]

    def _check_loss_fits_output(self, loss: losses.Loss) -> None:
        last = repr(self.layers[-1]) if self.layers else "no layers"
        if not loss.from_logits and not self.ends_in_softmax:
            raise ValueError(f"compile: {loss!r} expects probabilities from a last layer that ends in a "
                             f"softmax (e.g. Dense(10, activation='softmax')); got {last}. If the model "
                             f"outputs logits, use from_logits=True.")
        if loss.from_logits and self.ends_in_softmax:
            raise ValueError(f"compile: {loss!r} expects logits, but the last layer ends in a softmax "
                             f"({last}); drop the softmax or use from_logits=False.")

    def _require_compiled(self, verb: str) -> None:
        if self.optimizer is None:
            raise RuntimeError(f"{verb}: call compile(optimizer=..., loss=...) first")
        if self.loss is None:
            raise RuntimeError(f"{verb}: the model was compiled without a loss; compile it with, e.g., "
                               "loss='categorical_crossentropy' (one-hot labels) or "
                               "loss='sparse_categorical_crossentropy' (integer labels)")

    # ------------------------------------------------------------------ one step

    def train_on_batch(self, x: np.ndarray, y: np.ndarray, sample_weight=None, class_weight=None,
                       return_dict: bool = False) -> float | list[float] | dict[str, float]:
        """One optimizer step on one batch; the loss and metrics on it, as :meth:`evaluate` returns them."""
        self._require_compiled("train_on_batch")
        x, y = check_data(self, x, y, "train_on_batch")
        weights = per_sample_weights(y, sample_weight, class_weight, self.dtype, "train_on_batch")
        loss, z = self._train_step(x, y, weights)
        logs = {"loss": loss, **{m.name: float(m.score(z, y).mean()) for m in self.metrics}}
        return self._scores(logs, return_dict)

    def _train_step(self, x: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None,
                    skip_non_finite: bool = False) -> tuple[float, np.ndarray]:
        """One step: ``(loss, scores)``. A non-finite loss raises FloatingPointError before any
        update, or with ``skip_non_finite`` leaves the weights alone and returns it."""
        loss, z, _ = self.compute_loss_and_gradients(x, y, input_gradient=False, sample_weight=sample_weight)
        if not np.isfinite(loss):
            if skip_non_finite:
                return loss, z
            raise FloatingPointError(f"the loss is {loss}")
        with self.implementation_context():
            self.optimizer.apply_gradients(self.parameters_and_gradients())
        return loss, z

    # ------------------------------------------------------------------ fit

    def fit(self, x=None, y=None, batch_size: int | None = None, epochs: int = 1, verbose: int | str = "auto",
            callbacks: list[Callback] | None = None, validation_split: float = 0.0,
            validation_data: tuple | None = None, shuffle: bool = True, class_weight: dict | None = None,
            sample_weight=None, initial_epoch: int = 0, steps_per_epoch: int | None = None,
            seed: int | None = None) -> History:
        """Train from epoch ``initial_epoch`` up to ``epochs`` (an index, as in Keras) in mini-batches.

        x: ``(N, *input_shape)`` float; y: labels as the loss expects them (one-hot (N, K) for
        categorical_crossentropy, integers (N,) or (N, 1) for sparse_categorical_crossentropy).
        ``batch_size`` defaults to 32. The samples are reshuffled at the start of every epoch (a
        permutation, not sampling with replacement): epoch ``e`` uses the ``e``-th permutation
        drawn from ``default_rng(seed)``, so a run resumed with ``initial_epoch`` sees the same
        batches as one that never stopped. ``validation_split`` holds out the *last*
        fraction of the data before shuffling, as Keras does. ``verbose``: 0 silent,
        1 a progress bar and a summary line per epoch, 2 the summary line only, ``"auto"``
        1 on a terminal or in a notebook and 2 otherwise (in a log file); see
        :mod:`minicnn.trainers.progress`.

        ``x`` may instead be a Python iterator or generator of batches ``(x, y)`` or
        ``(x, y, sample_weight)`` (``y`` None): each epoch then takes ``steps_per_epoch``
        batches from it (all it has, if None); when it runs out, training stops with a warning.
        With arrays, ``steps_per_epoch`` limits every epoch to its first that many batches.

        ``sample_weight`` (N,) scales each sample's loss (the mean still divides by the number
        of samples, as Keras); ``class_weight`` ({class: weight}, 1 for classes not listed) does
        it by label; not both. ``callbacks``: see :mod:`minicnn.callbacks`; any of them may end
        training by setting ``model.stop_training``.

        Training stops with a FloatingPointError at the first loss that is not finite, unless
        a :class:`~minicnn.callbacks.TerminateOnNaN` is among the callbacks (see there).
        """
        self._require_compiled("fit")
        batch_size = 32 if batch_size is None else batch_size
        check_int(batch_size, "fit: batch_size", minimum=1)
        check_int(epochs, "fit: epochs", minimum=1)
        check_int(initial_epoch, "fit: initial_epoch", minimum=0)
        verbose = resolve_verbose(verbose, "fit")
        if steps_per_epoch is not None:
            check_int(steps_per_epoch, "fit: steps_per_epoch", minimum=1)
        if initial_epoch >= epochs:
            raise ValueError(f"fit: initial_epoch ({initial_epoch}) must be less than epochs ({epochs}), "
                             "the index of the epoch to stop before")
        if validation_data is not None and validation_split:
            raise ValueError("fit: pass validation_data or validation_split, not both")
        if class_weight is not None and sample_weight is not None:
            raise ValueError("fit: pass class_weight or sample_weight, not both (as in Keras)")
        data, validation_data = get_data_adapter(
            self, x, y, batch_size=batch_size, shuffle=shuffle, class_weight=class_weight,
            sample_weight=sample_weight, validation_split=validation_split, validation_data=validation_data,
            steps_per_epoch=steps_per_epoch, seed=seed)
        callbacks = list(callbacks or [])
        history = History()
        params = {"epochs": epochs, "steps": data.steps, "verbose": verbose}
        run = FitRun(data, validation_data, epochs, initial_epoch, batch_size, verbose,
                     CallbackList([*callbacks, history], self, params), history,
                     skip_non_finite=any(isinstance(c, TerminateOnNaN) for c in callbacks))
        with threads.one_blas_thread():  # held once for the run rather than per product (matmul)
            return self._fit_epochs(run)

    def _fit_epochs(self, run: FitRun) -> History:
        """The loop over the epochs of one ``fit``: train, validate, tell the callbacks."""
        from tqdm.auto import tqdm

        self.stop_training = False
        run.callbacks.call("on_train_begin", {})
        logs: dict[str, float] = {}
        for epoch in range(run.epochs):
            batches = run.data.epoch(epoch)
            if epoch < run.initial_epoch:
                continue  # drawn all the same, so that epoch ``e`` always gets the same order
            start = time.perf_counter()
            run.callbacks.call("on_epoch_begin", epoch, {})
            logs = self._train_epoch(run, epoch, batches)
            if not logs:  # an iterator that had no batch left
                break
            if run.validation_data is not None:
                val = self._evaluate_arrays(*run.validation_data, None, run.batch_size)
                logs.update({f"val_{key}": value for key, value in val.items()})
            run.callbacks.call("on_epoch_end", epoch, logs)
            if run.verbose:
                tqdm.write(epoch_line(epoch, run.epochs, time.perf_counter() - start, logs), file=sys.stdout)
            if self.stop_training:
                break
        run.callbacks.call("on_train_end", logs)
        return run.history

    def _train_epoch(self, run: FitRun, epoch: int, batches: Iterator[Batch]) -> dict[str, float]:
        """Train on ``batches``; the logs: means over the epoch's samples of the loss and metrics."""
        steps = run.data.steps
        totals = dict.fromkeys(self.metrics_names, 0.0)
        seen, logs = 0, {}
        with EpochBar(f"Epoch {epoch + 1}/{run.epochs}", steps, shown=run.verbose == 1) as bar:
            for batch, (xb, yb, wb) in enumerate(batches):
                run.callbacks.call("on_train_batch_begin", batch, {})
                try:
                    first = batch == 0 and epoch == run.initial_epoch
                    with compiling_notice(run.verbose > 0 and first, bar):
                        loss, z = self._train_step(xb, yb, wb, run.skip_non_finite)
                except FloatingPointError as exc:
                    raise FloatingPointError(
                        f"fit: {exc} at epoch {epoch + 1}, batch {batch + 1}"
                        f"{f' of {steps}' if steps else ''}: "
                        f"training diverged. Try a smaller learning rate (now "
                        f"{self.optimizer.learning_rate:g}), or add callbacks.TerminateOnNaN() to stop "
                        "training there instead.") from None
                totals["loss"] += loss * len(xb)
                for metric in self.metrics:
                    totals[metric.name] += float(metric.score(z, yb).sum())
                seen += len(xb)
                logs = {key: value / seen for key, value in totals.items()}
                bar.batch_done(logs)
                run.callbacks.call("on_train_batch_end", batch, dict(logs))
                if self.stop_training:
                    break
        return logs

    # ------------------------------------------------------------------ evaluate and predict

    def evaluate(self, x: np.ndarray, y: np.ndarray, batch_size: int | None = None, verbose: int | str = 0,
                 sample_weight=None, return_dict: bool = False) -> float | list[float] | dict[str, float]:
        """Mean loss and metrics on ``(x, y)``, dropout off, batch by batch (32 by default). The loss
        includes the weight penalties (``kernel_regularizer``), as Keras' and as ``fit``'s.

        Returns ``[loss, *metrics]`` in the order of :attr:`metrics_names` (Keras' order), the
        loss alone when the model was compiled without metrics, or with ``return_dict=True``
        a dict ``{"loss": ..., "accuracy": ...}``. ``sample_weight`` (N,) weights the loss.
        """
        self._require_compiled("evaluate")
        x, y = check_data(self, x, y, "evaluate")
        batch_size = 32 if batch_size is None else batch_size
        check_int(batch_size, "evaluate: batch_size", minimum=1)
        weights = per_sample_weights(y, sample_weight, None, self.dtype, "evaluate")
        verbose = resolve_verbose(verbose, "evaluate")
        return self._scores(self._evaluate_arrays(x, y, weights, batch_size, verbose), return_dict)

    def _scores(self, logs: dict[str, float], return_dict: bool) -> float | list[float] | dict[str, float]:
        if return_dict:
            return logs
        return [logs[name] for name in self.metrics_names] if self.metrics else logs["loss"]

    def _evaluate_arrays(self, x, y, weights, batch_size, verbose=0) -> dict[str, float]:
        totals = dict.fromkeys(self.metrics_names, 0.0)
        for begin, z in self._batched(x, batch_size, verbose, self.logits):
            yb = y[begin:begin + len(z)]
            wb = None if weights is None else weights[begin:begin + len(z)]
            totals["loss"] += self.loss.loss_and_gradient(z, yb, wb)[0] * len(z)
            for metric in self.metrics:
                totals[metric.name] += float(metric.score(z, yb).sum())
        logs = {key: value / len(x) for key, value in totals.items()}
        logs["loss"] += self.regularization_loss()  # Keras' evaluate counts the weight penalties too
        return logs

    def predict(self, x: np.ndarray, batch_size: int | None = None, verbose: int | str = 0) -> np.ndarray:
        """The model's outputs (softmax probabilities), computed in batches (32 by default): shape (N, K).

        The batches are independent, so they run side by side, one per thread
        (:func:`minicnn.threads.map_on_threads`).
        """
        x = check_x(self, x, "predict")
        batch_size = 32 if batch_size is None else batch_size
        check_int(batch_size, "predict: batch_size", minimum=1)
        verbose = resolve_verbose(verbose, "predict")
        return np.concatenate([p for _, p in self._batched(x, batch_size, verbose, self)])

    def _batched(self, x, batch_size, verbose, fn) -> list[tuple[int, np.ndarray]]:
        """``(begin, fn(x[begin:begin + batch_size]))`` for each batch, dropout off, batches side by side."""
        from tqdm.auto import tqdm

        begins = range(0, len(x), batch_size)
        with self.implementation_context(), tqdm(total=len(begins), unit="batch", leave=False,
                                                 disable=verbose != 1, file=sys.stdout) as bar:

            def one(begin: int) -> tuple[int, np.ndarray]:
                out = fn(x[begin:begin + batch_size], training=False)
                bar.update()
                return begin, out

            return threads.map_on_threads(one, begins)

