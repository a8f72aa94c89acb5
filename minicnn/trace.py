"""A view of one training step, layer by layer: what flows forward, what flows back, what changes.

``trace_step(model, x, y)`` runs one training step on a copy of the model (the model and
its optimizer are left untouched) and returns a :class:`StepTrace`:

- forward, per step: the output's shape, dtype, mean, std and fraction of zeros, the bytes
  its cache keeps for the backward pass, and whether the step ran fused (the fast
  implementation's Conv2D -> MaxPool2D -> Dropout block, :mod:`minicnn.fused`);
  When the loss fuses the model's final softmax, the last step's row is its logits ``z``
  (before the softmax), and says so;
- the loss (with the weight penalties, if any layer has a ``kernel_regularizer``), next to
  ``ln K``, the loss of uniform guesses over K classes;
- backward, per step: the same statistics for the gradient with respect to its output;
- per parameter: ``||W||``, ``||dW|| / ||W||`` and ``||ΔW|| / ||W||``, the update a copy of
  the optimizer makes, relative to the weights (about 1e-3 is the usual rule of thumb); for a
  parameter that is all zeros (biases at initialisation) the ratios are undefined, and the
  absolute ``||dW||`` and ``||ΔW||`` are printed instead;
- training-health warnings built on these: dead ReLUs, exploding or vanishing gradients,
  steps that are too large or too small, and, for a model whose optimizer has taken no step
  yet, a loss far from ln K (where an untrained model starts).

``print(trace_step(model, x[:2], y[:2], values=True))`` prints every number as well: for a
tiny input, the whole step by hand. See ``docs/backprop.md#the-training-step``.
"""

from __future__ import annotations

import copy
import math
import warnings
from dataclasses import dataclass, field

import numpy as np

from minicnn import implementation, optimizers
from minicnn.layers.base import Step
from minicnn.losses import CategoricalCrossentropy, SparseCategoricalCrossentropy
from minicnn.models import Sequential
from minicnn.trainers.data_adapters import check_x

DEAD_FRACTION = 0.5
"""Warn when more than this fraction of a ReLU layer's units output 0 for the whole batch."""
GRADIENT_GROWTH = 1e3
"""Warn when the gradient's RMS grows or shrinks by more than this from the last step to the first."""
UPDATE_RATIO = (1e-6, 1e-1)
"""Warn when a step changes a kernel by less or more than these fractions of its norm."""
LOSS_FROM_LN_K = 0.5
"""Warn when the loss differs from ln K by more than this fraction of ln K."""
MAX_VALUES = 20_000
"""``values=True`` refuses inputs whose step would print more numbers than this."""


@dataclass
class Stats:
    """Summary of one array: shape, dtype, mean, standard deviation and fraction of exact zeros."""

    shape: tuple
    dtype: str
    mean: float
    std: float
    zeros: float

    @classmethod
    def of(cls, a: np.ndarray) -> Stats:
        a = np.asarray(a)
        return cls(a.shape, str(a.dtype), float(a.mean()), float(a.std()), float(np.mean(a == 0)))

    @property
    def norm(self) -> float:
        """The array's 2-norm, from its mean and std: ``sqrt((mean² + std²) · size)``."""
        return math.sqrt((self.mean**2 + self.std**2) * math.prod(self.shape))

    def __str__(self) -> str:
        return (f"{str(self.shape):<18} {self.dtype:<8} mean {self.mean:>10.3e}  std {self.std:>9.3e}  "
                f"zeros {self.zeros:>6.1%}")


@dataclass
class StepRecord:
    """One step of the model: a layer, or a fused block of layers."""

    name: str
    kind: str
    fused: bool
    output: Stats
    cache_bytes: int
    gradient: Stats | None = None
    """The gradient of the loss with respect to this step's output."""
    dead_units: tuple[int, int] | None = None
    """ReLU units that output 0 for the whole batch, and the number of units."""
    layer_names: tuple[str, ...] = ()
    """The names of the layers the step runs (one, or a fused block's)."""
    logits: bool = False
    """True for the last step when the loss fuses the final softmax: ``output`` is then the logits
    ``z``, before the softmax, and ``gradient`` is ``dL/dz``."""

    @property
    def label(self) -> str:
        """How the printed table names the step: its name, and what its row shows when that is not plain."""
        shows = " [logits z, before softmax]" if self.logits else ""
        return f"{self.name}{' [fused]' if self.fused else ''}{shows}"


@dataclass
class ParamRecord:
    """One parameter: its norm, its gradient's and its update's."""

    name: str
    shape: tuple
    norm: float
    grad_norm: float
    update_norm: float

    @property
    def grad_ratio(self) -> float | None:
        """``||dW|| / ||W||``; None for a parameter that is all zeros (no scale to compare with)."""
        return self.grad_norm / self.norm if self.norm > 0 else None

    @property
    def update_ratio(self) -> float | None:
        """``||ΔW|| / ||W||``; None for a parameter that is all zeros."""
        return self.update_norm / self.norm if self.norm > 0 else None

    def __str__(self) -> str:
        if self.norm > 0:
            return f"{self.norm:>10.3e} {self.grad_ratio:>11.3e} {self.update_ratio:>11.3e}"
        return (f"{'0 (zeros)':>10} {'n/a':>11} {'n/a':>11}   all zeros, so no ratio: "
                f"||dW|| {self.grad_norm:.3e}, ||update|| {self.update_norm:.3e}")


@dataclass
class StepTrace:
    """One training step, layer by layer; ``print`` it. Every field is plain data for notebooks."""

    implementation: str
    """``"fast"`` or ``"reference"``: which one ran the step."""
    input: Stats
    steps: list[StepRecord]
    loss: float
    classes: int
    input_gradient: Stats
    params: list[ParamRecord]
    optimizer: str
    optimizer_steps: int = 0
    """The steps the model's optimizer had taken before this one (0 without an optimizer): a model at
    step 0 is taken to be untrained."""
    penalty: float = 0.0
    """The weight penalties in ``loss`` (``kernel_regularizer``); 0.0 without any."""
    warnings: list[str] = field(default_factory=list)
    values: dict[str, np.ndarray] | None = None

    @property
    def path(self) -> str:
        """Deprecated: the old name of :attr:`implementation`."""
        warnings.warn("StepTrace.path is deprecated: use StepTrace.implementation",
                      DeprecationWarning, stacklevel=2)
        return self.implementation

    @property
    def ln_k(self) -> float:
        return math.log(self.classes)

    def __str__(self) -> str:
        w = max(len(s.label) for s in self.steps) + 2
        w = max(w, *(len(p.name) + 2 for p in self.params)) if self.params else w
        lines = [f"one training step, {self.implementation} implementation, optimizer {self.optimizer}",
                 "forward (output of each step; cache kept for backward)",
                 f"  {'input':<{w}} {self.input}"]
        for s in self.steps:
            lines.append(f"  {s.label:<{w}} {s.output}  cache {_bytes(s.cache_bytes):>9}")
        penalty = (f" (data {self.loss - self.penalty:.4f} + weight penalty {self.penalty:.4f})"
                   if self.penalty else "")
        shown = "logits" if self.steps[-1].logits else "output"
        lines.append(f"loss {self.loss:.4f}{penalty} on the {shown} of {self.steps[-1].name}   "
                     f"(ln K = ln {self.classes} = {self.ln_k:.4f}, uniform guessing)")
        lines.append("backward (gradient of the loss with respect to each step's output)")
        for s in reversed(self.steps):
            lines.append(f"  {s.label:<{w}} {s.gradient}")
        lines.append(f"  {'input':<{w}} {self.input_gradient}")
        lines.append("parameters: ||W||, ||dW|| / ||W||, ||update|| / ||W||")
        for p in self.params:
            lines.append(f"  {p.name:<{w}} {str(p.shape):<18} {p}")
        lines += [f"warning: {w}" for w in self.warnings] or ["no warnings"]
        if self.values is not None:
            lines.append("values")
            for name, array in self.values.items():
                lines.append(f"  {name} {array.shape}:")
                lines += [f"    {row}" for row in _format_values(array).splitlines()]
        return "\n".join(lines)


def trace_step(model: Sequential, x: np.ndarray, y: np.ndarray, values: bool = False) -> StepTrace:
    """Run one training step on a copy of ``model`` and trace it (see the module docstring).

    x: ``(N, *input_shape)`` float; y: one-hot (N, K) or integer labels (N,), whichever the model's
    loss expects (without a compiled loss: categorical cross-entropy, on either). The step runs
    in the model's implementation (its ``implementation`` setting, else the active one).
    ``values=True`` keeps every array (activations, gradients, parameters, updates) and prints
    them: for tiny inputs only.
    """
    model = copy.deepcopy(model)
    x = check_x(model, x, "trace_step")
    classes = model.output_shape[-1]
    loss_fn = model.loss or (SparseCategoricalCrossentropy if np.ndim(y) == 1 else CategoricalCrossentropy)(
        from_logits=not model.ends_in_softmax)
    y = loss_fn.targets(y, classes, model.dtype, "trace_step")
    if len(y) != len(x):
        raise ValueError(f"trace_step: x has {len(x)} samples but y has {len(y)}")
    optimizer = copy.deepcopy(model.optimizer) if model.optimizer is not None else optimizers.Adam()
    kept: dict[str, np.ndarray] | None = {"input": x} if values else None

    with model.implementation_context():
        running = implementation.current()
        steps = model.layers if running == "reference" else model.steps()
        outputs, out = [], x
        for i, step in enumerate(steps):
            last = i == len(steps) - 1 and model.ends_in_softmax
            out = step.forward_affine(out, True) if last else step.forward(out, training=True)
            outputs.append(out)
        loss, dz = loss_fn.loss_and_gradient(out, y)
        gradients, dout = [], dz
        for i in reversed(range(len(steps))):
            gradients.append(dout)
            last = i == len(steps) - 1 and model.ends_in_softmax
            dout = steps[i].backward_affine(dout) if last else steps[i].backward(dout)
        gradients.reverse()
        penalty = model.add_regularization_gradients()
        before = {name: p.copy() for name, p, _ in model.parameters_and_gradients()}
        grads = {name: g.copy() for name, _, g in model.parameters_and_gradients()}
        optimizer.apply_gradients(model.parameters_and_gradients())

    records = [_record(step, out, grad, running)
               for step, out, grad in zip(steps, outputs, gradients, strict=True)]
    records[-1].logits = model.ends_in_softmax
    params = [_param(name, before[name], grads[name], p) for name, p, _ in model.parameters_and_gradients()]
    if kept is not None:
        for record, out, grad in zip(records, outputs, gradients, strict=True):
            shown = "logits" if record.logits else "output"
            kept[f"{record.name} {shown}"], kept[f"{record.name} gradient"] = out, grad
        kept["input gradient"] = dout
        activations = sum(a.size for a in kept.values())
        for name, p, _ in model.parameters_and_gradients():
            kept[name], kept[f"{name} gradient"] = before[name], grads[name]
            kept[f"{name} update"] = p - before[name]
        _check_values_size(activations, sum(a.size for a in kept.values()) - activations, len(x))
    trained = model.optimizer.iterations if model.optimizer is not None else 0
    trace = StepTrace(running, Stats.of(x), records, float(loss) + penalty, classes, Stats.of(dout), params,
                      f"{type(optimizer).__name__}({optimizer.get_config()})", optimizer_steps=trained,
                      penalty=penalty, values=kept)
    trace.warnings = health_warnings(trace)
    return trace


def _check_values_size(activations: int, parameters: int, samples: int) -> None:
    """ValueError if ``values=True`` would print more than :data:`MAX_VALUES` numbers, saying where they come
    from: the parameters (each weight, its gradient and its update, whatever the input) or the batch."""
    total = activations + parameters
    if total <= MAX_VALUES:
        return
    start = f"trace_step: values=True would print {total:,} numbers (at most {MAX_VALUES:,})"
    if parameters >= MAX_VALUES:
        raise ValueError(f"{start}, {parameters:,} of them for the parameters (each weight, its gradient and "
                         "its update), whatever the input: a smaller input does not help. Use a smaller "
                         "model (fewer filters or units), or values=False")
    if samples > 1 and parameters + activations // samples <= MAX_VALUES:
        advice = "fewer samples, e.g. x[:1]"
    else:
        advice = f"a smaller image or model ({parameters:,} of the numbers are the parameters')"
    raise ValueError(f"{start}, {activations:,} of them for the input, activations and gradients of "
                     f"{samples} sample{'s' if samples > 1 else ''}: use {advice}, or values=False")


def _record(step: Step, output: np.ndarray, gradient: np.ndarray, running: str) -> StepRecord:
    layers = step.layers
    return StepRecord(step.name, " -> ".join(type(layer).__name__ for layer in layers),
                      running == "fast" and len(layers) > 1, Stats.of(output),
                      _cache_bytes([step, *layers]), Stats.of(gradient), _dead_units(step),
                      tuple(layer.name for layer in layers))


def _cache_bytes(holders: list[Step]) -> int:
    """Bytes of the arrays the caches of ``holders`` keep (each array once; deferred entries not made)."""
    arrays = {id(v): v for h in holders for v in dict.values(h.cache or {})
              if isinstance(v, np.ndarray)}
    return sum(a.nbytes for a in arrays.values())


def _dead_units(step: Step) -> tuple[int, int] | None:
    """ReLU units (last axis) that are 0 for every sample and position of the batch, and how many units:
    from the first ReLU output that the step (a fused step's own cache first) or one of its layers keeps."""
    for holder in dict.fromkeys([step, *step.layers]):
        if getattr(holder, "activation", None) != "relu":
            continue
        a = dict.get(holder.cache or {}, "a")
        if a is not None:
            alive = (a.reshape(-1, a.shape[-1]) > 0).any(axis=0)
            return int((~alive).sum()), int(alive.size)
    return None


def _param(name: str, before: np.ndarray, grad: np.ndarray, after: np.ndarray) -> ParamRecord:
    return ParamRecord(name, before.shape, float(np.linalg.norm(before)), float(np.linalg.norm(grad)),
                       float(np.linalg.norm(after - before)))


def health_warnings(trace: StepTrace) -> list[str]:
    """What in this step suggests training will go badly, one sentence each."""
    found = []
    for s in trace.steps:
        if s.dead_units and s.dead_units[0] > DEAD_FRACTION * s.dead_units[1]:
            dead, units = s.dead_units
            found.append(f"dead ReLUs in {s.name}: {dead} of {units} units output 0 for every input of the "
                         "batch, so they get no gradient and stop learning (a learning rate too high, or "
                         "biases pushed negative?)")
    norms = [s.gradient.norm for s in trace.steps]
    if not all(math.isfinite(n) for n in norms + [trace.loss]):
        found.append("exploding gradients: a gradient or the loss is not finite")
    elif norms and norms[-1] > 0:
        growth = norms[0] / norms[-1]
        if growth > GRADIENT_GROWTH:
            found.append(f"exploding gradients: the gradient's norm grows {growth:.3g}-fold from the last "
                         f"step ({trace.steps[-1].name}) back to the first ({trace.steps[0].name})")
        elif growth < 1 / GRADIENT_GROWTH:
            shrink = f"shrinks {1 / growth:.3g}-fold" if growth > 0 else "is exactly 0"
            found.append(f"vanishing gradients: the gradient's norm {shrink} from the last step "
                         f"({trace.steps[-1].name}) back to the first ({trace.steps[0].name})")
    low, high = UPDATE_RATIO
    for p in trace.params:
        if p.name.endswith("/kernel") and p.update_ratio is not None and math.isfinite(p.update_ratio):
            if p.update_ratio > high:
                found.append(f"large step: the update changes {p.name} by {p.update_ratio:.1%} of its norm "
                             "(about 0.1% is usual): lower the learning rate?")
            elif p.update_ratio < low:
                found.append(f"tiny step: the update changes {p.name} by {p.update_ratio:.1e} of its norm "
                             "(about 1e-3 is usual): raise the learning rate, or do its gradients vanish?")
    data_loss = trace.loss - trace.penalty
    if trace.optimizer_steps == 0 and abs(data_loss - trace.ln_k) > LOSS_FROM_LN_K * trace.ln_k:
        found.append(f"the loss {data_loss:.3f} is far from ln K = {trace.ln_k:.3f}, the loss of uniform "
                     "guesses, where an untrained model starts, and this model's optimizer has taken no "
                     "step yet: check the weight scale, the input scale ([0, 1]?) and the labels (if the "
                     "weights were trained elsewhere, this check does not apply)")
    return found


def _format_values(array: np.ndarray) -> str:
    """Every number of ``array``; images (N, H, W, C) as one H x W matrix per sample and channel."""
    with np.printoptions(threshold=MAX_VALUES, precision=4, suppress=True, linewidth=110):
        if array.ndim != 4:
            return str(array)
        return "\n".join(f"[{n}, :, :, {c}]\n{array[n, :, :, c]}"
                         for n in range(array.shape[0]) for c in range(array.shape[3]))


def _bytes(n: int) -> str:
    for unit in ("B", "KB", "MB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"
