"""Check any layer's, model's or optimizer's arithmetic against finite differences, and say what is wrong.

For a layer, with a random upstream gradient ``g`` of the output's shape, the
scalar ``f(x) = sum(layer.forward(x) * g)`` has ``df/dx = layer.backward(g)``
and ``df/dW = layer.grads[...]``. Each entry is compared with the central
difference ``(f(θ + ε) - f(θ - ε)) / 2ε``. Everything runs on a float64 copy,
so float32 round-off does not drown the signal; the original is left untouched.
Layers with randomness (Dropout) replay the same generator state on every
evaluation, so the mask is fixed. See ``docs/backprop.md#gradient-checking``.

A model is checked twice over: end to end (the training loss against the input
and every parameter) and step by step (each layer's backward, and the loss's,
against finite differences of its own forward, with the upstream gradient the
model gives it), so that a wrong MaxPool2D, Dropout, Flatten or ReLU is named
even though it has no parameters.

The report diagnoses, not just fails:

- per tensor, the worst entries with their index, the analytic and numeric
  values and their ratio, and a hint when the ratio is the same everywhere
  ("analytic = 0.5 x numeric", "the sign is wrong", "the dropout scale ... is missing");
- a backward that returns the wrong shape, or leaves a gradient out, or raises,
  is a named problem, not a crash;
- **kinks**: an entry whose ReLU mask or max-pool winner changes within ±ε has
  no derivative there (MNIST's zero background is full of them); it is counted
  and left out of pass/fail;
- which path and kernels were checked, and which fused steps.

Checks run on the reference path by default: the layers and NumPy kernels that
``docs/backprop.md`` derives. ``kernels="fast"`` checks the fast path (Numba kernels
and fused steps) instead, ``kernels="both"`` each in turn.

    >>> report = check_layer(Conv2D(4, 3), np.random.rand(2, 6, 6, 3))
    >>> print(report)          # a table: tensor, shape, relative error, ...
    >>> report.assert_ok()     # AssertionError with the diagnosis if any tensor fails

:func:`check_optimizer` checks an optimizer's step against its textbook formula.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
from threadpoolctl import threadpool_limits

from minicnn import fused, kernels, optimizers
from minicnn.layers import Dropout, Layer
from minicnn.losses import CategoricalCrossentropy, to_categorical
from minicnn.model import Sequential

TOLERANCE = 1e-6
WORST = 3
"""How many of the worst entries a failing tensor shows."""
EDGE_CHECKS = 2
"""Sampled checks also take this many random entries on each face of a tensor (first or last index)."""

DOCS = "docs/backprop.md"
SECTIONS = {"Dense": "dense", "Conv2D": "conv2d", "MaxPooling2D": "maxpooling2d", "Dropout": "dropout",
            "Flatten": "flatten", "ReLU": "activations", "Softmax": "activations",
            "loss": "softmax-and-cross-entropy", "Adam": "adam", "SGD": "adam",
            "ConvPoolBlock": "the-fast-path-one-step-for-conv2d--maxpool2d--dropout"}
"""The section of ``docs/backprop.md`` that derives each backward pass."""

# --------------------------------------------------------------------------- the report


@dataclass
class Entry:
    """One compared entry of a tensor: where it is, and the two gradients there."""

    index: tuple[int, ...]
    analytic: float
    numeric: float
    names: tuple[str, str] = ("analytic", "numeric")
    """What the two values are called: an optimizer check compares an update with the expected one."""

    @property
    def ratio(self) -> float:
        return self.analytic / self.numeric + 0.0 if self.numeric != 0 else float("nan")  # + 0.0: no "-0"

    def __str__(self) -> str:
        first, second = self.names
        return (f"index {self.index}: {first} {self.analytic:.6g}, {second} {self.numeric:.6g}, "
                f"ratio {self.ratio:.4g}")


@dataclass
class TensorCheck:
    """The comparison for one tensor: ``x`` (the input), ``z`` (the logits) or a parameter name.

    ``step`` names the layer (or fused step, or ``"loss"``) whose own backward this checks;
    None for an end-to-end check of a whole model. ``checked`` counts the compared entries,
    kinks left out; ``kinks`` the entries left out.
    """

    name: str
    shape: tuple
    relative_error: float
    max_abs_error: float
    checked: int
    kinks: int = 0
    step: str | None = None
    worst: list[Entry] = field(default_factory=list)
    hint: str = ""

    @property
    def key(self) -> str:
        """``"x"``, ``"conv2d/kernel"`` end to end; ``"max_pooling2d:x"``, ``"loss:z"`` step by step."""
        return f"{self.step}:{self.name}" if self.step else self.name


@dataclass
class Problem:
    """A backward that cannot be compared at all: it raised, or gave a wrong shape or no gradient."""

    step: str
    message: str


@dataclass
class GradcheckReport:
    """The results of one gradient check; ``print`` it or call :meth:`assert_ok`.

    ``checks``: the tensors of a layer, or of a model end to end. ``step_checks``: each step
    of a model against its own forward. ``problems``: what could not be compared.
    """

    title: str
    eps: float
    tolerance: float = TOLERANCE
    checks: list[TensorCheck] = field(default_factory=list)
    step_checks: list[TensorCheck] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    checked: str = ""
    """What ran: the path, its kernels and the fused steps."""
    sections: dict[str, str] = field(default_factory=dict)
    """The docs section for each step name."""
    labels: dict[str, str] = field(default_factory=dict)
    """How the report names each step: ``layer "conv2d" (Conv2D)``."""
    subject: str = ""
    """The layer a layer check checks (blamed when one of its tensors fails)."""

    @property
    def ok(self) -> bool:
        return not self.problems and not self.failures

    @property
    def failures(self) -> list[TensorCheck]:
        return [c for c in self.checks + self.step_checks if not c.relative_error < self.tolerance]

    @property
    def errors(self) -> dict[str, float]:
        """Relative error by tensor key (see :attr:`TensorCheck.key`)."""
        return {c.key: c.relative_error for c in self.checks + self.step_checks}

    @property
    def kinks(self) -> int:
        """Entries left out of pass/fail because a ReLU or a max-pool winner switches within ±eps."""
        return sum(c.kinks for c in self.checks + self.step_checks)

    @property
    def blamed(self) -> list[str]:
        """The steps whose own backward is wrong, from the loss back; the failing tensors' owners if
        no step check ran (a layer check, or a bug the step checks cannot see)."""
        named = [p.step for p in self.problems] + [c.step for c in self.failures if c.step]
        if not named and self.failures:
            named = [self.subject] if self.subject else [c.name.split("/")[0] for c in self.failures
                                                         if "/" in c.name]
        return list(dict.fromkeys(named))

    def __str__(self) -> str:
        eps = f", eps={self.eps:g}" if self.eps else ""
        lines = [f"gradcheck {self.title}: float64{eps}, tolerance {self.tolerance:g}"]
        if self.checked:
            lines.append(f"  checked: {self.checked}")
        if self.checks:
            lines += _table(self.checks, self.tolerance, "end to end: the loss against each tensor"
                            if self.step_checks else "")
        if self.step_checks:
            lines += _table(self.step_checks, self.tolerance,
                            "step by step: each backward against its own forward, "
                            "with the upstream gradient the model gives it")
        if self.kinks:
            lines.append(f"  kinks: {self.kinks} entries left out (a ReLU mask or a max-pool winner "
                         "switches within ±eps, so there is no derivative to compare)")
            unchecked = [c.key for c in self.checks + self.step_checks if c.kinks and not c.checked]
            if unchecked:
                lines.append(f"  only kinks, so not compared: {', '.join(unchecked)}; check these layers "
                             "with check_layer on random inputs")
        lines.append("  OK" if self.ok else self._diagnosis())
        return "\n".join(lines)

    def _diagnosis(self) -> str:
        lines = ["  FAILED"]
        if self.blamed:
            lines.append(f"  look first at: {', '.join(self.labels.get(s, s) for s in self.blamed)}")
        lines += [f"  - {p.message}" for p in self.problems]
        shown = [c for c in self.failures if c.step] or self.failures
        for c in shown:
            lines.append(f"  - {c.key}: relative error {c.relative_error:.2e}"
                         + (f"; {c.hint}" if c.hint else ""))
            lines += [f"      {e}" for e in c.worst]
        docs = [self.sections[s] for s in self.blamed if s in self.sections]
        if docs:
            lines.append(f"  derivation: {', '.join(dict.fromkeys(docs))}")
        return "\n".join(lines)

    def assert_ok(self) -> None:
        """Raise an AssertionError with the whole report if anything fails."""
        if not self.ok:
            raise AssertionError(f"gradient check failed:\n{self}")


def _table(checks: list[TensorCheck], tolerance: float, heading: str) -> list[str]:
    lines = [f"  {heading}"] if heading else []
    w = max([30, *(len(c.key) + 1 for c in checks)])
    lines.append(f"  {'tensor':<{w}} {'shape':<18} {'rel. error':>11} {'max |diff|':>11} {'checked':>8} "
                 f"{'kinks':>6}")
    for c in checks:
        flag = "" if c.relative_error < tolerance else "  <-- FAIL"
        lines.append(f"  {c.key:<{w}} {str(c.shape):<18} {c.relative_error:>11.2e} {c.max_abs_error:>11.2e} "
                     f"{c.checked:>8} {c.kinks:>6}{flag}")
    return lines


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """``||a - n|| / (||a|| + ||n||)``: 0 for a perfect match, 1 for unrelated vectors."""
    diff = np.linalg.norm(analytic - numeric)
    scale = np.linalg.norm(analytic) + np.linalg.norm(numeric)
    return float(diff / scale) if scale > 0 else 0.0


def numerical_gradient(f: Callable[[], float], array: np.ndarray, indices: np.ndarray,
                       eps: float) -> np.ndarray:
    """Central differences of ``f()`` with respect to ``array.flat[indices]``.

    ``array`` is perturbed in place, one entry at a time, and restored.
    """
    return _central_differences(lambda: (f(), []), array, indices, eps)[0]


# --------------------------------------------------------------------------- checking a layer


def check_layer(layer: Layer, x: np.ndarray, *, eps: float = 1e-6, max_checks: int | None = None,
                seed: int = 0, tolerance: float = TOLERANCE, kernels: str = "reference") -> GradcheckReport:
    """Check ``layer.backward`` (input and every parameter) on the batch ``x``.

    x: the layer's input, e.g. (N, H, W, C) for Conv2D; it is cast to float64.
    ``max_checks`` limits how many random entries of each tensor are checked (plus
    entries with a nonzero gradient and the corners); by default all are.
    ``kernels``: the path to check, ``"reference"`` (the default) or ``"fast"``.
    """
    with _on_path(kernels, "check_layer"):
        x = np.array(x, dtype=np.float64)
        layer = copy.deepcopy(layer)
        if not layer.built:
            layer.build(x.shape[1:])
        layer.astype(np.float64)
        rng = np.random.default_rng(seed)
        g = rng.standard_normal((x.shape[0], *layer.output_shape))
        step = _Step(layer)
        report = GradcheckReport(f"{layer.label()}, input {x.shape}", eps, tolerance,
                                 checked=_path_description([step]), subject=step.name,
                                 sections={step.name: _section(step.kind)}, labels={step.name: step.label})
        state = _generator_states([step])  # before the forward pass draws the dropout mask
        analytic = step.analytic(x, g, report.problems)
        check = _Checker(eps, max_checks, rng, tolerance, [])
        report.checks += step.compare(x, g, analytic, check, state=state, label_step=False)
        return report


def check_gradient(f: Callable[[np.ndarray], float], x: np.ndarray, analytic: np.ndarray, *, name: str = "x",
                   eps: float = 1e-6, tolerance: float = TOLERANCE, factors: list[tuple[float, str]] = ()
                   ) -> GradcheckReport:
    """Check the gradient ``analytic`` of any scalar function ``f`` at ``x`` (every entry, in float64).

    For a loss, say: ``check_gradient(lambda z: loss(z, y)[0], z, loss(z, y)[1], name="z")``.
    ``factors``: ``(k, explanation)`` pairs the hint may name (see :func:`factor_hint`).
    """
    x = np.array(x, dtype=np.float64)
    report = GradcheckReport(f"the gradient with respect to {name}, at {name} of shape {x.shape}", eps,
                             tolerance, subject=name)
    analytic = np.asarray(analytic)
    if analytic.shape != x.shape:
        report.problems.append(Problem(name, f"the gradient has shape {analytic.shape}; expected {x.shape}, "
                                             f"the shape of {name}"))
        return report
    report.checks.append(_compare_tensor(name, None, x, analytic, lambda: (f(x), []), eps, None,
                                         np.random.default_rng(0), tolerance, list(factors)))
    return report


# --------------------------------------------------------------------------- checking a model


def check_model(model: Sequential, x: np.ndarray, y: np.ndarray, *, eps: float = 1e-6,
                max_checks: int | None = 20, seed: int = 0, tolerance: float = TOLERANCE,
                kernels: str = "reference") -> GradcheckReport:
    """Check a whole model: end to end, and each step's backward against its own forward.

    x: (N, *input_shape); y: one-hot (N, K) or integer labels (N,). The loss is the
    model's (cross-entropy on the logits), in training mode (dropout on, with fixed
    masks). Per tensor, ``max_checks`` random entries (20 by default), as many entries
    with a nonzero analytic gradient, and the corners are checked; ``max_checks=None``
    checks every entry (exhaustive, slow). ``kernels``: the path to check,
    ``"reference"`` (the default), ``"fast"`` or ``"both"`` (one report, each tensor
    checked on each path). The model's own ``kernels`` setting is overridden.
    """
    if kernels == "both":
        parts = [check_model(model, x, y, eps=eps, max_checks=max_checks, seed=seed, tolerance=tolerance,
                             kernels=path) for path in ("reference", "fast")]
        return _merge(parts, ("reference", "fast"))
    with _on_path(kernels, "check_model"):
        return _check_model(model, x, y, eps, max_checks, seed, tolerance)


def _check_model(model: Sequential, x: np.ndarray, y: np.ndarray, eps: float, max_checks: int | None,
                 seed: int, tolerance: float) -> GradcheckReport:
    x = np.array(x, dtype=np.float64)
    model = copy.deepcopy(model)
    model.kernels = None  # follow the path being checked
    if not model.built:
        model.build((None, *x.shape[1:]))
    model.astype(np.float64)
    y = np.asarray(y)
    y = to_categorical(y, model.output_shape[-1], np.float64) if y.ndim == 1 else y.astype(np.float64)
    loss = _LossStep(model.loss or CategoricalCrossentropy(from_logits=not model.ends_in_softmax), y)
    steps = _model_steps(model)
    report = GradcheckReport(f'model "{model.name}", input {x.shape}', eps, tolerance,
                             checked=_path_description(steps),
                             sections={s.name: _section(s.kind) for s in steps} | {"loss": _section("loss")},
                             labels={s.name: s.label for s in steps} | {"loss": "the loss"})
    check = _Checker(eps, max_checks, np.random.default_rng(seed), tolerance, _factors(model, x))
    start = _generator_states(steps)

    # One forward pass, keeping each step's input and generator state, then the loss.
    inputs, states, out = [], [], x
    for step in steps:
        inputs.append(out.copy())
        states.append(_generator_states([step]))
        out = step.forward(out)
    dz = loss.analytic(out, None, report.problems)
    if dz is None:
        return report
    report.step_checks += loss.compare(out, dz, check)

    # Backward, step by step: each step's analytic gradients, checked where they are made.
    upstream, done = dz["z"], []
    for i in reversed(range(len(steps))):
        analytic = steps[i].analytic(inputs[i], upstream, report.problems, forward_done=True)
        if "x" not in analytic:
            return report  # no gradient to pass on: nothing below this step, nor end to end, can be checked
        report.step_checks += steps[i].compare(inputs[i], upstream, analytic, check, state=states[i])
        done.append((steps[i], analytic))
        upstream = analytic["x"]

    # End to end: the loss itself against the input and every parameter.
    def loss_and_switches() -> tuple[float, list]:
        _restore(start)
        out, switches = x, []
        for step in steps:
            out = step.forward(out)
            switches += step.switches()
        return loss.value(out), switches

    end_to_end = {"x": (x, upstream)}
    for step, analytic in reversed(done):
        end_to_end |= {step.param_key(key): (param, analytic[key]) for key, param in step.params.items()
                       if key in analytic}
    report.checks += [check.tensor(name, None, target, grad, loss_and_switches)
                      for name, (target, grad) in end_to_end.items()]
    return report


def _model_steps(model: Sequential) -> list[_Step]:
    """The steps the active path runs: every layer on the reference path, fused blocks on the fast one.
    The last one stops at the logits when the loss fuses the final softmax."""
    objects = model.layers if kernels.current() == "reference" else fused.plan(model.layers)
    return [_Step(obj, linear=model.ends_in_softmax and i == len(objects) - 1)
            for i, obj in enumerate(objects)]


def _merge(parts: list[GradcheckReport], paths: tuple[str, ...]) -> GradcheckReport:
    first = parts[0]
    report = GradcheckReport(first.title, first.eps, first.tolerance, sections=first.sections,
                             labels=first.labels, checked="; ".join(p.checked for p in parts))
    for part, path in zip(parts, paths, strict=True):
        report.checks += [dataclasses.replace(c, name=f"{c.name} [{path}]") for c in part.checks]
        report.step_checks += [dataclasses.replace(c, name=f"{c.name} [{path}]") for c in part.step_checks]
        report.problems += [Problem(p.step, f"[{path}] {p.message}") for p in part.problems]
        report.sections |= part.sections
        report.labels |= part.labels
    return report


# --------------------------------------------------------------------------- steps


class _Step:
    """A layer or a fused step, as a check sees it: forward in training mode, backward, parameters."""

    def __init__(self, obj, linear: bool = False):
        self.obj = obj
        self.linear = linear  # forward_linear / backward_linear: the loss takes over from the logits
        self.layers: list[Layer] = obj.layers if isinstance(obj, fused.ConvPoolBlock) else [obj]
        self.fused = isinstance(obj, fused.ConvPoolBlock)
        self.name = obj.name if self.fused else (obj.name or obj.default_name)
        self.kind = type(obj)
        self.label = f'fused step "{obj.name}"' if self.fused else obj.label()

    @property
    def params(self) -> dict[str, np.ndarray]:
        if not self.fused:
            return self.obj.params
        return {f"{layer.name}/{key}": p for layer in self.layers for key, p in layer.params.items()}

    def param_key(self, key: str) -> str:
        """The end-to-end name of a parameter: ``"conv2d/kernel"``."""
        return key if self.fused else f"{self.name}/{key}"

    def forward(self, x: np.ndarray) -> np.ndarray:
        return self.obj.forward_linear(x, True) if self.linear else self.obj.forward(x, training=True)

    def backward(self, g: np.ndarray):
        return self.obj.backward_linear(g) if self.linear else self.obj.backward(g)

    def grads(self) -> dict[str, np.ndarray]:
        if not self.fused:
            return self.obj.grads
        return {f"{layer.name}/{key}": g for layer in self.layers for key, g in layer.grads.items()}

    def switches(self) -> list[np.ndarray]:
        """The discrete choices of the last training forward: ReLU masks and max-pool winners."""
        found = []
        for part in [self.obj, *self.layers] if self.fused else self.layers:
            cache = part.cache or {}
            if "argmax" in cache:
                found.append(cache["argmax"])
            a = cache.get("a")  # dict.get: an entry a fused step defers is not computed here
            relu = part is self.obj and self.fused or getattr(part, "activation", None) == "relu"
            if a is not None and relu:
                found.append(a > 0)
        return found

    def analytic(self, x: np.ndarray, g: np.ndarray, problems: list[Problem],
                 forward_done: bool = False) -> dict[str, np.ndarray]:
        """``{"x": dx, key: dW, ...}`` from one backward with upstream gradient ``g``: those that can be
        compared; a problem for each that cannot (a raised error, a wrong shape, a missing gradient)."""
        if not forward_done:
            self.forward(x)
        try:
            dx = self.backward(g)
            grads = self.grads()
        except Exception as exc:  # a student's backward may raise anything: name the step instead
            problems.append(Problem(self.name, f"{self.label}: backward raised {type(exc).__name__}: {exc}"))
            return {}
        return _check_shapes(self, x, dx, grads, problems)

    def compare(self, x: np.ndarray, g: np.ndarray, analytic: dict, check: _Checker,
                state: list | None = None, label_step: bool = True) -> list[TensorCheck]:
        """Each tensor of this step against finite differences of ``sum(forward(x) * g)``."""
        state = _generator_states([self]) if state is None else state
        x = x.copy()

        def f() -> tuple[float, list]:
            _restore(state)
            return float((self.forward(x) * g).sum()), self.switches()

        targets = {"x": x, **self.params}
        return [check.tensor(name, self.name if label_step else None, target, analytic[name], f,
                             _dropout_factors(self.layers))
                for name, target in targets.items() if name in analytic]


class _LossStep:
    """The loss as a step: logits ``z`` (N, K) in, the mean loss out, ``dz`` back."""

    name = "loss"

    def __init__(self, loss_fn, y: np.ndarray):
        self.loss_fn, self.y = loss_fn, y
        self.label = f"loss ({type(loss_fn).__name__})"

    def analytic(self, z: np.ndarray, _g, problems: list[Problem]) -> dict[str, np.ndarray] | None:
        try:
            _, dz = self.loss_fn.loss_and_gradient(z, self.y)
        except Exception as exc:  # as for a step: name it instead of crashing
            problems.append(Problem(self.name, f"{self.label}: raised {type(exc).__name__}: {exc}"))
            return None
        if not isinstance(dz, np.ndarray) or dz.shape != z.shape:
            got = dz.shape if isinstance(dz, np.ndarray) else type(dz).__name__
            problems.append(Problem(self.name, f"{self.label}: dz has shape {got}; expected {z.shape}, "
                                               "the shape of the logits z"))
            return None
        return {"z": dz}

    def value(self, z: np.ndarray) -> float:
        return self.loss_fn.loss_and_gradient(z, self.y)[0]

    def compare(self, z: np.ndarray, analytic: dict, check: _Checker) -> list[TensorCheck]:
        z = z.copy()
        return [check.tensor("z", self.name, z, analytic["z"], lambda: (self.value(z), []))]


def _check_shapes(step: _Step, x: np.ndarray, dx, grads: dict, problems: list[Problem]
                  ) -> dict[str, np.ndarray]:
    """The analytic gradients that can be compared: ``"x"`` and each parameter's, each only if it
    has the right shape and is finite. Every one that cannot is a problem naming the step."""
    candidates = {"x": (dx, x.shape, "dx", "its input")}
    candidates |= {key: (grads.get(key), param.shape, f"the gradient of {key!r}", "the parameter")
                   for key, param in step.params.items()}
    analytic = {}
    for key, (grad, shape, what, of) in candidates.items():
        if key != "x" and grad is None:
            message = (f"backward left no gradient for {key!r} in grads (it must fill the same keys as "
                       f"params: {sorted(step.params)}; got {sorted(grads)})")
        elif not isinstance(grad, np.ndarray):
            message = f"{what} is {type(grad).__name__}; expected an array of shape {shape}"
        elif grad.shape != shape:
            message = f"{what} has shape {grad.shape}; expected {shape}, the shape of {of}"
        elif not np.isfinite(grad).all():
            message = f"{what} contains NaN or Inf"
        else:
            analytic[key] = grad.copy()
            continue
        problems.append(Problem(step.name, f"{step.label}: {message}"))
    return analytic


# --------------------------------------------------------------------------- comparing one tensor


@dataclass
class _Checker:
    """The settings of one check: ``eps``, sampling, tolerance, and the factors hints may name."""

    eps: float
    max_checks: int | None
    rng: np.random.Generator
    tolerance: float
    factors: list[tuple[float, str]]

    def tensor(self, name: str, step: str | None, target: np.ndarray, analytic: np.ndarray,
               f: Callable[[], tuple[float, list]], factors: list[tuple[float, str]] = ()) -> TensorCheck:
        """Compare ``analytic`` with central differences of ``f`` on the chosen entries of ``target``."""
        return _compare_tensor(name, step, target, analytic, f, self.eps, self.max_checks, self.rng,
                               self.tolerance, self.factors + list(factors))


def _compare_tensor(name: str, step: str | None, target: np.ndarray, analytic: np.ndarray,
                    f: Callable[[], tuple[float, list]], eps: float, max_checks: int | None,
                    rng: np.random.Generator, tolerance: float, factors: list) -> TensorCheck:
    """Compare ``analytic`` with central differences of ``f`` on the chosen entries of ``target``."""
    indices = choose_entries(analytic, max_checks, rng)
    numeric, kinks = _central_differences(f, target, indices, eps)
    a = np.asarray(analytic).reshape(-1)[indices]
    keep = ~kinks
    a, n, kept = a[keep], numeric[keep], indices[keep]
    error = relative_error(a, n)
    check = TensorCheck(name, target.shape, error, float(np.max(np.abs(a - n))) if len(a) else 0.0,
                        int(keep.sum()), int(kinks.sum()), step)
    if not error < tolerance:
        order = np.argsort(-np.abs(a - n))[:WORST]
        check.worst = [Entry(tuple(int(i) for i in np.unravel_index(kept[k], target.shape)), float(a[k]),
                             float(n[k])) for k in order]
        check.hint = factor_hint(a, n, factors)
    return check


def choose_entries(analytic: np.ndarray, max_checks: int | None, rng: np.random.Generator) -> np.ndarray:
    """Flat indices to check: all if ``max_checks`` is None (or covers the tensor), else ``max_checks``
    random entries, as many among those with a nonzero analytic gradient, every corner, and
    :data:`EDGE_CHECKS` random entries on each face (each axis at its first or last index), where
    padding and window bugs live."""
    analytic = np.asarray(analytic)
    shape, size = analytic.shape, analytic.size
    if max_checks is None or max_checks >= size:
        return np.arange(size)
    nonzero = np.flatnonzero(analytic)
    ends = [sorted({0, d - 1}) for d in shape]
    corners = [np.ravel_multi_index(c, shape) for c in itertools.product(*ends)]
    chosen = [rng.choice(size, max_checks, replace=False),
              rng.choice(nonzero, min(max_checks, len(nonzero)), replace=False), np.array(corners, dtype=int)]
    for axis, end in itertools.product(range(len(shape)), (0, -1)):
        face = [rng.integers(0, d, EDGE_CHECKS) for d in shape]
        face[axis] = np.full(EDGE_CHECKS, shape[axis] - 1 if end else 0)
        chosen.append(np.ravel_multi_index(face, shape))
    return np.unique(np.concatenate(chosen))


def _central_differences(f: Callable[[], tuple[float, list]], array: np.ndarray, indices: np.ndarray,
                         eps: float) -> tuple[np.ndarray, np.ndarray]:
    """Central differences of ``f()[0]`` at ``array.flat[indices]``, and which entries are kinks:
    where the switches ``f()[1]`` (ReLU masks, max-pool winners) at ``θ ± eps`` differ from those at θ."""
    flat = array.reshape(-1)
    if not np.shares_memory(flat, array):
        raise ValueError("gradcheck: the perturbed array must be contiguous")
    _, base = f()
    grad, kinks = np.empty(len(indices)), np.zeros(len(indices), dtype=bool)
    for k, i in enumerate(indices):
        original = flat[i]
        flat[i] = original + eps
        f_plus, s_plus = f()
        flat[i] = original - eps
        f_minus, s_minus = f()
        flat[i] = original
        grad[k] = (f_plus - f_minus) / (2 * eps)
        kinks[k] = not (_same(s_plus, base) and _same(s_minus, base))
    return grad, kinks


def _same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(np.array_equal(u, v) for u, v in zip(a, b, strict=True))


def factor_hint(analytic: np.ndarray, numeric: np.ndarray, factors: list[tuple[float, str]] = ()) -> str:
    """A one-line guess at what is wrong, from how the analytic and numeric gradients differ.

    ``factors``: ``(k, explanation)`` pairs for ratios this check knows a story for (the batch
    size, a dropout scale). The ratio ``analytic / numeric`` is "constant" when every entry with a
    clearly nonzero numeric gradient gives the same ratio to 1e-4.
    """
    if not len(numeric):
        return ""
    scale = max(np.abs(numeric).max(), np.abs(analytic).max())
    big = np.abs(numeric) > 1e-3 * scale  # clearly nonzero: a ratio means something there
    lost = int(np.sum(big & (np.abs(analytic) <= 1e-7 * scale)))
    stray = int(np.sum((np.abs(numeric) <= 1e-7 * scale) & (np.abs(analytic) > 1e-3 * scale)))
    if not big.any():
        return "numeric gradient is 0 at every checked entry, but the analytic one is not"
    ratios = analytic[big] / numeric[big]
    k = float(np.median(ratios))
    if not lost and not stray and k != 0 and np.all(np.abs(ratios - k) <= 1e-4 * abs(k)):
        return f"analytic = {k:.4g} x numeric at every checked entry: {_factor_story(k, factors)}"
    parts = []
    if lost:
        parts.append(f"analytic is 0 at {lost} entries where numeric is not (gradient never routed there?)")
    if stray:
        parts.append(f"analytic is nonzero at {stray} entries where numeric is 0 "
                     "(routed to the wrong place?)")
    return "; ".join(parts) or "no constant factor: the gradient is wrong entry by entry"


def _factor_story(k: float, factors: list[tuple[float, str]]) -> str:
    close = lambda u, v: abs(u - v) <= 1e-3 * abs(v)  # noqa: E731
    if close(k, -1.0):
        return "the sign is wrong"
    for value, story in factors:
        if close(k, value):
            return story
    guess = Fraction(k).limit_denominator(16)
    exact = f" = {guess}" if close(k, float(guess)) and guess.denominator > 1 else ""
    return f"a missing or extra constant factor{exact}"


def _factors(model: Sequential, x: np.ndarray) -> list[tuple[float, str]]:
    n = x.shape[0]
    if n == 1:
        return []
    return [(float(n), f"the 1/N of the mean loss is missing (N = {n}, the batch size)"),
            (1.0 / n, f"divided by N = {n} once too often")]


def _dropout_factors(layers: list[Layer]) -> list[tuple[float, str]]:
    found = []
    for layer in layers:
        if isinstance(layer, Dropout) and layer.rate > 0:
            keep = 1.0 - layer.rate
            found += [(keep, f"the dropout scale 1/(1 - rate) = {1 / keep:.4g} is missing in {layer.name}"),
                      (1 / keep, f"the dropout scale 1/(1 - rate) is applied twice in {layer.name}")]
    return found


# --------------------------------------------------------------------------- checking an optimizer


def check_optimizer(optimizer: optimizers.Optimizer, *, steps: int = 3, seed: int = 0,
                    tolerance: float = TOLERANCE, kernels: str = "reference") -> GradcheckReport:
    """Check ``steps`` updates of ``optimizer`` against its textbook formula, on float64 parameters.

    A fresh copy of the optimizer updates two random parameters with random gradients; each step's
    update is compared with the formula of ``docs/backprop.md#adam`` (Adam: the paper's Algorithm 1
    with Keras' epsilon hat; SGD: Keras' momentum rule). Per step, the report gives the relative
    error of the update and, when the update is off by one factor, the factor.
    """
    with _on_path(kernels, "check_optimizer"):
        opt = copy.deepcopy(optimizer)
        opt.iterations, opt.state = 0, {}
        rng = np.random.default_rng(seed)
        params = {"w": rng.standard_normal((3, 4)), "b": rng.standard_normal(5)}
        textbook = _Textbook(opt)
        report = GradcheckReport(f"{type(opt).__name__}({opt.get_config()})", 0.0, tolerance,
                                 checked=f"{_active_path()} kernels, {steps} steps, each update against "
                                         "the formula", subject=type(opt).__name__,
                                 sections={type(opt).__name__: _section(type(opt))},
                                 labels={type(opt).__name__: f"{type(opt).__name__}.update"})
        for t in range(1, steps + 1):
            grads = {k: rng.standard_normal(p.shape) for k, p in params.items()}
            before = {k: p.copy() for k, p in params.items()}
            expected = {k: textbook.update(k, grads[k], t) for k in params}
            try:
                opt.apply_gradients((k, params[k], grads[k]) for k in params)
            except Exception as exc:  # name the optimizer, whatever went wrong
                report.problems.append(Problem(type(opt).__name__,
                                               f"step {t} raised {type(exc).__name__}: {exc}"))
                return report
            for k in params:
                got = (params[k] - before[k]).reshape(-1)
                want = expected[k].reshape(-1)
                check = TensorCheck(f"step {t}: {k}", params[k].shape, relative_error(got, want),
                                    float(np.max(np.abs(got - want))), got.size)
                if not check.relative_error < tolerance:
                    order = np.argsort(-np.abs(got - want))[:WORST]
                    check.worst = [Entry((int(i),), float(got[i]), float(want[i]), ("update", "expected"))
                                   for i in order]
                    check.hint = factor_hint(got, want, textbook.factors(t)).replace(
                        "analytic", "update").replace("numeric", "expected")
                report.checks.append(check)
        return report


class _Textbook:
    """The update an optimizer should make, written from the formula, independently of its code."""

    def __init__(self, opt: optimizers.Optimizer):
        self.opt = opt
        self.state: dict[str, dict[str, np.ndarray]] = {}

    def update(self, key: str, g: np.ndarray, t: int) -> np.ndarray:
        opt, lr = self.opt, self.opt.learning_rate
        if isinstance(opt, optimizers.Adam):
            s = self.state.setdefault(key, {"m": np.zeros_like(g), "v": np.zeros_like(g)})
            s["m"] = opt.beta_1 * s["m"] + (1 - opt.beta_1) * g
            s["v"] = opt.beta_2 * s["v"] + (1 - opt.beta_2) * g * g
            m_hat, v_hat = s["m"] / (1 - opt.beta_1**t), s["v"] / (1 - opt.beta_2**t)
            return -lr * m_hat / (np.sqrt(v_hat) + opt.epsilon / np.sqrt(1 - opt.beta_2**t))
        if isinstance(opt, optimizers.SGD):
            s = self.state.setdefault(key, {"velocity": np.zeros_like(g)})
            s["velocity"] = opt.momentum * s["velocity"] - lr * g
            return s["velocity"]
        raise TypeError(f"check_optimizer: no textbook formula for {type(opt).__name__}")

    def factors(self, t: int) -> list[tuple[float, str]]:
        opt = self.opt
        if not isinstance(opt, optimizers.Adam):
            return []
        correction = np.sqrt(1 - opt.beta_2**t) / (1 - opt.beta_1**t)
        return [(1 / correction, "the bias correction sqrt(1 - beta_2^t) / (1 - beta_1^t) = "
                                 f"{correction:.4g} at t = {t} is missing"),
                (correction, "the bias correction is applied twice")]


# --------------------------------------------------------------------------- helpers


def _generator_states(steps) -> list[tuple[np.random.Generator, dict]]:
    """The state of every layer generator (Dropout's ``rng``) in ``steps``, to replay masks with."""
    return [(layer.rng, layer.rng.bit_generator.state) for step in steps for layer in step.layers
            if isinstance(getattr(layer, "rng", None), np.random.Generator)]


def _restore(states: list[tuple[np.random.Generator, dict]]) -> None:
    for generator, state in states:
        generator.bit_generator.state = state


def _active_path() -> str:
    return kernels.current()


def _path_description(steps: list[_Step]) -> str:
    path = _active_path()
    blocks = [s.name for s in steps if s.fused]
    if path == "reference":
        return "reference path (NumPy *_reference kernels), every layer on its own"
    return ("fast path (Numba kernels), " +
            (f"fused steps {', '.join(blocks)}" if blocks else "no fused steps"))


def _section(kind: type | str) -> str:
    """The docs section for a class (or the nearest base class the docs derive), or a name."""
    names = [c.__name__ for c in kind.__mro__] if isinstance(kind, type) else [kind]
    found = [SECTIONS[name] for name in names if name in SECTIONS]
    return f"{DOCS}#{found[0]}" if found else DOCS


@contextlib.contextmanager
def _on_path(path: str, caller: str) -> Iterator[None]:
    """The context in which ``caller`` checks ``path``; ValueError naming ``caller`` for a wrong path.

    BLAS runs on one thread meanwhile: a check makes thousands of tiny products, for which
    waking a thread pool costs more than it gives (twenty times more on a busy machine).
    """
    choices = (*kernels.PATHS, "both") if caller == "check_model" else kernels.PATHS
    if path not in choices:
        raise ValueError(f"{caller}: kernels must be one of {choices}; got {path!r}")
    with kernels.use(path), threadpool_limits(limits=1, user_api="blas"):
        yield
