"""``Sequential``: a stack of layers with Keras' verbs.

``compile``, ``fit``, ``evaluate``, ``predict``, ``summary`` and ``save``
(:mod:`minicnn.saving`) behave as a Keras user expects. Training is plain
backpropagation: forward through every step, the loss on the logits, backward
through every step in reverse, then one optimizer step over the trainable
parameters (``docs/backprop.md#the-training-step``).

A step is a layer, or in the fast implementation a fused run of layers (:mod:`minicnn.fused`).
Which implementation runs is the model's explicit choice: ``compile(..., implementation="reference")``
pins it; with ``implementation=None`` (the default) the model follows the active one
(``with minicnn.implementation.use(...)``, ``MINICNN_IMPLEMENTATION``; fast unless told otherwise).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import warnings
from collections.abc import Callable, Iterable, Iterator

import numpy as np

from minicnn import fused, losses, optimizers, saving, threads
from minicnn import metrics as metrics_module
from minicnn.callbacks import Callback, CallbackList, History, TerminateOnNaN
from minicnn.implementation import accepts_kernels_keyword
from minicnn.implementation import check as check_implementation
from minicnn.implementation import use as use_implementation
from minicnn.layers import Input, Layer
from minicnn.layers.base import Step, channels_first_hint
from minicnn.seeding import make_rng
from minicnn.validation import check_int

__all__ = ["History", "Sequential"]

Batch = tuple[np.ndarray, np.ndarray, "np.ndarray | None"]

class Sequential:
    """A linear stack of layers, e.g. ``Sequential([Input((28, 28, 1)), Conv2D(32, 3), ...])``.

    The model is built (shapes fixed, weights created) as soon as the input
    shape is known: from a leading ``Input`` layer, ``build()``, or the first
    data it sees. Layers get Keras' names (``conv2d``, ``conv2d_1``, ...) unless named.
    """

    def __init__(self, layers: list[Layer] | None = None, name: str = "sequential"):
        self.name = name
        self.layers: list[Layer] = []
        self.input_shape: tuple | None = None
        self.optimizer: optimizers.Optimizer | None = None
        self.loss: losses.Loss | None = None
        self.metrics: list[metrics_module.Metric] = []
        self.implementation: str | None = None
        """``"fast"`` or ``"reference"`` as :meth:`compile` chose; None follows the active one."""
        self.stop_training = False
        """Set to True (by a callback) to end ``fit`` after the current batch."""
        for layer in layers or []:
            self.add(layer)

    # ------------------------------------------------------------------ structure

    def add(self, layer: Layer) -> None:
        """Append a layer (an ``Input``, or a layer given ``input_shape=``, only as the first one)."""
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add: expected a minicnn layer; got {type(layer).__name__}")
        if isinstance(layer, Input):
            if self.layers or self.input_shape is not None:
                raise ValueError("Sequential.add: an Input layer can only come first")
            self.build((None, *layer.shape))
            return
        taken = {existing.name for existing in self.layers}
        if any(layer is existing for existing in self.layers):
            raise ValueError(f"Sequential.add: {layer.label()} is in the model already")
        if layer.name is None:
            layer.name = _unique_name(layer.default_name, taken)
        elif layer.name in taken:
            raise ValueError(f"Sequential.add: the model has a layer named {layer.name!r} already; "
                             "layer names must be unique (they key the saved weights)")
        if layer.declared_input_shape is not None:
            if self.layers or self.input_shape is not None:
                raise ValueError(f"Sequential.add: {layer.label()} was given input_shape="
                                 f"{layer.declared_input_shape}, but only the first layer can declare the "
                                 "model's input shape")
            self.input_shape = layer.declared_input_shape
        self.layers.append(layer)
        if self.input_shape is not None:
            self._build_layers()

    def build(self, input_shape: tuple) -> None:
        """Fix the input shape, Keras-style with the batch axis: ``build((None, 28, 28, 1))``."""
        self.input_shape = tuple(int(d) for d in input_shape[1:])
        self._build_layers()

    def _build_layers(self) -> None:
        shape = self.input_shape
        for layer in self.layers:
            if not layer.built:
                layer.build(shape)
            elif layer.input_shape != shape:
                raise ValueError(f"{layer.label()}: built for inputs {layer.input_shape}, "
                                 f"but the previous layer gives {shape}")
            shape = layer.output_shape

    @property
    def built(self) -> bool:
        return self.input_shape is not None

    @property
    def output_shape(self) -> tuple:
        return self.layers[-1].output_shape if self.layers else self.input_shape

    def count_params(self) -> int:
        """Every layer's parameters and state (moving statistics), as Keras' ``count_params``."""
        return sum(layer.count_params() for layer in self.layers)

    def get_layer(self, name: str | None = None, index: int | None = None) -> Layer:
        """The layer called ``name``, or at position ``index``, as Keras' ``get_layer``."""
        if (name is None) == (index is None):
            raise ValueError("get_layer: pass either name or index")
        if index is not None:
            if not -len(self.layers) <= index < len(self.layers):
                raise ValueError(f"get_layer: index {index} is out of range for {len(self.layers)} layers")
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"get_layer: no layer named {name!r}; the layers are "
                         f"{[layer.name for layer in self.layers]}")

    def get_weights(self) -> list[np.ndarray]:
        """Copies of every layer's weights, layer by layer, in Keras' order: its parameters
        (kernel then bias; gamma then beta), then its state (moving mean then moving variance)."""
        return [w.copy() for layer in self.layers for w in layer.get_weights()]

    def set_weights(self, weights: list[np.ndarray]) -> None:
        """Set every layer's weights from a list in the order of :meth:`get_weights` (Keras' order)."""
        counts = [len(layer.weights) for layer in self.layers]
        if len(weights) != sum(counts):
            raise ValueError(f"set_weights: the model has {sum(counts)} weight arrays; got {len(weights)}")
        start = 0
        for layer, count in zip(self.layers, counts, strict=True):
            layer.set_weights(weights[start:start + count])
            start += count

    def astype(self, dtype) -> Sequential:
        """Convert every layer's parameters to ``dtype`` in place (float64 for gradient checks)."""
        for layer in self.layers:
            layer.astype(dtype)
        return self

    @property
    def dtype(self) -> np.dtype:
        return next((layer.dtype for layer in self.layers if layer.params), np.dtype(np.float32))

    def summary(self, print_fn: Callable[[str], None] = print) -> None:
        """Print the layer table Keras prints: name (type), output shape, parameter count."""
        self._require_built("summary")
        rows = [(f"{layer.name} ({type(layer).__name__})", str((None, *layer.output_shape)),
                 f"{layer.count_params():,}")
                for layer in self.layers]
        widths = (max(33, *(len(name) for name, _, _ in rows)), 26, 13)

        def line(left: str, mid: str, right: str, fill: str) -> str:
            return left + mid.join(fill * (w + 2) for w in widths) + right

        def row(cells: tuple[str, str, str], edge: str) -> str:
            name, shape, count = cells
            return (f"{edge} {name:<{widths[0]}} {edge} {shape:<{widths[1]}} "
                    f"{edge} {count:>{widths[2]}} {edge}")

        trainable = [p for layer in self.layers if layer.trainable for p in layer.params.values()]
        frozen = [p for layer in self.layers for p in
                  [*(() if layer.trainable else layer.params.values()), *layer.state.values()]]

        def count(arrays: list[np.ndarray]) -> str:
            return f"{sum(a.size for a in arrays):,} ({_format_bytes(sum(a.nbytes for a in arrays))})"

        out = [f'Model: "{self.name}"', line("┏", "┳", "┓", "━"),
               row(("Layer (type)", "Output Shape", "Param #"), "┃"), line("┡", "╇", "┩", "━")]
        out += [row(r, "│") for r in rows]
        out += [line("└", "┴", "┘", "─"),
                f" Total params: {count(trainable + frozen)}",
                f" Trainable params: {count(trainable)}",
                f" Non-trainable params: {count(frozen)}"]
        print_fn("\n".join(out))

    # ------------------------------------------------------------------ forward and backward

    def steps(self, input_gradient: bool = True) -> list[Step]:
        """The steps that run the layers: runs that :mod:`minicnn.fused` knows (Conv2D -> MaxPooling2D
        -> Dropout) become one fused step, which on the reference path runs its layers one by one;
        every other layer is a step of its own. Every step keeps the layer contract."""
        return fused.plan(self.layers, input_gradient)

    def implementation_context(self) -> contextlib.AbstractContextManager:
        """A context in which this model's computations run: its own implementation, else the active one."""
        return use_implementation(self.implementation) if self.implementation else contextlib.nullcontext()

    def path(self) -> contextlib.AbstractContextManager:
        """Deprecated: the old name of :meth:`implementation_context`."""
        warnings.warn("Sequential.path() is deprecated: use Sequential.implementation_context()",
                      DeprecationWarning, stacklevel=2)
        return self.implementation_context()

    @property
    def kernels(self) -> str | None:
        """Deprecated: the old name of :attr:`implementation`."""
        warnings.warn("Sequential.kernels is deprecated: use Sequential.implementation",
                      DeprecationWarning, stacklevel=2)
        return self.implementation

    @kernels.setter
    def kernels(self, value: str | None) -> None:
        warnings.warn("Sequential.kernels is deprecated: use Sequential.implementation",
                      DeprecationWarning, stacklevel=2)
        self.implementation = value

    @property
    def ends_in_softmax(self) -> bool:
        return bool(self.layers) and getattr(self.layers[-1], "activation", None) == "softmax"

    def __call__(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """The model's output for a batch ``x`` of shape (N, *input_shape)."""
        with self.implementation_context():
            for step in self.steps():
                x = step.forward(x, training)
        return x

    def logits(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """What the loss reads, for a batch ``x``: shape (N, K).

        The input of the final softmax when the model ends in one (the loss fuses the
        two), else the model's output (logits, for a loss with ``from_logits=True``).
        """
        with self.implementation_context():
            return self._logits(self.steps(), x, training)

    def _logits(self, steps: list[Step], x: np.ndarray, training: bool) -> np.ndarray:
        *body, last = steps
        for step in body:
            x = step.forward(x, training)
        return last.forward_affine(x, training) if self.ends_in_softmax else last.forward(x, training)

    def compute_loss_and_gradients(self, x: np.ndarray, y: np.ndarray, input_gradient: bool = True,
                                   sample_weight: np.ndarray | None = None
                                   ) -> tuple[float, np.ndarray, np.ndarray | None]:
        """One forward and backward pass in training mode; fills every layer's ``grads``.

        x: (N, *input_shape), y: one-hot (N, K). The loss is the cross-entropy on the
        logits ``z`` (:meth:`logits`); a final softmax is fused with it, so
        ``dz = (p - y) / N`` enters that layer's affine part directly. Returns
        ``(loss, z, dx)``: the mean loss, the logits (N, K) and the gradient
        of the loss with respect to ``x`` (None if ``input_gradient=False``,
        which lets training skip work nobody uses). ``sample_weight`` (N,) scales
        each sample's loss (see :func:`minicnn.losses.softmax_cross_entropy`).
        """
        loss_fn = self.loss or losses.CategoricalCrossentropy(from_logits=not self.ends_in_softmax)
        with self.implementation_context():
            steps = self.steps(input_gradient)
            z = self._logits(steps, x, training=True)
            loss, dz = loss_fn.loss_and_gradient(z, y, sample_weight)
            *body, last = steps
            dout = last.backward_affine(dz) if self.ends_in_softmax else last.backward(dz)
            for step in reversed(body):
                dout = step.backward(dout)
        return loss, z, dout if input_gradient else None

    def parameters_and_gradients(self, trainable_only: bool = True
                                 ) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        """``(name, param, grad)`` for every parameter the optimizer updates, names like ``"conv2d/kernel"``.

        ``trainable_only=False`` includes the layers with ``trainable = False`` (for gradient checks).
        """
        for layer in self.layers:
            if layer.trainable or not trainable_only:
                for key, param in layer.params.items():
                    yield f"{layer.name}/{key}", param, layer.grads[key]

    # ------------------------------------------------------------------ Keras verbs

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

    def train_on_batch(self, x: np.ndarray, y: np.ndarray, sample_weight=None, class_weight=None,
                       return_dict: bool = False) -> float | list[float] | dict[str, float]:
        """One optimizer step on one batch; the loss and metrics on it, as :meth:`evaluate` returns them."""
        self._require_compiled("train_on_batch")
        x, y = self._check_data(x, y, "train_on_batch")
        weights = self._sample_weights(y, sample_weight, class_weight, "train_on_batch")
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

    def fit(self, x=None, y=None, batch_size: int | None = None, epochs: int = 1, verbose: int = 1,
            callbacks: list[Callback] | None = None, validation_split: float = 0.0,
            validation_data: tuple | None = None, shuffle: bool = True, class_weight: dict | None = None,
            sample_weight=None, initial_epoch: int = 0, steps_per_epoch: int | None = None,
            seed: int | None = None) -> History:
        """Train from epoch ``initial_epoch`` up to ``epochs`` (an index, as in Keras) in mini-batches.

        x: (N, *input_shape) float; y: labels as the loss expects them (one-hot (N, K) for
        categorical_crossentropy, integers (N,) or (N, 1) for sparse_categorical_crossentropy).
        ``batch_size`` defaults to 32. The samples are reshuffled at the start of every epoch (a
        permutation, not sampling with replacement): epoch ``e`` uses the ``e``-th permutation
        drawn from ``default_rng(seed)``, so a run resumed with ``initial_epoch`` sees the same
        batches as one that never stopped. ``validation_split`` holds out the *last*
        fraction of the data before shuffling, as Keras does. ``verbose``: 0 silent,
        1 a progress bar and a summary line per epoch, 2 the summary line only.

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
        if steps_per_epoch is not None:
            check_int(steps_per_epoch, "fit: steps_per_epoch", minimum=1)
        if initial_epoch >= epochs:
            raise ValueError(f"fit: initial_epoch ({initial_epoch}) must be less than epochs ({epochs}), "
                             "the index of the epoch to stop before")
        if validation_data is not None and validation_split:
            raise ValueError("fit: pass validation_data or validation_split, not both")
        if class_weight is not None and sample_weight is not None:
            raise ValueError("fit: pass class_weight or sample_weight, not both (as in Keras)")
        if _is_batch_source(x):
            if y is not None or sample_weight is not None or validation_split:
                raise ValueError("fit: when x is an iterator of batches it yields the labels (and sample "
                                 "weights) too; pass y=None, no sample_weight and no validation_split")
            epoch_batches = self._generator_epochs(x, steps_per_epoch, class_weight)
            steps = steps_per_epoch
        elif y is None:
            raise ValueError("fit: y is missing; pass labels with array inputs (or an iterator of (x, y) "
                             "batches as x)")
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise ValueError("fit: validation_data must be a pair (x_val, y_val)")
            validation_data = self._check_data(*validation_data, "fit: validation_data")
        if not _is_batch_source(x):
            epoch_batches, steps, split_off = self._array_epochs(
                x, y, batch_size, shuffle, class_weight, sample_weight, validation_split, steps_per_epoch,
                seed)
            validation_data = split_off or validation_data
        with threads.one_blas_thread():  # held once for the run rather than per product (matmul)
            return self._fit_loop(epoch_batches, steps, epochs, initial_epoch, verbose, callbacks,
                                  validation_data, batch_size)

    def _fit_loop(self, epoch_batches, steps, epochs, initial_epoch, verbose, callbacks, validation_data,
                  batch_size) -> History:
        history = History()
        callbacks = list(callbacks or [])
        skip_non_finite = any(isinstance(c, TerminateOnNaN) for c in callbacks)
        params = {"epochs": epochs, "steps": steps, "verbose": verbose}
        run = CallbackList([*callbacks, history], self, params)
        self.stop_training = False
        run.call("on_train_begin", {})
        logs: dict[str, float] = {}
        for epoch in range(epochs):
            batches = epoch_batches(epoch)
            if epoch < initial_epoch:
                continue  # drawn all the same, so that epoch ``e`` always gets the same order
            start = time.perf_counter()
            run.call("on_epoch_begin", epoch, {})
            logs = self._train_epoch(batches, steps, epoch, epochs, verbose, run, skip_non_finite)
            if not logs:  # an iterator that had no batch left
                break
            if validation_data is not None:
                val = self._evaluate_arrays(*validation_data, None, batch_size)
                logs.update({f"val_{key}": value for key, value in val.items()})
            run.call("on_epoch_end", epoch, logs)
            if verbose:
                _print_epoch(epoch, epochs, time.perf_counter() - start, logs)
            if self.stop_training:
                break
        run.call("on_train_end", logs)
        return history

    def _array_epochs(self, x, y, batch_size, shuffle, class_weight, sample_weight, validation_split,
                      steps_per_epoch, seed):
        """For arrays: a function giving each epoch's batches, the steps per epoch, and the validation
        data split off (or None)."""
        x, y = self._check_data(x, y, "fit")
        weights = self._sample_weights(y, sample_weight, class_weight, "fit")
        validation_data = None
        if validation_split:
            x, y, validation_data = _split_off_validation(x, y, validation_split)
            weights = None if weights is None else weights[:len(x)]
        total = -(-len(x) // batch_size)
        if steps_per_epoch is not None and steps_per_epoch > total:
            raise ValueError(f"fit: steps_per_epoch={steps_per_epoch} is more than the {total} batches of "
                             f"{batch_size} that {len(x)} samples make")
        steps = steps_per_epoch or total
        rng = make_rng(seed)

        def epoch_batches(epoch: int) -> Iterator[Batch]:
            # Drawn on the call, so an epoch skipped for initial_epoch still uses up its permutation.
            order = rng.permutation(len(x)) if shuffle else np.arange(len(x))
            indices = [order[begin:begin + batch_size] for begin in range(0, steps * batch_size, batch_size)]
            return ((x[i], y[i], None if weights is None else weights[i]) for i in indices)

        return epoch_batches, steps, validation_data

    def _generator_epochs(self, source: Iterable, steps_per_epoch: int | None, class_weight):
        """For an iterator of batches: a function giving each epoch's (checked) batches from it."""
        iterator = iter(source)

        def epoch_batches(epoch: int) -> Iterator[Batch]:
            count = 0
            while steps_per_epoch is None or count < steps_per_epoch:
                try:
                    item = next(iterator)
                except StopIteration:
                    if steps_per_epoch is not None or count == 0:
                        warnings.warn(f"fit: the input ran out of batches after {count} in epoch {epoch + 1}"
                                      + (f" (steps_per_epoch={steps_per_epoch})" if steps_per_epoch else "")
                                      + "; training stops. Make the generator loop forever, or lower "
                                      "steps_per_epoch or epochs.", stacklevel=4)
                        self.stop_training = True
                    return
                if not isinstance(item, tuple) or len(item) not in (2, 3):
                    raise ValueError(f"fit: each batch from the iterator must be a tuple (x, y) or "
                                     f"(x, y, sample_weight); got {type(item).__name__}")
                xb, yb = self._check_data(item[0], item[1], f"fit: batch {count} of epoch {epoch + 1}")
                weights = self._sample_weights(yb, item[2] if len(item) == 3 else None, class_weight, "fit")
                count += 1
                yield xb, yb, weights

        return epoch_batches

    def _train_epoch(self, batches: Iterator[Batch], steps: int | None, epoch: int, epochs: int, verbose: int,
                     run: CallbackList, skip_non_finite: bool) -> dict[str, float]:
        """Train on ``batches``; the logs: means over the epoch's samples of the loss and metrics."""
        from tqdm.auto import tqdm

        totals = dict.fromkeys(self.metrics_names, 0.0)
        seen, logs = 0, {}
        with tqdm(batches, total=steps, desc=f"Epoch {epoch + 1}/{epochs}", unit="batch", leave=False,
                  disable=verbose != 1) as bar:
            for batch, (xb, yb, wb) in enumerate(bar):
                run.call("on_train_batch_begin", batch, {})
                try:
                    loss, z = self._train_step(xb, yb, wb, skip_non_finite)
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
                bar.set_postfix({key: f"{value:.4f}" for key, value in logs.items()}, refresh=False)
                run.call("on_train_batch_end", batch, dict(logs))
                if self.stop_training:
                    break
        return logs

    def evaluate(self, x: np.ndarray, y: np.ndarray, batch_size: int | None = None, verbose: int = 0,
                 sample_weight=None, return_dict: bool = False) -> float | list[float] | dict[str, float]:
        """Mean loss and metrics on ``(x, y)``, dropout off, batch by batch (32 by default).

        Returns ``[loss, *metrics]`` in the order of :attr:`metrics_names` (Keras' order), the
        loss alone when the model was compiled without metrics, or with ``return_dict=True``
        a dict ``{"loss": ..., "accuracy": ...}``. ``sample_weight`` (N,) weights the loss.
        """
        self._require_compiled("evaluate")
        x, y = self._check_data(x, y, "evaluate")
        batch_size = 32 if batch_size is None else batch_size
        check_int(batch_size, "evaluate: batch_size", minimum=1)
        weights = self._sample_weights(y, sample_weight, None, "evaluate")
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
        return {key: value / len(x) for key, value in totals.items()}

    def predict(self, x: np.ndarray, batch_size: int | None = None, verbose: int = 0) -> np.ndarray:
        """The model's outputs (softmax probabilities), computed in batches (32 by default): shape (N, K).

        The batches are independent, so they run side by side, one per thread
        (:func:`minicnn.threads.map_on_threads`).
        """
        x = self._check_x(x, "predict")
        batch_size = 32 if batch_size is None else batch_size
        check_int(batch_size, "predict: batch_size", minimum=1)
        return np.concatenate([p for _, p in self._batched(x, batch_size, verbose, self)])

    def _batched(self, x, batch_size, verbose, fn) -> list[tuple[int, np.ndarray]]:
        """``(begin, fn(x[begin:begin + batch_size]))`` for each batch, dropout off, batches side by side."""
        from tqdm.auto import tqdm

        begins = range(0, len(x), batch_size)
        with self.implementation_context(), tqdm(total=len(begins), unit="batch", leave=False,
                                                 disable=verbose != 1) as bar:

            def one(begin: int) -> tuple[int, np.ndarray]:
                out = fn(x[begin:begin + batch_size], training=False)
                bar.update()
                return begin, out

            return threads.map_on_threads(one, begins)

    # ------------------------------------------------------------------ saving

    def get_config(self) -> dict:
        return {"name": self.name, "input_shape": self.input_shape,
                "layers": [{"class_name": type(layer).__name__, "config": layer.get_config()}
                           for layer in self.layers]}

    def to_json(self, **kwargs) -> str:
        """The architecture as JSON, ``{"class_name": "Sequential", "config": ...}`` (no weights);
        :func:`minicnn.model_from_json` reads it back. ``kwargs`` go to ``json.dumps``."""
        return json.dumps({"class_name": "Sequential", "config": self.get_config()}, **kwargs)

    def save(self, path: str | os.PathLike) -> None:
        """Write the model to one ``.npz`` file, atomically: see :func:`minicnn.saving.save_model`."""
        saving.save_model(self, path)

    def save_weights(self, path: str | os.PathLike) -> None:
        """Write every layer's weights (params and state) to a ``.weights.npz`` file, atomically."""
        saving.save_weights(self, path)

    def load_weights(self, path: str | os.PathLike) -> None:
        """Set the weights from a file written by :meth:`save_weights` (same layer names and shapes)."""
        saving.load_weights(self, path)

    # ------------------------------------------------------------------ checks

    def _require_built(self, verb: str) -> None:
        if not self.built:
            raise ValueError(f"{verb}: the model is not built yet; start it with an Input layer "
                             "or call build((None, *input_shape))")

    def _require_compiled(self, verb: str) -> None:
        if self.optimizer is None:
            raise RuntimeError(f"{verb}: call compile(optimizer=..., loss=...) first")
        if self.loss is None:
            raise RuntimeError(f"{verb}: the model was compiled without a loss; compile it with, e.g., "
                               "loss='categorical_crossentropy' (one-hot labels) or "
                               "loss='sparse_categorical_crossentropy' (integer labels)")

    def _check_x(self, x, verb: str) -> np.ndarray:
        x = np.asarray(x)
        if not self.built:
            self.build((None, *x.shape[1:]))
        if x.ndim == 0 or x.shape[1:] != self.input_shape:
            raise ValueError(f"{verb}: expected x of shape {(None, *self.input_shape)}; got {x.shape}."
                             f"{channels_first_hint(x.shape, self.input_shape)}")
        if not np.issubdtype(x.dtype, np.floating):
            raise TypeError(f"{verb}: expected floating-point x; got {x.dtype}. Scale images "
                            "to [0, 1] first, e.g. x.astype('float32') / 255")
        if len(x) == 0:
            raise ValueError(f"{verb}: x is empty")
        if not np.isfinite(x).all():
            raise ValueError(f"{verb}: x contains NaN or Inf")
        return x.astype(self.dtype, copy=False)

    def _sample_weights(self, targets: np.ndarray, sample_weight, class_weight, verb: str
                        ) -> np.ndarray | None:
        """Per-sample loss weights (N,) from ``sample_weight`` or ``class_weight``, checked; or None."""
        if class_weight is not None:
            if not isinstance(class_weight, dict):
                raise TypeError(f"{verb}: class_weight must be a dict {{class index: weight}}; "
                                f"got {type(class_weight).__name__}")
            k = targets.shape[1]
            table = np.ones(k)
            for key, value in class_weight.items():
                if isinstance(key, bool) or not isinstance(key, (int, np.integer)) or not 0 <= key < k:
                    raise ValueError(f"{verb}: class_weight keys must be class indices 0..{k - 1}; "
                                     f"got {key!r}")
                table[key] = value
            sample_weight = table[targets.argmax(axis=1)]
        if sample_weight is None:
            return None
        weights = np.asarray(sample_weight)
        if weights.ndim == 2 and weights.shape[1] == 1:
            weights = weights[:, 0]
        if weights.shape != (len(targets),) or weights.dtype.kind not in "biuf":
            raise ValueError(f"{verb}: sample_weight must be {len(targets)} numbers, one per sample; "
                             f"got {weights.dtype} of shape {weights.shape}")
        if not (np.isfinite(weights).all() and (weights >= 0).all()):
            raise ValueError(f"{verb}: sample weights (and class weights) must be finite and >= 0")
        return weights.astype(self.dtype)

    def _check_data(self, x, y, verb: str) -> tuple[np.ndarray, np.ndarray]:
        """``x`` checked, and ``y`` as the one-hot targets (N, K) the loss computes with."""
        x = self._check_x(x, verb)
        y = np.asarray(y)
        if y.ndim == 0 or len(y) != len(x):
            raise ValueError(f"{verb}: x has {len(x)} samples but y has {len(y) if y.ndim else 'none'}")
        return x, self.loss.targets(y, self.output_shape[-1], self.dtype, verb)


def _is_batch_source(x) -> bool:
    """True for an iterator or generator of batches (or another non-array iterable), as ``fit`` takes."""
    return (x is not None and not isinstance(x, (np.ndarray, list, tuple))
            and (hasattr(x, "__next__") or hasattr(x, "__iter__")))


def load_model(path: str | os.PathLike, custom_objects: dict[str, type] | None = None) -> Sequential:
    """Rebuild a model written by :meth:`Sequential.save`: architecture, weights, state, and the
    compile settings and optimizer state if it was compiled (:func:`minicnn.saving.load_model`).
    ``custom_objects``: classes of one's own that the file names, by class name (``{"Scale": Scale}``)."""
    return saving.load_model(path, Sequential, custom_objects)


def model_from_json(text: str, custom_objects: dict[str, type] | None = None) -> Sequential:
    """The (untrained, uncompiled) model whose architecture :meth:`Sequential.to_json` wrote."""
    return saving.model_from_json(text, Sequential, custom_objects)


def _unique_name(base: str, taken: set) -> str:
    name, i = base, 0
    while name in taken:
        i += 1
        name = f"{base}_{i}"
    return name


def _format_bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.2f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def _split_off_validation(x: np.ndarray, y: np.ndarray, fraction) -> tuple:
    """``x, y`` without their last ``fraction``, and that last part as ``(x_val, y_val)``, as Keras splits."""
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0.0 < fraction < 1.0:
        raise ValueError(f"fit: validation_split must be a fraction in (0, 1); got {fraction!r}")
    cut = int(len(x) * (1.0 - fraction))
    if cut == 0 or cut == len(x):
        raise ValueError(f"fit: validation_split={fraction} of {len(x)} samples leaves "
                         f"{cut} for training and {len(x) - cut} for validation; both need at least one")
    return x[:cut], y[:cut], (x[cut:], y[cut:])


def _print_epoch(epoch: int, epochs: int, seconds: float, logs: dict[str, float]) -> None:
    from tqdm.auto import tqdm

    metrics = " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())
    tqdm.write(f"Epoch {epoch + 1}/{epochs} - {seconds:.1f}s - {metrics}")
