"""What ``fit`` trains on, as epochs of checked batches; and the checks of every verb's data.

``fit`` takes arrays ``(x, y)`` or an iterator of batches; :func:`get_data_adapter` turns
either into a data adapter, whose ``epoch(e)`` gives epoch ``e``'s batches
``(x, y, sample_weight)``: x ``(B, *input_shape)``, y one-hot (B, K) as the loss computes with,
sample_weight (B,) or None. Arrays are shuffled into a new permutation every epoch
(:class:`ArrayDataAdapter`); an iterator is read as it comes (:class:`GeneratorDataAdapter`).

:func:`check_x` and :func:`check_data` are the checks of the input that every verb (``fit``,
``evaluate``, ``predict``, ``train_on_batch``) runs; :func:`per_sample_weights` turns
``sample_weight`` or ``class_weight`` into the weights of the loss, one per sample.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import numpy as np

from minicnn.layers.base import channels_first_hint
from minicnn.seeding import make_rng

if TYPE_CHECKING:
    from minicnn.models import Sequential

Batch = tuple[np.ndarray, np.ndarray, "np.ndarray | None"]
"""``(x, y, sample_weight)``: inputs ``(B, *input_shape)``, one-hot targets (B, K), weights (B,) or None."""


class DataAdapter:
    """The data of one ``fit``: :meth:`epoch` gives each epoch's batches."""

    steps: int | None
    """Batches per epoch, or None: as many as the source has."""
    validation_data: tuple[np.ndarray, np.ndarray] | None = None
    """``(x_val, y_val)`` held out of the training data (by ``validation_split``), or None."""

    def epoch(self, epoch: int) -> Iterator[Batch]:
        """The batches of epoch ``epoch`` (counted from 0)."""
        raise NotImplementedError


class ArrayDataAdapter(DataAdapter):
    """Arrays ``(x, y)`` as epochs of batches of ``batch_size`` (the last one may be smaller).

    ``validation_split`` holds out the *last* fraction of the samples, before any shuffling,
    as Keras does (:attr:`validation_data`). Epoch ``e`` uses the ``e``-th permutation drawn
    from ``default_rng(seed)``, so a run resumed at ``initial_epoch`` sees the same batches as
    one that never stopped; ``steps_per_epoch`` keeps each epoch's first that many batches.
    """

    def __init__(self, model: Sequential, x, y, batch_size: int, shuffle: bool, class_weight,
                 sample_weight, validation_split: float, steps_per_epoch: int | None, seed: int | None):
        x, y = check_data(model, x, y, "fit")
        weights = per_sample_weights(y, sample_weight, class_weight, model.dtype, "fit")
        if validation_split:
            x, y, self.validation_data = split_off_validation(x, y, validation_split)
            weights = None if weights is None else weights[:len(x)]
        total = -(-len(x) // batch_size)
        if steps_per_epoch is not None and steps_per_epoch > total:
            raise ValueError(f"fit: steps_per_epoch={steps_per_epoch} is more than the {total} batches of "
                             f"{batch_size} that {len(x)} samples make")
        self.steps = steps_per_epoch or total
        self.x, self.y, self.weights = x, y, weights
        self.batch_size, self.shuffle = batch_size, shuffle
        self.rng = make_rng(seed)

    def epoch(self, epoch: int) -> Iterator[Batch]:
        """The batches of epoch ``epoch``. The order is drawn on the call, so an epoch skipped
        for ``initial_epoch`` still uses up its permutation."""
        n, size = len(self.x), self.batch_size
        order = self.rng.permutation(n) if self.shuffle else np.arange(n)
        indices = [order[begin:begin + size] for begin in range(0, self.steps * size, size)]
        return ((self.x[i], self.y[i], None if self.weights is None else self.weights[i]) for i in indices)


class GeneratorDataAdapter(DataAdapter):
    """An iterator (or generator) of batches ``(x, y)`` or ``(x, y, sample_weight)``, read as it comes.

    Each epoch takes ``steps_per_epoch`` batches from it (all it has, if None), each checked as
    the arrays are. When it runs out, training stops (``model.stop_training``) with a warning.
    """

    def __init__(self, model: Sequential, source: Iterable, steps_per_epoch: int | None, class_weight):
        self.model = model
        self.iterator = iter(source)
        self.steps = steps_per_epoch
        self.class_weight = class_weight

    def epoch(self, epoch: int) -> Iterator[Batch]:
        """The (checked) batches of epoch ``epoch``, taken from the iterator as training asks for them."""
        count = 0
        while self.steps is None or count < self.steps:
            try:
                item = next(self.iterator)
            except StopIteration:
                if self.steps is not None or count == 0:
                    # stacklevel: this generator, tqdm's iteration over it, the epoch, the loop over epochs
                    warnings.warn(f"fit: the input ran out of batches after {count} in epoch {epoch + 1}"
                                  + (f" (steps_per_epoch={self.steps})" if self.steps else "")
                                  + "; training stops. Make the generator loop forever, or lower "
                                  "steps_per_epoch or epochs.", stacklevel=4)
                    self.model.stop_training = True
                return
            if not isinstance(item, tuple) or len(item) not in (2, 3):
                raise ValueError(f"fit: each batch from the iterator must be a tuple (x, y) or "
                                 f"(x, y, sample_weight); got {type(item).__name__}")
            xb, yb = check_data(self.model, item[0], item[1], f"fit: batch {count} of epoch {epoch + 1}")
            weights = per_sample_weights(yb, item[2] if len(item) == 3 else None, self.class_weight,
                                         self.model.dtype, "fit")
            count += 1
            yield xb, yb, weights


def get_data_adapter(model: Sequential, x, y, *, batch_size: int, shuffle: bool, class_weight,
                     sample_weight, validation_split: float, validation_data, steps_per_epoch: int | None,
                     seed: int | None) -> tuple[DataAdapter, tuple[np.ndarray, np.ndarray] | None]:
    """The data adapter for ``fit``'s ``x`` and ``y``, and the data to validate on: ``fit``'s
    ``validation_data`` checked, or the part ``validation_split`` held out, or None.

    The checks run in this order: an iterator's arguments, ``validation_data``, the arrays
    (the first data checked builds a model that has no input shape yet).
    """
    if is_batch_source(x):
        if y is not None or sample_weight is not None or validation_split:
            raise ValueError("fit: when x is an iterator of batches it yields the labels (and sample "
                             "weights) too; pass y=None, no sample_weight and no validation_split")
        adapter = GeneratorDataAdapter(model, x, steps_per_epoch, class_weight)
    elif y is None:
        raise ValueError("fit: y is missing; pass labels with array inputs (or an iterator of (x, y) "
                         "batches as x)")
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise ValueError("fit: validation_data must be a pair (x_val, y_val)")
        validation_data = check_data(model, *validation_data, "fit: validation_data")
    if not is_batch_source(x):
        adapter = ArrayDataAdapter(model, x, y, batch_size, shuffle, class_weight, sample_weight,
                                   validation_split, steps_per_epoch, seed)
    return adapter, adapter.validation_data or validation_data


def is_batch_source(x) -> bool:
    """True for an iterator or generator of batches (or another non-array iterable), as ``fit`` takes."""
    return (x is not None and not isinstance(x, (np.ndarray, list, tuple))
            and (hasattr(x, "__next__") or hasattr(x, "__iter__")))


def split_off_validation(x: np.ndarray, y: np.ndarray, fraction) -> tuple:
    """``x, y`` without their last ``fraction``, and that last part as ``(x_val, y_val)``, as Keras splits."""
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0.0 < fraction < 1.0:
        raise ValueError(f"fit: validation_split must be a fraction in (0, 1); got {fraction!r}")
    cut = int(len(x) * (1.0 - fraction))
    if cut == 0 or cut == len(x):
        raise ValueError(f"fit: validation_split={fraction} of {len(x)} samples leaves "
                         f"{cut} for training and {len(x) - cut} for validation; both need at least one")
    return x[:cut], y[:cut], (x[cut:], y[cut:])


# ------------------------------------------------------------------ checks of every verb's data

def check_x(model: Sequential, x, verb: str) -> np.ndarray:
    """``x`` as an array of the model's dtype, checked: shape ``(N, *input_shape)``, N > 0, floating
    point, finite. A model not built yet is built for it. ``verb`` starts the messages."""
    x = np.asarray(x)
    if not model.built:
        model.build((None, *x.shape[1:]))
    if x.ndim == 0 or x.shape[1:] != model.input_shape:
        raise ValueError(f"{verb}: expected x of shape {(None, *model.input_shape)}; got {x.shape}."
                         f"{channels_first_hint(x.shape, model.input_shape)}")
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"{verb}: expected floating-point x; got {x.dtype}. Scale images "
                        "to [0, 1] first, e.g. x.astype('float32') / 255")
    if len(x) == 0:
        raise ValueError(f"{verb}: x is empty")
    if not np.isfinite(x).all():
        raise ValueError(f"{verb}: x contains NaN or Inf")
    return x.astype(model.dtype, copy=False)


def check_data(model: Sequential, x, y, verb: str) -> tuple[np.ndarray, np.ndarray]:
    """``x`` checked (:func:`check_x`), and ``y`` as the one-hot targets (N, K) the loss computes with."""
    x = check_x(model, x, verb)
    y = np.asarray(y)
    if y.ndim == 0 or len(y) != len(x):
        raise ValueError(f"{verb}: x has {len(x)} samples but y has {len(y) if y.ndim else 'none'}")
    return x, model.loss.targets(y, model.output_shape[-1], model.dtype, verb)


def per_sample_weights(targets: np.ndarray, sample_weight, class_weight, dtype, verb: str
                       ) -> np.ndarray | None:
    """Per-sample loss weights (N,) of ``dtype`` from ``sample_weight`` or ``class_weight``
    ({class index: weight}, 1 for classes not listed), checked; or None for neither.
    ``targets``: the one-hot targets (N, K)."""
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
    what = "class_weight" if class_weight is not None else "sample_weight"
    if not (np.isfinite(weights).all() and (weights >= 0).all()):
        raise ValueError(f"{verb}: {what} must be finite and >= 0; got {_first_bad(weights, weights)}")
    with np.errstate(over="ignore"):
        cast = weights.astype(dtype)
    if not np.isfinite(cast).all():  # finite as given, but too large for the model's dtype
        raise ValueError(f"{verb}: {what} must be finite as {np.dtype(dtype)} (the model computes in it, up "
                         f"to {np.finfo(dtype).max:.3g}); got {_first_bad(cast, weights)}")
    return cast


def _first_bad(checked: np.ndarray, given: np.ndarray) -> str:
    """``given``'s first value where ``checked`` is not finite or negative, with its index."""
    index = int(np.flatnonzero(~(np.isfinite(checked) & (checked >= 0)))[0])
    return f"{given[index].item()!r} for sample {index}"
