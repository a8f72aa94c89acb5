"""The layer contract, in one base class (``docs/backprop.md#the-layer-contract``).

A layer writes its maths as two hooks, in the tone of CS231n's ``relu_forward`` /
``relu_backward``, and :class:`Step` (the base of :class:`Layer`) keeps the contract around them:

- ``forward_pass(x, training) -> (out, cache)``: the output, and what the backward pass
  needs (a dict; ``training`` for layers that differ in training, such as Dropout).
- ``backward_pass(dout, cache) -> (dx, grads)``: from ``dout = dL/dout`` and that cache,
  a *new* array ``dx = dL/dx`` (``dout`` is never modified) and the gradients, a dict under
  the same keys as ``params``. It never changes the parameters: that is the optimizer's job.

The public ``forward(x, training=False)`` and ``backward(dout)`` call them and do the rest:

- ``forward`` checks ``x`` (a NumPy array, of the built shape, floating-point, in the
  layer's dtype once it has parameters), builds the layer on first use, and keeps the
  cache in ``layer.cache`` only with ``training=True``;
- ``backward`` checks that a training forward came first and that ``dout`` has the
  output's shape, and stores the gradients in ``layer.grads`` after checking their names
  and shapes against ``params``.

Every error names the layer (:meth:`Step.label`). So ReLU, written from scratch, is::

    class MyReLU(Layer):
        def forward_pass(self, x, training):
            a = np.maximum(x, 0)
            return a, {"a": a}

        def backward_pass(self, dout, cache):
            return dout * (cache["a"] > 0), {}      # no parameters: no gradients

A layer with parameters also creates them in ``build`` (``kernel`` and ``bias``, Keras'
names) and names its Keras twin (``to_keras`` / ``from_keras``). Conv2D and Dense write
only their affine part, ``z = x @ W + b``, and :mod:`minicnn.layers.activated` adds the activation.

- ``params`` are the trainable arrays; ``state`` the arrays that are saved with the model
  but never trained (moving statistics, say). ``trainable = False`` keeps the optimizer off
  ``params``; their gradients are still computed, so gradient checks still see them.
- float32 unless converted with :meth:`Layer.astype` (gradient checks use float64).
- A parameter ``key`` is penalised by the layer's ``<key>_regularizer`` attribute, if it has
  one (Keras' names: Conv2D's and Dense's ``kernel_regularizer``, ``bias_regularizer``):
  :meth:`Layer.regularizers`. The penalty is a term of the model's loss, not of the layer's
  function, so ``backward`` leaves it out of ``grads``; the model adds it
  (``docs/backprop.md#l2-regularisation``).

A *step* is what a model runs forward and backward: a layer, or a fused run of layers
(:mod:`minicnn.fused`), which keeps the same contract with its layers' parameters.

A layer class that a saved model or :mod:`minicnn.keras_compat` may name is registered
explicitly, with ``@LAYERS.register()`` (:mod:`minicnn.registry`), and says where
``docs/backprop.md`` derives it in ``docs_section``.
Images are NHWC, like Keras: arrays of shape ``(N, H, W, C)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from minicnn.validation import check_int

if TYPE_CHECKING:
    from minicnn.regularizers import Regularizer


class Step:
    """What a model runs forward and backward: a layer, or a fused run of layers.

    The contract of the module docstring: :meth:`forward` and :meth:`backward` check,
    keep the cache and store the gradients; a subclass writes :meth:`forward_pass` and
    :meth:`backward_pass`, its parameters ``params``, and how errors name it, :meth:`label`.
    """

    name: str | None
    params: dict[str, np.ndarray]
    grads: dict[str, np.ndarray]
    cache: Mapping[str, Any] | None = None
    """What ``backward`` needs, kept by ``forward(x, training=True)``."""

    @property
    def layers(self) -> list[Layer]:
        """The layers this step computes, in order: a layer is the one layer of its own step."""
        return [self]

    def label(self) -> str:
        """How errors name this step."""
        raise NotImplementedError

    # ------------------------------------------------------------------ the contract

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """The output for the batch ``x``: :meth:`forward_pass`, inside the contract."""
        return self._checked_forward(self.forward_pass, x, training)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """``dx`` for the gradient ``dout`` of the last training forward's output: :meth:`backward_pass`,
        inside the contract; fills ``grads``."""
        return self._checked_backward(self.backward_pass, dout)

    def _checked_forward(self, forward_hook, x: np.ndarray, training: bool) -> np.ndarray:
        self.check_input(x)
        out, cache = hook_result(self, forward_hook, forward_hook(x, training), "(out, cache)")
        if training:
            self.remember(out.shape, cache)
        return out

    def _checked_backward(self, backward_hook, dout: np.ndarray) -> np.ndarray:
        self.check_grad(dout)
        dx, grads = hook_result(self, backward_hook, backward_hook(dout, self.cache), "(dx, grads)")
        self.set_grads(grads)
        return dx

    def forward_pass(self, x: np.ndarray, training: bool) -> tuple[np.ndarray, Mapping[str, Any] | None]:
        """The maths of the forward pass: ``(out, cache)``, the output and what backward needs."""
        raise NotImplementedError(f"{self.label()} has no forward pass")

    def backward_pass(self, dout: np.ndarray, cache: Mapping[str, Any]) -> tuple[np.ndarray, dict]:
        """The maths of the backward pass: ``(dx, grads)``, with ``grads`` under the keys of ``params``."""
        raise NotImplementedError(f"{self.label()} has no backward pass")

    # ------------------------------------------------------------------ the checks (fused steps use them too)

    def check_input(self, x: np.ndarray) -> None:
        """Insist on an input this step can compute on (building it on first use)."""
        raise NotImplementedError

    def remember(self, batch_output_shape: tuple, cache: Mapping[str, Any]) -> None:
        """Keep ``cache`` for ``backward``, which will expect a gradient of ``batch_output_shape``."""
        self._cache_batch_shape = tuple(batch_output_shape)
        self.cache = cache

    def check_grad(self, dout: np.ndarray) -> None:
        """Insist on a preceding training forward and an output gradient of the output's shape."""
        if self.cache is None:
            raise RuntimeError(f"{self.label()}: backward() needs a preceding forward(x, training=True)")
        if not isinstance(dout, np.ndarray) or dout.shape != self._cache_batch_shape:
            got = dout.shape if isinstance(dout, np.ndarray) else type(dout).__name__
            raise ValueError(f"{self.label()}: expected an output gradient of shape "
                             f"{self._cache_batch_shape}; got {got}")

    def set_grads(self, grads: dict[str, np.ndarray]) -> None:
        """Store the gradient of every parameter in ``grads``, after :meth:`check_grads`."""
        self.check_grads(grads)
        self.grads = grads

    def check_grads(self, grads: dict[str, np.ndarray]) -> None:
        """Insist on a dict with a gradient for every parameter, of the parameter's shape, and no other."""
        params = self.params
        if not isinstance(grads, dict) or grads.keys() != params.keys():
            got = sorted(grads) if isinstance(grads, dict) else type(grads).__name__
            raise ValueError(f"{self.label()}: gradients must be given for exactly {sorted(params)} "
                             f"(a dict under the keys of params); got {got}")
        for key, grad in grads.items():
            expected = params[key].shape
            if not isinstance(grad, np.ndarray) or grad.shape != expected:
                got = grad.shape if isinstance(grad, np.ndarray) else type(grad).__name__
                raise ValueError(f"{self.label()}: the gradient of {key!r} must have the shape {expected} "
                                 f"of the parameter; got {got}")


def hook_result(step: Step, hook, result, pair: str) -> tuple:
    """``result``, what ``hook`` returned, if it is a pair (``pair`` says which); else a TypeError naming the
    step and the hook. Without the check a forgotten ``, {}`` would unpack the rows of a batch of two."""
    if type(result) is not tuple or len(result) != 2:
        raise TypeError(f"{step.label()}: {hook.__name__} must return a pair {pair}; "
                        f"got {type(result).__name__}")
    return result


class Layer(Step):
    """Base class: shape bookkeeping, input checks, parameters, state and config."""

    docs_section: ClassVar[str]
    """The anchor of the section of ``docs/backprop.md`` that derives this layer (``"dense"``)."""

    default_name: ClassVar[str] = "layer"
    """The name Keras gives the first layer of this kind in a model (``conv2d``, then ``conv2d_1``, ...)."""

    keras_requires: ClassVar[dict[str, Any]] = {}
    """Keras options that change what the layer computes, with the only value minicnn implements."""

    def __init__(self, name: str | None = None, trainable: bool = True, input_shape: tuple | None = None):
        if name is not None and (not isinstance(name, str) or not name or "/" in name):
            raise ValueError(f"{type(self).__name__}: name must be a non-empty string without '/'; "
                             f"got {name!r}")
        self.name = name
        self.trainable = bool(trainable)
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.state: dict[str, np.ndarray] = {}
        self.dtype = np.dtype(np.float32)
        self.input_shape: tuple | None = None
        self.output_shape: tuple | None = None
        self.cache: Mapping[str, Any] | None = None  # what backward needs, kept by forward(x, training=True)
        self._cache_batch_shape: tuple | None = None
        self.declared_input_shape = None if input_shape is None else _shape(input_shape, self)
        """``input_shape=`` as Keras 2 takes it on a model's first layer (no batch axis)."""

    @property
    def built(self) -> bool:
        return self.input_shape is not None

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "name")
        return f"{type(self).__name__}({args})"

    def label(self) -> str:
        """How errors name this layer: ``layer "conv2d" (Conv2D)``."""
        return f'layer "{self.name or self.default_name}" ({type(self).__name__})'

    # ------------------------------------------------------------------ building

    def build(self, input_shape: tuple) -> None:
        """Fix the per-sample input shape (no batch axis) and create the parameters."""
        self.input_shape = tuple(int(d) for d in input_shape)
        self.output_shape = self.compute_output_shape(self.input_shape)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def count_weights(self, input_shape: tuple) -> int:
        """How many values ``build(input_shape)`` creates in ``params`` and ``state``, without creating them.

        :func:`minicnn.load_model` checks a file's architecture against its memory limit this
        way before it builds anything. Layers with weights override it; a layer of one's own
        that does not is counted as having none.
        """
        return 0

    def get_config(self) -> dict:
        config: dict[str, Any] = {"name": self.name}
        if not self.trainable:
            config["trainable"] = False
        return config

    def count_params(self) -> int:
        """The number of values in ``params`` and ``state``, as Keras counts a layer's weights."""
        return int(sum(w.size for w in self.weights))

    @property
    def weights(self) -> list[np.ndarray]:
        """The layer's arrays themselves, in Keras' order: ``params``, then ``state``."""
        return [*self.params.values(), *self.state.values()]

    def get_weights(self) -> list[np.ndarray]:
        """Copies of :attr:`weights`."""
        return [w.copy() for w in self.weights]

    def set_weights(self, weights: list[np.ndarray]) -> None:
        """Set ``params`` then ``state`` from arrays in the order of :attr:`weights`, checking shapes."""
        slots = [(self.params, key) for key in self.params] + [(self.state, key) for key in self.state]
        if len(weights) != len(slots):
            raise ValueError(f"set_weights: {self.label()} has {len(slots)} weight arrays "
                             f"({', '.join(key for _, key in slots) or 'none'}); got {len(weights)}")
        values = [np.asarray(w) for w in weights]
        for (store, key), value in zip(slots, values, strict=True):
            if value.shape != store[key].shape:
                raise ValueError(f"set_weights: {self.name}/{key} has shape {store[key].shape}; "
                                 f"got {value.shape}")
        for (store, key), value in zip(slots, values, strict=True):
            store[key] = value.astype(self.dtype)

    def astype(self, dtype) -> Layer:
        """Convert the parameters and state (and so the computation) to ``dtype``, in place."""
        self.dtype = np.dtype(dtype)
        self.params = {key: value.astype(self.dtype) for key, value in self.params.items()}
        self.state = {key: value.astype(self.dtype) for key, value in self.state.items()}
        self.grads = {}
        return self

    # ------------------------------------------------------------------ weight penalties

    def regularizers(self) -> dict[str, Regularizer]:
        """The weight penalty of each parameter that has one, under its key in ``params``: the
        layer's ``<key>_regularizer`` attribute (``kernel_regularizer``), where it is not None."""
        return {key: getattr(self, f"{key}_regularizer") for key in self.params
                if getattr(self, f"{key}_regularizer", None) is not None}

    def regularization_loss(self) -> float:
        """The sum of the layer's weight penalties at its current parameters (0.0 without any)."""
        return float(sum(penalty(self.params[key]) for key, penalty in self.regularizers().items()))

    def regularization_gradients(self) -> dict[str, np.ndarray]:
        """The gradient of :meth:`regularization_loss` for each penalised parameter, under its key."""
        return {key: penalty.gradient(self.params[key]) for key, penalty in self.regularizers().items()}

    # ------------------------------------------------------------------ the input check

    def check_input(self, x: np.ndarray) -> None:
        """Build on first use; then insist on the built shape and a floating dtype."""
        if not isinstance(x, np.ndarray):
            raise TypeError(f"{self.label()}: expected a NumPy array; got {type(x).__name__}")
        if not self.built:
            self.build(x.shape[1:])
        if x.shape[1:] != self.input_shape:
            raise ValueError(f"{self.label()}: expected input of shape {(None, *self.input_shape)}; "
                             f"got {x.shape}.{channels_first_hint(x.shape, self.input_shape)}")
        if not np.issubdtype(x.dtype, np.floating):
            raise TypeError(f"{self.label()}: expected a floating-point input; got {x.dtype}")
        if self.params and x.dtype != self.dtype:
            raise TypeError(
                f"{self.label()}: computes in {self.dtype}; got a {x.dtype} input. "
                f"Cast the input with x.astype(np.{self.dtype}) or the layer with .astype()."
            )

    # ------------------------------------------------------------------ Keras

    def to_keras(self, keras_layers):
        """The Keras layer (from the module ``keras_layers``) that computes the same function."""
        raise TypeError(f"to_keras: no Keras equivalent known for {type(self).__name__}")

    @classmethod
    def from_keras(cls, config: dict, activation: str | None) -> Layer:
        """The layer for a Keras layer's ``get_config()``; ``activation`` as minicnn names it."""
        return cls(name=config["name"])


def _shape(value, layer: Layer) -> tuple[int, ...]:
    """``input_shape`` as a tuple of positive ints; ValueError naming the layer otherwise."""
    try:
        shape = tuple(int(d) for d in value)
    except (TypeError, ValueError):
        shape = ()
    if not shape or any(d < 1 for d in shape):
        raise ValueError(f"{type(layer).__name__}: input_shape must be positive sizes without the batch "
                         f"axis, e.g. (32, 32, 3); got {value!r}")
    return shape


def channels_first_hint(got: tuple, expected: tuple) -> str:
    """A hint when ``got`` (with batch axis) is ``expected`` (without) in channels-first order, else ''."""
    if len(got) == 4 and len(expected) == 3 and tuple(got[1:]) == (expected[2], *expected[:2]):
        return (" It looks channels-first (N, C, H, W); minicnn is channels-last (N, H, W, C), "
                "Keras' default: use x.transpose(0, 2, 3, 1).")
    return ""


def as_pair(value, what: str, layer: str) -> tuple[int, int]:
    """``value`` (an int or a pair of ints, each >= 1) as a pair; ValueError naming ``layer`` otherwise."""
    pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1
                                 for v in pair):
        raise ValueError(f"{layer}: {what} must be a positive int or a pair of them; got {value!r}")
    return int(pair[0]), int(pair[1])


def as_square(value, what: str, layer: str) -> int:
    """Like :func:`as_pair`, for settings minicnn supports only equal on both axes."""
    a, b = as_pair(value, what, layer)
    if a != b:
        raise ValueError(f"{layer}: minicnn supports equal {what} on both axes; got {value!r}")
    return a


def check_positive_int(value, what: str, layer: str) -> int:
    """``value`` as an int if it is an integer >= 1; ValueError naming ``layer`` and ``what`` otherwise."""
    return check_int(value, f"{layer}: {what}", minimum=1)
