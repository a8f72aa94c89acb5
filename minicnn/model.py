"""``Sequential``: a stack of layers with Keras' verbs.

``compile``, ``fit``, ``evaluate``, ``predict``, ``summary`` and ``save``
(:mod:`minicnn.saving`) behave as a Keras user expects. Training is plain
backpropagation: forward through every step, the loss on the logits, backward
through every step in reverse, then one optimizer step over the trainable
parameters (``docs/backprop.md#the-training-step``).

A step is a layer, or on the fast path a fused run of layers (:mod:`minicnn.fused`).
Which path runs is the model's explicit choice: ``compile(..., kernels="reference")``
pins it; with ``kernels=None`` (the default) the model follows the active path
(``with minicnn.kernels.use(...)``, ``MINICNN_KERNELS``; fast unless told otherwise).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator

import numpy as np

from minicnn import fused, kernels, losses, optimizers, saving
from minicnn.layers import Input, Layer
from minicnn.layers.base import channels_first_hint
from minicnn.seeding import make_rng


class History:
    """What ``fit`` returns: ``history.history["loss"]`` etc., one value per epoch, like Keras."""

    def __init__(self, epochs: int, batch_size: int):
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []
        self.params = {"epochs": epochs, "batch_size": batch_size}

    def append(self, epoch: int, logs: dict[str, float]) -> None:
        self.epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)


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
        self.metrics: list[str] = []
        self.kernels: str | None = None
        for layer in layers or []:
            self.add(layer)

    # ------------------------------------------------------------------ structure

    def add(self, layer: Layer) -> None:
        """Append a layer (an ``Input`` only as the first one)."""
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
        return sum(layer.count_params() for layer in self.layers)

    def get_layer(self, name: str) -> Layer:
        """The layer called ``name``; ValueError listing the names if there is none."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"get_layer: no layer named {name!r}; the layers are "
                         f"{[layer.name for layer in self.layers]}")

    def get_weights(self) -> list[np.ndarray]:
        """All parameters, layer by layer (kernel then bias), in Keras' order."""
        return [p.copy() for layer in self.layers for p in layer.params.values()]

    def set_weights(self, weights: list[np.ndarray]) -> None:
        """Set all parameters from a list in the order of :meth:`get_weights` (Keras' order)."""
        slots = [(layer, key) for layer in self.layers for key in layer.params]
        if len(weights) != len(slots):
            raise ValueError(f"set_weights: the model has {len(slots)} weight arrays; got {len(weights)}")
        for (layer, key), value in zip(slots, weights, strict=True):
            value = np.asarray(value)
            expected = layer.params[key]
            if value.shape != expected.shape:
                raise ValueError(f"set_weights: {layer.name}/{key} has shape {expected.shape}; "
                                 f"got {value.shape}")
            layer.params[key] = value.astype(expected.dtype)

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
                 f"{layer.count_params() + sum(a.size for a in layer.state.values()):,}")
                for layer in self.layers]
        widths = (33, 26, 13)

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

    def steps(self, input_gradient: bool = True) -> list:
        """The steps that run the layers: runs that :mod:`minicnn.fused` knows (Conv2D -> MaxPooling2D
        -> Dropout) become one fused step, which on the reference path runs its layers one by one."""
        return fused.plan(self.layers, input_gradient)

    def path(self) -> contextlib.AbstractContextManager:
        """A context in which this model's kernels run: its own choice, or else the active path."""
        return kernels.use(self.kernels) if self.kernels else contextlib.nullcontext()

    @property
    def ends_in_softmax(self) -> bool:
        return bool(self.layers) and getattr(self.layers[-1], "activation", None) == "softmax"

    def __call__(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """The model's output for a batch ``x`` of shape (N, *input_shape)."""
        with self.path():
            for step in self.steps():
                x = step.forward(x, training)
        return x

    def logits(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """What the loss reads, for a batch ``x``: shape (N, K).

        The input of the final softmax when the model ends in one (the loss fuses the
        two), else the model's output (logits, for a loss with ``from_logits=True``).
        """
        with self.path():
            return self._logits(self.steps(), x, training)

    def _logits(self, steps: list, x: np.ndarray, training: bool) -> np.ndarray:
        *body, last = steps
        for step in body:
            x = step.forward(x, training)
        return last.forward_linear(x, training) if self.ends_in_softmax else last.forward(x, training)

    def compute_loss_and_gradients(self, x: np.ndarray, y: np.ndarray, input_gradient: bool = True
                                   ) -> tuple[float, np.ndarray, np.ndarray | None]:
        """One forward and backward pass in training mode; fills every layer's ``grads``.

        x: (N, *input_shape), y: one-hot (N, K). The loss is the cross-entropy on the
        logits ``z`` (:meth:`logits`); a final softmax is fused with it, so
        ``dz = (p - y) / N`` enters that layer's linear part directly. Returns
        ``(loss, z, dx)``: the mean loss, the logits (N, K) and the gradient
        of the loss with respect to ``x`` (None if ``input_gradient=False``,
        which lets training skip work nobody uses).
        """
        loss_fn = self.loss or losses.CategoricalCrossentropy(from_logits=not self.ends_in_softmax)
        with self.path():
            steps = self.steps(input_gradient)
            z = self._logits(steps, x, training=True)
            loss, dz = loss_fn.loss_and_gradient(z, y)
            *body, last = steps
            dout = last.backward_linear(dz) if self.ends_in_softmax else last.backward(dz)
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

    def compile(self, optimizer="adam", loss: str | losses.Loss | None = None,
                metrics: list[str] | None = None, kernels: str | None = None) -> None:
        """Choose the optimizer (name or instance), the loss (name or instance), the metrics
        (``["accuracy"]``) and, optionally, the path every computation takes (``"fast"`` or
        ``"reference"``; None follows the active path, see :mod:`minicnn.kernels`)."""
        from minicnn import kernels as kernel_paths

        metrics = list(metrics or [])
        unknown = [m for m in metrics if m not in ("accuracy", "acc")]
        if unknown:
            raise ValueError(f"compile: the only metric is 'accuracy'; got {unknown}")
        if kernels is not None:
            kernel_paths.check_path(kernels, "compile: kernels")
        loss = losses.get(loss) if loss is not None else None
        if loss is not None:
            self._check_loss_fits_output(loss)
        self.optimizer = optimizers.get(optimizer)
        self.loss = loss
        self.metrics = ["accuracy" for _ in metrics]
        self.kernels = kernels

    def _check_loss_fits_output(self, loss: losses.Loss) -> None:
        last = repr(self.layers[-1]) if self.layers else "no layers"
        if not loss.from_logits and not self.ends_in_softmax:
            raise ValueError(f"compile: {loss!r} expects probabilities from a last layer that ends in a "
                             f"softmax (e.g. Dense(10, activation='softmax')); got {last}. If the model "
                             f"outputs logits, use from_logits=True.")
        if loss.from_logits and self.ends_in_softmax:
            raise ValueError(f"compile: {loss!r} expects logits, but the last layer ends in a softmax "
                             f"({last}); drop the softmax or use from_logits=False.")

    def train_on_batch(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """One optimizer step on one batch; returns ``(loss, accuracy)`` on it."""
        self._require_compiled("train_on_batch")
        x, y = self._check_data(x, y, "train_on_batch")
        return self._train_step(x, y)

    def _train_step(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        loss, z, _ = self.compute_loss_and_gradients(x, y, input_gradient=False)
        if not np.isfinite(loss):
            raise FloatingPointError(f"the loss is {loss}")
        with self.path():
            self.optimizer.apply_gradients(self.parameters_and_gradients())
        return loss, _accuracy(z, y)

    def fit(self, x: np.ndarray, y: np.ndarray, batch_size: int = 32, epochs: int = 1,
            verbose: int = 1, validation_data: tuple | None = None,
            validation_split: float = 0.0, shuffle: bool = True, initial_epoch: int = 0,
            seed: int | None = None) -> History:
        """Train from epoch ``initial_epoch`` up to ``epochs`` (an index, as in Keras) in mini-batches.

        x: (N, *input_shape) float; y: labels as the loss expects them (one-hot (N, K) for
        categorical_crossentropy, integers (N,) for sparse_categorical_crossentropy).
        The samples are reshuffled at the start of every epoch (a permutation, not
        sampling with replacement): epoch ``e`` uses the ``e``-th permutation drawn from
        ``default_rng(seed)``, so a run resumed with ``initial_epoch`` sees the same
        batches as one that never stopped. ``validation_split`` holds out the *last*
        fraction of the data before shuffling, as Keras does. ``verbose``: 0 silent,
        1 a progress bar and a summary line per epoch, 2 the summary line only.
        Training stops with a FloatingPointError at the first loss that is not finite.
        """
        self._require_compiled("fit")
        x, y = self._check_data(x, y, "fit")
        _check_int(batch_size, "fit: batch_size", minimum=1)
        _check_int(epochs, "fit: epochs", minimum=1)
        _check_int(initial_epoch, "fit: initial_epoch", minimum=0)
        if initial_epoch >= epochs:
            raise ValueError(f"fit: initial_epoch ({initial_epoch}) must be less than epochs ({epochs}), "
                             "the index of the epoch to stop before")
        if validation_data is not None and validation_split:
            raise ValueError("fit: pass validation_data or validation_split, not both")
        if validation_split:
            x, y, validation_data = _split_off_validation(x, y, validation_split)
        if validation_data is not None:
            validation_data = self._check_data(*validation_data, "fit: validation_data")
        rng = make_rng(seed)
        history = History(epochs, batch_size)
        for epoch in range(epochs):
            order = rng.permutation(len(x)) if shuffle else np.arange(len(x))
            if epoch < initial_epoch:
                continue  # drawn all the same, so that epoch ``e`` always gets the same order
            start = time.perf_counter()
            logs = self._train_epoch(x, y, order, batch_size, epoch, epochs, verbose)
            if validation_data is not None:
                val = self._evaluate_arrays(*validation_data, batch_size)
                logs.update(val_loss=val[0], val_accuracy=val[1])
            history.append(epoch, logs)
            if verbose:
                _print_epoch(epoch, epochs, time.perf_counter() - start, logs)
        return history

    def _train_epoch(self, x, y, order, batch_size, epoch, epochs, verbose) -> dict[str, float]:
        from tqdm.auto import tqdm

        total_loss = total_correct = seen = 0.0
        batches = range(0, len(order), batch_size)
        with tqdm(batches, desc=f"Epoch {epoch + 1}/{epochs}", unit="batch", leave=False,
                  disable=verbose != 1) as bar:
            for batch, begin in enumerate(bar):
                idx = order[begin:begin + batch_size]
                try:
                    loss, acc = self._train_step(x[idx], y[idx])
                except FloatingPointError as exc:
                    raise FloatingPointError(
                        f"fit: {exc} at epoch {epoch + 1}, batch {batch + 1} of {len(batches)}: training "
                        f"diverged. Try a smaller learning rate (now "
                        f"{self.optimizer.learning_rate:g}).") from None
                total_loss += loss * len(idx)
                total_correct += acc * len(idx)
                seen += len(idx)
                bar.set_postfix(loss=f"{total_loss / seen:.4f}",
                                accuracy=f"{total_correct / seen:.4f}", refresh=False)
        return {"loss": total_loss / seen, "accuracy": total_correct / seen}

    def evaluate(self, x: np.ndarray, y: np.ndarray, batch_size: int = 32,
                 verbose: int = 0) -> list[float] | float:
        """Mean loss and accuracy on ``(x, y)``, dropout off: ``[loss, accuracy]`` (Keras' order).

        Returns the loss alone when the model was compiled without metrics.
        """
        self._require_compiled("evaluate")
        x, y = self._check_data(x, y, "evaluate")
        _check_int(batch_size, "evaluate: batch_size", minimum=1)
        loss, acc = self._evaluate_arrays(x, y, batch_size, verbose)
        return [loss, acc] if self.metrics else loss

    def _evaluate_arrays(self, x, y, batch_size, verbose=0) -> tuple[float, float]:
        total_loss = total_correct = 0.0
        for begin, z in self._batched(x, batch_size, verbose, self.logits):
            yb = y[begin:begin + len(z)]
            total_loss += self.loss.loss_and_gradient(z, yb)[0] * len(z)
            total_correct += _accuracy(z, yb) * len(z)
        return total_loss / len(x), total_correct / len(x)

    def predict(self, x: np.ndarray, batch_size: int = 32, verbose: int = 0) -> np.ndarray:
        """The model's outputs (softmax probabilities), computed in batches: shape (N, K)."""
        x = self._check_x(x, "predict")
        _check_int(batch_size, "predict: batch_size", minimum=1)
        return np.concatenate([p for _, p in self._batched(x, batch_size, verbose, self)])

    def _batched(self, x, batch_size, verbose, fn) -> Iterator[tuple[int, np.ndarray]]:
        """``(begin, fn(x[begin:begin + batch_size]))`` for each batch, dropout off."""
        from tqdm.auto import tqdm

        with self.path():
            for begin in tqdm(range(0, len(x), batch_size), unit="batch", leave=False,
                              disable=verbose != 1):
                yield begin, fn(x[begin:begin + batch_size], training=False)

    # ------------------------------------------------------------------ saving

    def get_config(self) -> dict:
        return {"name": self.name, "input_shape": self.input_shape,
                "layers": [{"class_name": type(layer).__name__, "config": layer.get_config()}
                           for layer in self.layers]}

    def save(self, path: str | os.PathLike) -> None:
        """Write the model to one ``.npz`` file, atomically: see :func:`minicnn.saving.save_model`."""
        saving.save_model(self, path)

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

    def _check_data(self, x, y, verb: str) -> tuple[np.ndarray, np.ndarray]:
        """``x`` checked, and ``y`` as the one-hot targets (N, K) the loss computes with."""
        x = self._check_x(x, verb)
        y = np.asarray(y)
        if y.ndim == 0 or len(y) != len(x):
            raise ValueError(f"{verb}: x has {len(x)} samples but y has {len(y) if y.ndim else 'none'}")
        return x, self.loss.targets(y, self.output_shape[-1], self.dtype, verb)


def load_model(path: str | os.PathLike) -> Sequential:
    """Rebuild a model written by :meth:`Sequential.save`: architecture, weights, state, and the
    compile settings and optimizer state if it was compiled (:func:`minicnn.saving.load_model`)."""
    return saving.load_model(path, Sequential)


def _accuracy(scores: np.ndarray, y: np.ndarray) -> float:
    """Fraction of rows whose highest score (logit or probability) is the one-hot class."""
    return float(np.mean(scores.argmax(axis=1) == y.argmax(axis=1)))


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


def _check_int(value, what: str, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{what} must be an integer >= {minimum}; got {value!r}")


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
