"""``Sequential``: a stack of layers with Keras' verbs.

``compile``, ``fit``, ``evaluate``, ``predict``, ``summary``, ``save`` and
:func:`load_model` behave as a Keras user expects. Training is plain
backpropagation: forward through every layer, the fused softmax +
cross-entropy loss on the last layer's logits, backward through every layer in
reverse, then one optimizer step over all parameters
(``docs/backprop.md#the-training-step``).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator

import numpy as np

from minicnn import fused, kernels, optimizers
from minicnn.files import atomic_write
from minicnn.layers import LAYER_CLASSES, Input, Layer
from minicnn.losses import LOSSES, softmax_cross_entropy, to_categorical
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
        self.loss: str | None = None
        self.metrics: list[str] = []
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
        if layer.name is None:
            taken = {existing.name for existing in self.layers}
            layer.name = _unique_name(layer.default_name, taken)
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
                raise ValueError(f"{layer._label()}: built for inputs {layer.input_shape}, "
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
                 f"{layer.count_params():,}") for layer in self.layers]
        widths = (33, 26, 13)

        def line(left: str, mid: str, right: str, fill: str) -> str:
            return left + mid.join(fill * (w + 2) for w in widths) + right

        def row(cells: tuple[str, str, str], edge: str) -> str:
            name, shape, count = cells
            return (f"{edge} {name:<{widths[0]}} {edge} {shape:<{widths[1]}} "
                    f"{edge} {count:>{widths[2]}} {edge}")

        total = self.count_params()
        size = sum(p.nbytes for layer in self.layers for p in layer.params.values())
        out = [f'Model: "{self.name}"', line("┏", "┳", "┓", "━"),
               row(("Layer (type)", "Output Shape", "Param #"), "┃"), line("┡", "╇", "┩", "━")]
        out += [row(r, "│") for r in rows]
        out += [line("└", "┴", "┘", "─"),
                f" Total params: {total:,} ({_format_bytes(size)})",
                f" Trainable params: {total:,} ({_format_bytes(size)})",
                " Non-trainable params: 0 (0.00 B)"]
        print_fn("\n".join(out))

    # ------------------------------------------------------------------ forward and backward

    def steps(self, input_gradient: bool = True) -> list:
        """The layers as executed: with the Numba kernels, runs that ``minicnn.fused`` knows
        (Conv2D -> MaxPooling2D -> Dropout) become one fused step with the same results."""
        if kernels.get_backend() == "numba":
            return fused.plan(self.layers, input_gradient)
        return list(self.layers)

    def __call__(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """The model's output for a batch ``x`` of shape (N, *input_shape)."""
        for step in self.steps():
            x = step.forward(x, training)
        return x

    def logits(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """The last layer's pre-softmax values ``z`` for a batch ``x``: shape (N, K)."""
        return self._logits(self.steps(), x, training)

    def _logits(self, steps: list, x: np.ndarray, training: bool) -> np.ndarray:
        *body, last = steps
        for step in body:
            x = step.forward(x, training)
        return last.forward_linear(x, training)

    def compute_loss_and_gradients(self, x: np.ndarray, y: np.ndarray, input_gradient: bool = True
                                   ) -> tuple[float, np.ndarray, np.ndarray | None]:
        """One forward and backward pass in training mode; fills every layer's ``grads``.

        x: (N, *input_shape), y: one-hot (N, K). The last layer's softmax is
        fused with the loss: the loss is computed from its logits ``z`` and
        ``dz = (p - y) / N`` enters its linear part directly. Returns
        ``(loss, z, dx)``: the mean loss, the logits (N, K) and the gradient
        of the loss with respect to ``x`` (None if ``input_gradient=False``,
        which lets training skip work nobody uses).
        """
        steps = self.steps(input_gradient)
        z = self._logits(steps, x, training=True)
        loss, dz = softmax_cross_entropy(z, y)
        *body, last = steps
        dout = last.backward_linear(dz)
        for step in reversed(body):
            dout = step.backward(dout)
        return loss, z, dout

    def parameters_and_gradients(self) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        """``(name, param, grad)`` for every parameter, names like ``"conv2d/kernel"``."""
        for layer in self.layers:
            for key, param in layer.params.items():
                yield f"{layer.name}/{key}", param, layer.grads[key]

    # ------------------------------------------------------------------ Keras verbs

    def compile(self, optimizer="adam", loss: str = "categorical_crossentropy",
                metrics: list[str] | None = None) -> None:
        """Choose the optimizer (name or instance), the loss and the metrics (``["accuracy"]``)."""
        if loss not in LOSSES:
            raise ValueError(f"compile: loss must be one of {LOSSES}; got {loss!r}")
        metrics = list(metrics or [])
        unknown = [m for m in metrics if m not in ("accuracy", "acc")]
        if unknown:
            raise ValueError(f"compile: the only metric is 'accuracy'; got {unknown}")
        if not self.layers or getattr(self.layers[-1], "activation", None) != "softmax":
            last = repr(self.layers[-1]) if self.layers else "no layers"
            raise ValueError(
                f"compile: {loss} needs a last layer that ends in a softmax "
                f"(e.g. Dense(10, activation='softmax')); got {last}"
            )
        self.optimizer = optimizers.get(optimizer)
        self.loss = loss
        self.metrics = ["accuracy" for _ in metrics]

    def train_on_batch(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """One optimizer step on one batch; returns ``(loss, accuracy)`` on it."""
        self._require_compiled("train_on_batch")
        x, y = self._check_data(x, y, "train_on_batch")
        return self._train_step(x, y)

    def _train_step(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        loss, z, _ = self.compute_loss_and_gradients(x, y, input_gradient=False)
        self.optimizer.apply_gradients(self.parameters_and_gradients())
        return loss, _accuracy(z, y)

    def fit(self, x: np.ndarray, y: np.ndarray, batch_size: int = 32, epochs: int = 1,
            verbose: int = 1, validation_data: tuple | None = None,
            validation_split: float = 0.0, shuffle: bool = True,
            seed: int | None = None) -> History:
        """Train for ``epochs`` passes over ``(x, y)`` in mini-batches.

        x: (N, *input_shape) float; y: one-hot (N, K) or integer labels (N,).
        The samples are reshuffled at the start of every epoch (a permutation,
        not sampling with replacement) by a generator seeded with ``seed``.
        ``validation_split`` holds out the *last* fraction of the data before
        shuffling, as Keras does. ``verbose``: 0 silent, 1 a progress bar and a
        summary line per epoch, 2 the summary line only.
        """
        self._require_compiled("fit")
        x, y = self._check_data(x, y, "fit")
        _check_positive_int(batch_size, "fit: batch_size")
        _check_positive_int(epochs, "fit: epochs")
        if validation_data is not None and validation_split:
            raise ValueError("fit: pass validation_data or validation_split, not both")
        if validation_split:
            if not 0.0 < validation_split < 1.0:
                raise ValueError(f"fit: validation_split must be in (0, 1); got {validation_split!r}")
            cut = int(len(x) * (1.0 - validation_split))
            x, y, validation_data = x[:cut], y[:cut], (x[cut:], y[cut:])
        if validation_data is not None:
            validation_data = self._check_data(*validation_data, "fit: validation_data")
        rng = make_rng(seed)
        history = History(epochs, batch_size)
        for epoch in range(epochs):
            start = time.perf_counter()
            order = rng.permutation(len(x)) if shuffle else np.arange(len(x))
            logs = self._train_epoch(x, y, order, batch_size, f"Epoch {epoch + 1}/{epochs}", verbose)
            if validation_data is not None:
                val = self._evaluate_arrays(*validation_data, batch_size)
                logs.update(val_loss=val[0], val_accuracy=val[1])
            history.append(epoch, logs)
            if verbose:
                _print_epoch(epoch, epochs, time.perf_counter() - start, logs)
        return history

    def _train_epoch(self, x, y, order, batch_size, desc, verbose) -> dict[str, float]:
        from tqdm.auto import tqdm

        total_loss = total_correct = seen = 0.0
        batches = range(0, len(order), batch_size)
        with tqdm(batches, desc=desc, unit="batch", leave=False, disable=verbose != 1) as bar:
            for begin in bar:
                idx = order[begin:begin + batch_size]
                loss, acc = self._train_step(x[idx], y[idx])
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
        _check_positive_int(batch_size, "evaluate: batch_size")
        loss, acc = self._evaluate_arrays(x, y, batch_size, verbose)
        return [loss, acc] if self.metrics else loss

    def _evaluate_arrays(self, x, y, batch_size, verbose=0) -> tuple[float, float]:
        total_loss = total_correct = 0.0
        for begin, z in self._batched(x, batch_size, verbose, self.logits):
            yb = y[begin:begin + len(z)]
            total_loss += softmax_cross_entropy(z, yb)[0] * len(z)
            total_correct += _accuracy(z, yb) * len(z)
        return total_loss / len(x), total_correct / len(x)

    def predict(self, x: np.ndarray, batch_size: int = 32, verbose: int = 0) -> np.ndarray:
        """The model's outputs (softmax probabilities), computed in batches: shape (N, K)."""
        x = self._check_x(x, "predict")
        _check_positive_int(batch_size, "predict: batch_size")
        return np.concatenate([p for _, p in self._batched(x, batch_size, verbose, self)])

    @staticmethod
    def _batched(x, batch_size, verbose, fn) -> Iterator[tuple[int, np.ndarray]]:
        """``(begin, fn(x[begin:begin + batch_size]))`` for each batch, dropout off."""
        from tqdm.auto import tqdm

        for begin in tqdm(range(0, len(x), batch_size), unit="batch", leave=False,
                          disable=verbose != 1):
            yield begin, fn(x[begin:begin + batch_size], training=False)

    # ------------------------------------------------------------------ saving

    def get_config(self) -> dict:
        return {"name": self.name, "input_shape": self.input_shape,
                "layers": [{"class_name": type(layer).__name__, "config": layer.get_config()}
                           for layer in self.layers]}

    def save(self, path: str | os.PathLike) -> None:
        """Write architecture and weights to one ``.npz`` file, atomically.

        The file is first written next to ``path`` under a temporary name and
        then renamed, so an interrupted save never leaves a half-written file.
        The optimizer state is not saved: compile the loaded model to train on.
        """
        self._require_built("save")
        arrays = {f"{layer.name}/{key}": value
                  for layer in self.layers for key, value in layer.params.items()}
        arrays["__config__"] = np.array(json.dumps(self.get_config()))
        atomic_write(path, lambda f: np.savez(f, **arrays))

    # ------------------------------------------------------------------ checks

    def _require_built(self, verb: str) -> None:
        if not self.built:
            raise ValueError(f"{verb}: the model is not built yet; start it with an Input layer "
                             "or call build((None, *input_shape))")

    def _require_compiled(self, verb: str) -> None:
        if self.optimizer is None:
            raise RuntimeError(f"{verb}: call compile(optimizer=..., loss=...) first")

    def _check_x(self, x, verb: str) -> np.ndarray:
        x = np.asarray(x)
        if not self.built:
            self.build((None, *x.shape[1:]))
        if x.ndim == 0 or x.shape[1:] != self.input_shape:
            raise ValueError(f"{verb}: expected x of shape {(None, *self.input_shape)}; got {x.shape}")
        if not np.issubdtype(x.dtype, np.floating):
            raise TypeError(f"{verb}: expected floating-point x; got {x.dtype}. Scale images "
                            "to [0, 1] first, e.g. x.astype('float32') / 255")
        if len(x) == 0:
            raise ValueError(f"{verb}: x is empty")
        if not np.isfinite(x).all():
            raise ValueError(f"{verb}: x contains NaN or Inf")
        return x.astype(self.dtype, copy=False)

    def _check_data(self, x, y, verb: str) -> tuple[np.ndarray, np.ndarray]:
        x = self._check_x(x, verb)
        num_classes = self.output_shape[-1]
        y = np.asarray(y)
        if len(y) != len(x):
            raise ValueError(f"{verb}: x has {len(x)} samples but y has {len(y)}")
        if y.ndim == 1:
            return x, to_categorical(y, num_classes, dtype=self.dtype)
        if y.shape[1:] != (num_classes,):
            raise ValueError(f"{verb}: expected y one-hot of shape (N, {num_classes}) or integer "
                             f"labels of shape (N,); got {y.shape}")
        if not (np.isin(y, (0, 1)).all() and (y.sum(axis=1) == 1).all()):
            raise ValueError(f"{verb}: one-hot y must have exactly one 1 per row and 0 elsewhere")
        return x, y.astype(self.dtype, copy=False)


def load_model(path: str | os.PathLike) -> Sequential:
    """Rebuild a model saved by :meth:`Sequential.save`, with every weight and bias restored."""
    with np.load(path, allow_pickle=False) as data:
        config = json.loads(str(data["__config__"]))
        model = Sequential(name=config["name"])
        for spec in config["layers"]:
            model.add(LAYER_CLASSES[spec["class_name"]](**spec["config"]))
        if config["input_shape"] is not None:
            model.build((None, *config["input_shape"]))
        for layer in model.layers:
            for key, expected in layer.params.items():
                stored = data[f"{layer.name}/{key}"]
                if stored.shape != expected.shape:
                    raise ValueError(f"load_model: {layer.name}/{key} in {path} has shape "
                                     f"{stored.shape}; the architecture needs {expected.shape}")
                layer.params[key] = stored.astype(expected.dtype)
    return model


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


def _check_positive_int(value, what: str) -> None:
    if not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{what} must be a positive int; got {value!r}")


def _print_epoch(epoch: int, epochs: int, seconds: float, logs: dict[str, float]) -> None:
    from tqdm.auto import tqdm

    metrics = " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())
    tqdm.write(f"Epoch {epoch + 1}/{epochs} - {seconds:.1f}s - {metrics}")
