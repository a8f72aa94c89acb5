"""Checking one layer's backward, or the gradient of any scalar function, against finite differences."""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np

from minicnn.gradcheck.compare import Checker, compare_tensor
from minicnn.gradcheck.implementation import description, on_implementation
from minicnn.gradcheck.report import TOLERANCE, GradcheckReport, Problem
from minicnn.gradcheck.sections import docs_link
from minicnn.gradcheck.steps import CheckedStep, generator_states
from minicnn.implementation import accepts_kernels_keyword
from minicnn.layers import Layer


@accepts_kernels_keyword
def check_layer(layer: Layer, x: np.ndarray, *, eps: float = 1e-6, max_checks: int | None = None,
                seed: int = 0, tolerance: float = TOLERANCE, implementation: str = "reference",
                factors: list[tuple[float, str]] = ()) -> GradcheckReport:
    """Check the layer's backward pass, its ``backward_pass`` (input and every parameter), on the batch ``x``.

    x: the layer's input, e.g. (N, H, W, C) for Conv2D; it is cast to float64.
    ``max_checks`` limits how many random entries of each tensor are checked (plus
    entries with a nonzero gradient and the corners); by default all are.
    ``implementation``: the one to check, ``"reference"`` (the default) or ``"fast"``
    (``kernels=`` is its deprecated old name). ``factors``: ``(k, explanation)`` pairs the hint may
    name when a gradient is off by a constant factor (see :func:`factor_hint`): ``(1/3, "dW is divided
    by the batch size N = 3")``.
    """
    with on_implementation(implementation, "check_layer"):
        x = np.array(x, dtype=np.float64)
        layer = copy.deepcopy(layer)
        if not layer.built:
            layer.build(x.shape[1:])
        layer.astype(np.float64)
        rng = np.random.default_rng(seed)
        g = rng.standard_normal((x.shape[0], *layer.output_shape))
        step = CheckedStep(layer)
        report = GradcheckReport(f"{layer.label()}, input {x.shape}", eps, tolerance,
                                 checked=description([step]), subject=step.name,
                                 sections={step.name: docs_link(step.kind)},
                                 labels={step.name: step.label})
        state = generator_states([step])  # before the forward pass draws the dropout mask
        analytic = step.analytic(x, g, report.problems)
        check = Checker(eps, max_checks, rng, tolerance, list(factors))
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
    report.checks.append(compare_tensor(name, None, x, analytic, lambda: (f(x), []), eps, None,
                                         np.random.default_rng(0), tolerance, list(factors)))
    return report
