"""Check any layer's or model's backward pass against finite differences, in float64.

For a layer, with a random upstream gradient ``g`` of the output's shape, the
scalar ``f(x) = sum(layer.forward(x) * g)`` has ``df/dx = layer.backward(g)``
and ``df/dW = layer.grads[...]``. Each entry is compared with the central
difference ``(f(θ + ε) - f(θ - ε)) / 2ε``. For a model, ``f`` is the training
loss itself. Everything runs on a float64 copy, so float32 round-off does not
drown the signal; the original layer or model is left untouched. Layers with
randomness (Dropout) are re-run from the same generator state on every
evaluation, so the mask is fixed. See ``docs/backprop.md#gradient-checking``.

Checks run on the reference path by default: the layers and NumPy kernels that
``docs/backprop.md`` derives. ``kernels="fast"`` checks the fast path (Numba kernels
and fused steps) instead, ``kernels="both"`` each in turn; the report says which.

    >>> report = check_layer(Conv2D(4, 3), np.random.rand(2, 6, 6, 3))
    >>> print(report)          # a table: tensor, shape, relative error, ...
    >>> report.assert_ok()     # AssertionError naming the tensors that fail
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from minicnn import fused, kernels
from minicnn.layers import Layer
from minicnn.losses import to_categorical
from minicnn.model import Sequential

TOLERANCE = 1e-6


@dataclass
class TensorCheck:
    """The comparison for one tensor: ``x`` (the input) or a parameter name."""

    name: str
    shape: tuple
    relative_error: float
    max_abs_error: float
    checked: int


@dataclass
class GradcheckReport:
    """Per-tensor results of one gradient check; ``print`` it or call :meth:`assert_ok`."""

    title: str
    eps: float
    tolerance: float = TOLERANCE
    checks: list[TensorCheck] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.relative_error < self.tolerance for c in self.checks)

    @property
    def errors(self) -> dict[str, float]:
        """Relative error by tensor name."""
        return {c.name: c.relative_error for c in self.checks}

    def __str__(self) -> str:
        lines = [f"gradcheck {self.title} (float64, eps={self.eps:g}, tolerance {self.tolerance:g})",
                 f"  {'tensor':<16} {'shape':<18} {'rel. error':>11} {'max |diff|':>11} {'checked':>9}"]
        for c in self.checks:
            flag = "" if c.relative_error < self.tolerance else "  <-- FAIL"
            lines.append(f"  {c.name:<16} {str(c.shape):<18} {c.relative_error:>11.2e} "
                         f"{c.max_abs_error:>11.2e} {c.checked:>9}{flag}")
        lines.append("  OK" if self.ok else "  FAILED")
        return "\n".join(lines)

    def assert_ok(self) -> None:
        """Raise an AssertionError with the whole table if any tensor fails."""
        if not self.ok:
            raise AssertionError(f"gradient check failed:\n{self}")


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
    flat = array.reshape(-1)
    grad = np.empty(len(indices))
    for k, i in enumerate(indices):
        original = flat[i]
        flat[i] = original + eps
        f_plus = f()
        flat[i] = original - eps
        f_minus = f()
        flat[i] = original
        grad[k] = (f_plus - f_minus) / (2 * eps)
    return grad


def check_layer(layer: Layer, x: np.ndarray, *, eps: float = 1e-6, max_checks: int | None = None,
                seed: int = 0, tolerance: float = TOLERANCE, kernels: str = "reference") -> GradcheckReport:
    """Check ``layer.backward`` (input and every parameter) on the batch ``x``.

    x: the layer's input, e.g. (N, H, W, C) for Conv2D; it is cast to float64.
    ``max_checks`` limits how many entries of each tensor are checked (chosen
    at random); by default all are. ``kernels``: the path to check, ``"reference"``
    (the default) or ``"fast"``.
    """
    with _on_path(kernels, "check_layer"):
        return _check_layer(layer, x, eps, max_checks, seed, tolerance)


def _check_layer(layer: Layer, x: np.ndarray, eps: float, max_checks: int | None, seed: int,
                 tolerance: float) -> GradcheckReport:
    x = np.array(x, dtype=np.float64)
    layer = copy.deepcopy(layer)
    if not layer.built:
        layer.build(x.shape[1:])
    layer.astype(np.float64)
    rng = np.random.default_rng(seed)
    g = rng.standard_normal((x.shape[0], *layer.output_shape))

    def run() -> tuple[Layer, float, np.ndarray]:
        fresh = copy.deepcopy(layer)  # same generator state, so the same dropout mask
        out = fresh.forward(x, training=True)
        return fresh, float((out * g).sum()), out

    def f() -> float:
        return run()[1]

    fresh, _, _ = run()
    analytic = {"x": fresh.backward(g), **fresh.grads}
    targets = {"x": x, **layer.params}
    report = GradcheckReport(f"{layer.label()}, input {x.shape}, {kernels.current()} kernels", eps, tolerance)
    _compare(report, analytic, targets, f, eps, max_checks, rng)
    return report


def check_model(model: Sequential, x: np.ndarray, y: np.ndarray, *, eps: float = 1e-6,
                max_checks: int | None = 20, seed: int = 0, tolerance: float = TOLERANCE,
                kernels: str = "reference") -> GradcheckReport:
    """Check a whole model end to end: the training loss against every parameter and the input.

    x: (N, *input_shape); y: one-hot (N, K) or integer labels (N,). The loss
    is the fused softmax cross-entropy, in training mode (dropout on, with a
    fixed mask). ``max_checks`` entries of each tensor are checked (20 by
    default; ``None`` checks all, slowly). ``kernels``: the path to check,
    ``"reference"`` (the default), ``"fast"`` or ``"both"`` (one report, each
    tensor checked on each path). The model's own ``kernels`` setting is overridden.
    """
    if kernels == "both":
        report = GradcheckReport(f'model "{model.name}", input {np.shape(x)}, fast and reference kernels',
                                 eps, tolerance)
        for path in ("reference", "fast"):
            one = check_model(model, x, y, eps=eps, max_checks=max_checks, seed=seed, tolerance=tolerance,
                              kernels=path)
            report.checks += [TensorCheck(f"{c.name} [{path}]", c.shape, c.relative_error, c.max_abs_error,
                                          c.checked) for c in one.checks]
        return report
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

    def f() -> float:
        return copy.deepcopy(model).compute_loss_and_gradients(x, y)[0]

    fresh = copy.deepcopy(model)
    _, _, dx = fresh.compute_loss_and_gradients(x, y)
    analytic = {"x": dx}
    targets = {"x": x}
    for layer, fresh_layer in zip(model.layers, fresh.layers, strict=True):
        for key, param in layer.params.items():
            targets[f"{layer.name}/{key}"] = param
            analytic[f"{layer.name}/{key}"] = fresh_layer.grads[key]
    path = kernels.current()
    blocks = [step.name for step in fused.plan(model.layers) if isinstance(step, fused.ConvPoolBlock)]
    how = (f"fast kernels, fused steps {', '.join(blocks)}" if path == "fast" and blocks else
           f"{path} kernels, layer by layer")
    report = GradcheckReport(f'model "{model.name}", input {x.shape}, {how}', eps, tolerance)
    _compare(report, analytic, targets, f, eps, max_checks, np.random.default_rng(seed))
    return report


def _compare(report: GradcheckReport, analytic: dict, targets: dict, f: Callable[[], float],
             eps: float, max_checks: int | None, rng: np.random.Generator) -> None:
    for name, array in targets.items():
        size = array.size
        if max_checks is None or max_checks >= size:
            indices = np.arange(size)
        else:
            indices = rng.choice(size, max_checks, replace=False)
        numeric = numerical_gradient(f, array, indices, eps)
        a = np.asarray(analytic[name]).reshape(-1)[indices]
        report.checks.append(TensorCheck(name, array.shape, relative_error(a, numeric),
                                         float(np.max(np.abs(a - numeric))), len(indices)))


def _on_path(path: str, caller: str):
    """The context in which ``caller`` checks ``path``; ValueError naming ``caller`` for a wrong path."""
    choices = (*kernels.PATHS, "both") if caller == "check_model" else kernels.PATHS
    if path not in choices:
        raise ValueError(f"{caller}: kernels must be one of {choices}; got {path!r}")
    return kernels.use(path)
