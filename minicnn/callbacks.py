"""Callbacks: code that ``fit`` calls at fixed points of training, with Keras' hooks and names.

``fit(..., callbacks=[EarlyStopping(patience=3), ...])`` calls, on every callback in order:

- ``on_train_begin(logs)`` and ``on_train_end(logs)``, once each;
- ``on_epoch_begin(epoch, logs)`` and ``on_epoch_end(epoch, logs)``, epochs counted from 0;
  at the end ``logs`` holds the epoch's means (``loss``, the metrics, ``val_*``), and a
  callback may add to it (``learning_rate``) before it goes into the :class:`History`;
- ``on_train_batch_begin(batch, logs)`` and ``on_train_batch_end(batch, logs)``, batches
  counted from 0 within the epoch; ``logs`` holds the running means of the epoch so far.
  By default they call ``on_batch_begin`` / ``on_batch_end``, Keras 2's names, as Keras 3 does.

``fit`` is the only verb that takes callbacks (``evaluate`` and ``predict`` do not, so there are
no ``on_test_*`` or ``on_predict_*`` hooks).

A callback stops training by setting ``self.model.stop_training = True``: ``fit`` ends
after the current batch (and that epoch's ``on_epoch_end``). Every callback has
``self.model`` (the model being trained) and ``self.params`` (``epochs``, ``steps``, ...).
"""

from __future__ import annotations

import csv
import io
import math
import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from minicnn import missing
from minicnn.files import atomic_write
from minicnn.validation import check_int

__all__ = ["CSVLogger", "Callback", "CallbackList", "EarlyStopping", "History", "LearningRateScheduler",
           "ModelCheckpoint", "ReduceLROnPlateau", "TensorBoard", "TerminateOnNaN"]

__getattr__ = missing.module_getattr(__name__)  # Keras' names minicnn lacks: see minicnn.missing

Logs = dict[str, float]


class Callback:
    """Base class: every hook does nothing; override the ones you need."""

    def __init__(self):
        self.model = None
        self.params: dict[str, Any] = {}

    def set_model(self, model) -> None:
        self.model = model

    def set_params(self, params: dict[str, Any]) -> None:
        self.params = params

    def on_train_begin(self, logs: Logs | None = None) -> None: ...

    def on_train_end(self, logs: Logs | None = None) -> None: ...

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None: ...

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None: ...

    def on_train_batch_begin(self, batch: int, logs: Logs | None = None) -> None:
        self.on_batch_begin(batch, logs)

    def on_train_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        self.on_batch_end(batch, logs)

    def on_batch_begin(self, batch: int, logs: Logs | None = None) -> None:
        """Keras 2's name for :meth:`on_train_batch_begin`, which calls it (as Keras 3 does)."""

    def on_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        """Keras 2's name for :meth:`on_train_batch_end`, which calls it (as Keras 3 does)."""


class History(Callback):
    """What ``fit`` returns: ``history.history["loss"]`` etc., one value per epoch, like Keras.

    ``history.epoch`` lists the epochs that ran; ``history.params`` holds ``epochs``,
    ``steps`` (batches per epoch) and ``verbose``.
    """

    def __init__(self):
        super().__init__()
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)


class CallbackList:
    """The callbacks of one ``fit``, called in order; ``History`` last, so it sees what others add."""

    def __init__(self, callbacks: list[Callback], model, params: dict[str, Any]):
        for callback in callbacks:
            if not isinstance(callback, Callback):
                raise TypeError(f"fit: callbacks must be minicnn.callbacks.Callback instances; "
                                f"got {type(callback).__name__}")
        self.callbacks = list(callbacks)
        for callback in self.callbacks:
            callback.set_model(model)
            callback.set_params(params)

    def call(self, hook: str, *args) -> None:
        for callback in self.callbacks:
            getattr(callback, hook)(*args)


# --------------------------------------------------------------------------- monitoring


class _MonitorCallback(Callback):
    """Watches one logged quantity (``monitor``) and tells improvements apart, as Keras does.

    ``mode="min"``: lower is better; ``"max"``: higher is better; ``"auto"``: lower for a
    loss (``loss``, ``val_loss``), higher for the model's metrics (accuracy, ...), else an error
    asking for a mode. An improvement must beat the best by more than ``min_delta``.
    """

    def __init__(self, monitor: str = "val_loss", mode: str = "auto", baseline: float | None = None,
                 min_delta: float = 0.0):
        super().__init__()
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"{type(self).__name__}: mode must be 'auto', 'min' or 'max'; got {mode!r}")
        self.monitor, self.mode, self.best = monitor, mode, baseline
        self.min_delta = abs(min_delta)
        self.lower_is_better: bool | None = None

    def _set_direction(self) -> None:
        if self.mode != "auto":
            self.lower_is_better = self.mode == "min"
            return
        name = self.monitor.removeprefix("val_")
        directions = {metric.name: metric.direction for metric in getattr(self.model, "metrics", [])}
        if name == "loss":
            self.lower_is_better = True
        elif name in directions:
            self.lower_is_better = directions[name] == "down"
        else:
            raise ValueError(f"{type(self).__name__}: cannot tell whether monitor={self.monitor!r} should "
                             "go up or down; pass mode='max' or mode='min'")

    def _is_improvement(self, value: float, reference: float | None) -> bool:
        if reference is None:
            return True
        if self.lower_is_better:
            return value + self.min_delta < reference
        return value - self.min_delta > reference

    def _monitored(self, logs: Logs | None, what: str) -> float | None:
        value = (logs or {}).get(self.monitor)
        if value is None:
            warnings.warn(f"{what} conditioned on metric `{self.monitor}` which is not available. "
                          f"Available metrics are: {','.join(logs or {})}", stacklevel=3)
        return value


class EarlyStopping(_MonitorCallback):
    """Stop training when ``monitor`` has not improved for ``patience`` epochs (Keras' rule).

    ``baseline``: training also stops if the value has not beaten it after ``patience`` epochs.
    ``restore_best_weights``: at the end, set the weights (and state, such as moving
    statistics) of the best epoch. ``start_from_epoch``: epochs before it are not watched.
    """

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0.0, patience: int = 0, verbose: int = 0,
                 mode: str = "auto", baseline: float | None = None, restore_best_weights: bool = False,
                 start_from_epoch: int = 0):
        super().__init__(monitor, mode, min_delta=min_delta)
        self.patience, self.verbose, self.baseline = patience, verbose, baseline
        self.restore_best_weights, self.start_from_epoch = restore_best_weights, start_from_epoch
        self.wait = self.stopped_epoch = self.best_epoch = 0
        self.best_weights = None

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self.wait = self.stopped_epoch = self.best_epoch = 0
        self.best = None
        self.best_weights = None

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        if self.lower_is_better is None:
            self._set_direction()
        current = self._monitored(logs, "Early stopping")
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights, self.best_epoch = self.model.get_weights(), epoch
        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best, self.best_epoch = current, epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs: Logs | None = None) -> None:
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)


class ModelCheckpoint(_MonitorCallback):
    """Save the model (``model.save``, ``.npz``) or its weights (``.weights.npz``) after each epoch.

    ``filepath`` may hold ``str.format`` fields filled with ``epoch`` (from 1) and the
    epoch's logs: ``"ckpt/model_{epoch:02d}_{val_loss:.3f}.npz"``. With ``save_best_only``
    a file is written only when ``monitor`` improves; when the logs lack ``monitor``, a warning
    and a save every epoch, as in Keras. (Keras' ``.keras``/``.weights.h5`` names are errors
    that say which names minicnn writes.)
    """

    def __init__(self, filepath: str | os.PathLike, monitor: str = "val_loss", verbose: int = 0,
                 save_best_only: bool = False, save_weights_only: bool = False, mode: str = "auto",
                 initial_value_threshold: float | None = None):
        super().__init__(monitor, mode, baseline=initial_value_threshold)
        self.filepath = os.fspath(filepath)
        self.verbose, self.save_best_only, self.save_weights_only = verbose, save_best_only, save_weights_only
        suffix = ".weights.npz" if save_weights_only else ".npz"
        weights_name = self.filepath.endswith(".weights.npz")
        if not self.filepath.endswith(suffix) or weights_name != save_weights_only:
            raise ValueError(f"ModelCheckpoint: with save_weights_only={save_weights_only} the filepath must "
                             f"end in {suffix!r} (minicnn's format"
                             + ("" if save_weights_only else ", what model.save writes; weights alone go to "
                                "'.weights.npz' with save_weights_only=True")
                             + f"); got {self.filepath!r}")

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        if self.lower_is_better is None:
            self._set_direction()
        logs = logs or {}
        try:
            path = self.filepath.format(epoch=epoch + 1, **logs)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"ModelCheckpoint: cannot fill in filepath {self.filepath!r} with epoch and "
                             f"{sorted(logs)}: {exc!r}") from None
        current = self._monitored(logs, "Saving the best model only") if self.save_best_only else None
        if current is not None:  # without the monitored value Keras saves every epoch, and so does this
            if not self._is_improvement(current, self.best):
                if self.verbose > 0:
                    print(f"Epoch {epoch + 1}: {self.monitor} did not improve from {self.best:.5f}")
                return
            if self.verbose > 0:
                print(f"Epoch {epoch + 1}: {self.monitor} improved to {current:.5f}, saving model to {path}")
            self.best = current
        elif self.verbose > 0:
            print(f"Epoch {epoch + 1}: saving model to {path}")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        (self.model.save_weights if self.save_weights_only else self.model.save)(path)


class ReduceLROnPlateau(_MonitorCallback):
    """Multiply the learning rate by ``factor`` when ``monitor`` stalls for ``patience`` epochs.

    After a reduction, ``cooldown`` epochs pass before waiting starts again; the rate never
    goes below ``min_lr``. Adds ``learning_rate`` to the epoch's logs, as Keras does.
    """

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10, verbose: int = 0,
                 mode: str = "auto", min_delta: float = 1e-4, cooldown: int = 0, min_lr: float = 0.0):
        super().__init__(monitor, mode, min_delta=min_delta)
        if not 0 < factor < 1.0:
            raise ValueError(f"ReduceLROnPlateau: factor must be in (0, 1); got {factor!r}")
        self.factor, self.patience, self.verbose = factor, patience, verbose
        self.cooldown, self.min_lr = cooldown, min_lr
        self.cooldown_counter = self.wait = 0

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self.best = None
        self.cooldown_counter = self.wait = 0

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        if self.lower_is_better is None:
            self._set_direction()
        logs = logs if logs is not None else {}
        optimizer = self.model.optimizer
        logs["learning_rate"] = optimizer.learning_rate
        current = self._monitored(logs, "Learning rate reduction")
        if current is None:
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._is_improvement(current, self.best):
            self.best, self.wait = current, 0
        elif self.cooldown_counter == 0:
            self.wait += 1
            if self.wait >= self.patience and optimizer.learning_rate > self.min_lr:
                optimizer.learning_rate = max(optimizer.learning_rate * self.factor, self.min_lr)
                if self.verbose > 0:
                    print(f"Epoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to "
                          f"{optimizer.learning_rate}.")
                self.cooldown_counter, self.wait = self.cooldown, 0


# --------------------------------------------------------------------------- the others


class LearningRateScheduler(Callback):
    """Set the learning rate at the start of each epoch to ``schedule(epoch, lr)`` (or ``schedule(epoch)``).

    Adds ``learning_rate`` to the epoch's logs. A per-step schedule belongs in the optimizer
    instead: ``Adam(learning_rate=ExponentialDecay(...))``.
    """

    def __init__(self, schedule: Callable, verbose: int = 0):
        super().__init__()
        self.schedule, self.verbose = schedule, verbose

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        optimizer = self.model.optimizer
        try:
            lr = self.schedule(epoch, optimizer.learning_rate)
        except TypeError:
            lr = self.schedule(epoch)
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr):
            raise ValueError(f"LearningRateScheduler: the schedule must return a finite float; "
                             f"got {lr!r} for epoch {epoch}")
        optimizer.learning_rate = float(lr)
        if self.verbose > 0:
            print(f"Epoch {epoch + 1}: LearningRateScheduler setting learning rate to {lr}.")

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        if logs is not None:
            logs["learning_rate"] = self.model.optimizer.learning_rate


class CSVLogger(Callback):
    """Write each epoch's logs as a row of a CSV file: ``epoch`` then the keys in sorted order.

    ``append=True`` continues an existing file (its header kept). The whole file is
    rewritten atomically after every epoch, so it is never seen half written.
    """

    def __init__(self, filename: str | os.PathLike, separator: str = ",", append: bool = False):
        super().__init__()
        self.filename, self.separator, self.append = Path(filename), separator, append
        self.keys: list[str] | None = None
        self.text = ""

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self.keys = None
        self.text = self.filename.read_text() if self.append and self.filename.exists() else ""

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
            if not any(key.startswith("val_") for key in self.keys):
                self.keys += [f"val_{key}" for key in self.keys]
        out = io.StringIO()
        writer = csv.DictWriter(out, ["epoch", *self.keys], delimiter=self.separator, lineterminator="\n")
        if not self.text:
            writer.writeheader()
        writer.writerow({"epoch": epoch, **{key: logs.get(key, "NA") for key in self.keys}})
        self.text += out.getvalue()
        atomic_write(self.filename, lambda f: f.write(self.text.encode()))


class TerminateOnNaN(Callback):
    """Stop training at the first batch whose loss is NaN or infinite, as Keras does.

    Without this callback ``fit`` raises a FloatingPointError at such a batch; with it,
    ``fit`` ends normally after that batch, and its logs and the History show the
    non-finite loss. Unlike Keras, minicnn never applies that batch's update, so the
    weights stay finite (those of the last good step). ``raise_error=True`` raises
    a RuntimeError instead, as in Keras.
    """

    def __init__(self, raise_error: bool = False):
        super().__init__()
        self.raise_error = raise_error

    def on_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            if self.raise_error:
                raise RuntimeError(f"NaN or Inf loss encountered at batch {batch}. Loss value: {loss}. "
                                   "Terminating training immediately.")
            print(f"Batch {batch}: Invalid loss, terminating training")
            self.model.stop_training = True


class TensorBoard(Callback):
    """Write TensorBoard logs while training, as Keras' ``TensorBoard`` (needs the ``tensorboard`` extra).

    ``tensorboard --logdir <log_dir>`` shows them. Per epoch (step = the epoch, from 0), in the
    run folders ``<log_dir>/train`` and ``<log_dir>/validation``, Keras' tags: ``epoch_loss``,
    ``epoch_<metric>`` and, in ``train``, ``epoch_learning_rate`` (the optimizer's rate at the
    end of the epoch); the validation's ``val_*`` under the same tags in ``validation``.
    ``write_steps_per_second`` adds ``epoch_steps_per_second``. ``update_freq="batch"`` (or N)
    also writes ``batch_<name>``, the epoch's running means, every (N-th) batch, at the step
    the optimizer has counted (over every ``fit``).

    Every ``histogram_freq`` epochs (0: never), in ``train``: histograms of each layer's weights
    (``<layer>/<weight>/histogram``: parameters, and state such as moving means) and of the
    gradients of the epoch's last batch (``<layer>/<weight>/gradient/histogram``); with
    ``write_images``, the first Conv2D's filters as one image (``<layer>/kernel/image``,
    :func:`minicnn.tensorboard_logs.filter_grid`).

    Keras' options minicnn cannot honour are errors, not ignored: ``write_graph=True`` (a minicnn
    model is Python code, not a graph, so the default here is False), ``profile_batch``,
    ``embeddings_freq`` and ``embeddings_metadata``.
    """

    def __init__(self, log_dir: str | os.PathLike = "logs", histogram_freq: int = 0,
                 write_graph: bool = False, write_images: bool = False, write_steps_per_second: bool = False,
                 update_freq="epoch", profile_batch=0, embeddings_freq: int = 0, embeddings_metadata=None):
        super().__init__()
        try:
            from minicnn import tensorboard_logs  # checks the extra now; used when training
        except ModuleNotFoundError as exc:
            if (exc.name or "").split(".")[0] not in ("tensorboard", "PIL"):
                raise
            raise ModuleNotFoundError("callbacks.TensorBoard needs the tensorboard package: "
                                      "pip install 'minicnn[tensorboard]'", name=exc.name) from None
        self.file_name = tensorboard_logs.event_file_name()
        """The name of this callback's event file in each run folder, the same for every ``fit``."""
        check_int(histogram_freq, "TensorBoard: histogram_freq", minimum=0)
        unsupported = {"write_graph": (write_graph, False, "a minicnn model is Python code, not a graph; "
                                       "model.summary() prints its layers"),
                       "profile_batch": (profile_batch, 0, "minicnn has no profiler in TensorBoard; "
                                         "benchmarks/profile_layers.py times each layer"),
                       "embeddings_freq": (embeddings_freq, 0, "minicnn has no Embedding layer"),
                       "embeddings_metadata": (embeddings_metadata, None, "minicnn has no Embedding layer")}
        for name, (value, supported, why) in unsupported.items():
            if value != supported:
                raise ValueError(f"TensorBoard: {name}={value!r} is not supported ({why}); "
                                 f"leave it at {supported!r}")
        if write_images and not histogram_freq:
            raise ValueError("TensorBoard: write_images=True draws the filters at the epochs of "
                             "histogram_freq, as Keras does; set histogram_freq >= 1")
        if update_freq not in ("epoch", "batch"):
            check_int(update_freq, "TensorBoard: update_freq ('epoch', 'batch' or a number of batches)",
                      minimum=1)
        self.log_dir = Path(log_dir)
        self.histogram_freq, self.write_images = histogram_freq, write_images
        self.write_steps_per_second = write_steps_per_second
        self.update_freq = 1 if update_freq == "batch" else update_freq
        self.writers: dict[str, Any] = {}
        self.epoch_batches = 0
        self.epoch_start = 0.0

    def _writer(self, run: str):
        """The event writer of the run folder ``train`` or ``validation``, opened when first needed."""
        from minicnn.tensorboard_logs import EventWriter

        if run not in self.writers:
            self.writers[run] = EventWriter(self.log_dir / run / self.file_name)
        return self.writers[run]

    def on_train_begin(self, logs: Logs | None = None) -> None:
        from minicnn.tensorboard_logs import first_conv2d

        if self.write_images and first_conv2d(self.model) is None:
            raise ValueError("TensorBoard: write_images=True draws the first Conv2D layer's filters; "
                             f"the model has no Conv2D layer ({[layer.name for layer in self.model.layers]})")

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        self.epoch_batches, self.epoch_start = 0, time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        self.epoch_batches += 1
        step = self.model.optimizer.iterations  # the steps of every fit so far, as a checkpoint keeps them
        if self.update_freq != "epoch" and step % self.update_freq == 0:
            for name, value in (logs or {}).items():
                self._writer("train").scalar(f"batch_{name}", value, step)

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        logs = logs or {}
        train = {key: value for key, value in logs.items() if not key.startswith("val_")}
        train.setdefault("learning_rate", self.model.optimizer.learning_rate)
        if self.write_steps_per_second:
            train["steps_per_second"] = self.epoch_batches / (time.perf_counter() - self.epoch_start)
        for name, value in train.items():
            self._writer("train").scalar(f"epoch_{name}", value, epoch)
        for name, value in logs.items():
            if name.startswith("val_"):
                self._writer("validation").scalar(f"epoch_{name.removeprefix('val_')}", value, epoch)
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            self._write_weights(epoch)

    def _write_weights(self, epoch: int) -> None:
        writer = self._writer("train")
        for layer in self.model.layers:
            for key, values in [*layer.params.items(), *layer.state.items()]:
                writer.histogram(f"{layer.name}/{key}/histogram", values, epoch)
        for name, _, gradient in self.model.parameters_and_gradients():
            writer.histogram(f"{name}/gradient/histogram", gradient, epoch)
        if self.write_images:
            from minicnn.tensorboard_logs import filter_grid, first_conv2d

            conv = first_conv2d(self.model)
            image = filter_grid(conv.params["kernel"])
            writer.image(f"{conv.name}/kernel/image", image, epoch)

    def on_train_end(self, logs: Logs | None = None) -> None:
        for writer in self.writers.values():
            writer.close()
        self.writers = {}
