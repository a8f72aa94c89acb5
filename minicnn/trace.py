"""A view of one training step, layer by layer: what flows forward, what flows back, what changes.

``trace_step(model, x, y)`` runs one training step on a copy of the model (the model and
its optimizer are left untouched) and returns a :class:`StepTrace`:

- forward, per step: the output's shape, dtype, mean, std and fraction of zeros, the bytes
  its cache keeps for the backward pass, and whether the step ran fused (the fast
  implementation's Conv2D -> MaxPool2D -> Dropout block, :mod:`minicnn.fused`);
- the loss, next to ``ln K``, the loss of uniform guesses over K classes;
- backward, per step: the same statistics for the gradient with respect to its output;
- per parameter: ``||W||``, ``||dW|| / ||W||`` and ``||ΔW|| / ||W||``, the update a copy of
  the optimizer makes, relative to the weights (about 1e-3 is the usual rule of thumb);
- training-health warnings built on these: dead ReLUs, exploding or vanishing gradients,
  steps that are too large or too small, a loss far from ln K.

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


@dataclass
class ParamRecord:
    """One parameter: its norm, its gradient's and its update's, relative to it."""

    name: str
    shape: tuple
    norm: float
    grad_ratio: float
    update_ratio: float


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
        w = max(len(s.name) for s in self.steps) + 8
        lines = [f"one training step, {self.implementation} implementation, optimizer {self.optimizer}",
                 "forward (output of each step; cache kept for backward)",
                 f"  {'input':<{w}} {self.input}"]
        for s in self.steps:
            tag = f"{s.name}{' [fused]' if s.fused else ''}"
            lines.append(f"  {tag:<{w}} {s.output}  cache {_bytes(s.cache_bytes):>9}")
        lines.append(f"loss {self.loss:.4f} on the output of {self.steps[-1].name}   "
                     f"(ln K = ln {self.classes} = {self.ln_k:.4f}, uniform guessing)")
        lines.append("backward (gradient of the loss with respect to each step's output)")
        for s in reversed(self.steps):
            lines.append(f"  {s.name:<{w}} {s.gradient}")
        lines.append(f"  {'input':<{w}} {self.input_gradient}")
        lines.append("parameters: ||W||, ||dW|| / ||W||, ||update|| / ||W||")
        for p in self.params:
            lines.append(f"  {p.name:<{w}} {str(p.shape):<18} {p.norm:>10.3e} {p.grad_ratio:>11.3e} "
                         f"{p.update_ratio:>11.3e}")
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
        before = {name: p.copy() for name, p, _ in model.parameters_and_gradients()}
        grads = {name: g.copy() for name, _, g in model.parameters_and_gradients()}
        optimizer.apply_gradients(model.parameters_and_gradients())

    records = [_record(step, out, grad, running)
               for step, out, grad in zip(steps, outputs, gradients, strict=True)]
    params = [_param(name, before[name], grads[name], p) for name, p, _ in model.parameters_and_gradients()]
    if kept is not None:
        for record, out, grad in zip(records, outputs, gradients, strict=True):
            kept[f"{record.name} output"], kept[f"{record.name} gradient"] = out, grad
        kept["input gradient"] = dout
        for name, p, _ in model.parameters_and_gradients():
            kept[name], kept[f"{name} gradient"] = before[name], grads[name]
            kept[f"{name} update"] = p - before[name]
        total = sum(a.size for a in kept.values())
        if total > MAX_VALUES:
            raise ValueError(f"trace_step: values=True would print {total:,} numbers (at most "
                             f"{MAX_VALUES:,}); use a smaller input, e.g. x[:1], or values=False")
    trace = StepTrace(running, Stats.of(x), records, float(loss), classes, Stats.of(dout), params,
                      f"{type(optimizer).__name__}({optimizer.get_config()})", values=kept)
    trace.warnings = health_warnings(trace)
    return trace


def _record(step: Step, output: np.ndarray, gradient: np.ndarray, running: str) -> StepRecord:
    layers = step.layers
    return StepRecord(step.name, " -> ".join(type(layer).__name__ for layer in layers),
                      running == "fast" and len(layers) > 1, Stats.of(output),
                      _cache_bytes([step, *layers]), Stats.of(gradient), _dead_units(step))


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
    norm = float(np.linalg.norm(before))
    ratio = (lambda v: float(np.linalg.norm(v)) / norm if norm > 0 else float("nan"))  # noqa: E731
    return ParamRecord(name, before.shape, norm, ratio(grad), ratio(after - before))


def health_warnings(trace: StepTrace) -> list[str]:
    """What in this step suggests training will go badly, one sentence each."""
    found = []
    for s in trace.steps:
        if s.dead_units and s.dead_units[0] > DEAD_FRACTION * s.dead_units[1]:
            dead, units = s.dead_units
            found.append(f"dead ReLUs in {s.name}: {dead} of {units} units output 0 for every input of the "
                         "batch, so they get no gradient and stop learning (a learning rate too high, or "
                         "biases pushed negative?)")
    norms = [math.sqrt((s.gradient.mean**2 + s.gradient.std**2) * math.prod(s.gradient.shape))
             for s in trace.steps]  # ||gradient||, from its mean and std
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
        if p.name.endswith("/kernel") and math.isfinite(p.update_ratio):
            if p.update_ratio > high:
                found.append(f"large step: the update changes {p.name} by {p.update_ratio:.1%} of its norm "
                             "(about 0.1% is usual): lower the learning rate?")
            elif p.update_ratio < low:
                found.append(f"tiny step: the update changes {p.name} by {p.update_ratio:.1e} of its norm "
                             "(about 1e-3 is usual): raise the learning rate, or do its gradients vanish?")
    if abs(trace.loss - trace.ln_k) > LOSS_FROM_LN_K * trace.ln_k:
        found.append(f"the loss {trace.loss:.3f} is far from ln K = {trace.ln_k:.3f}, the loss of uniform "
                     "guesses, where an untrained model starts: if this model is untrained, check the "
                     "weight scale, the input scale ([0, 1]?) and the labels")
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
