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
- which implementation was checked, and which fused steps.

Checks run on the reference implementation by default: the layers and NumPy kernels that
``docs/backprop.md`` derives. ``implementation="fast"`` checks the fast implementation
(Numba kernels and fused steps) instead, ``implementation="both"`` each in turn.

    >>> report = check_layer(Conv2D(4, 3), np.random.rand(2, 6, 6, 3))
    >>> print(report)          # a table: tensor, shape, relative error, ...
    >>> report.assert_ok()     # AssertionError with the diagnosis if any tensor fails

:func:`check_optimizer` checks an optimizer's step against its textbook formula, and
:func:`check_gradient` the gradient of any scalar function (a loss, say).

The modules, one concept each: ``report`` (the report and its table), ``numeric``
(central differences, relative error, which entries, the hints), ``compare`` (one
tensor against central differences), ``steps`` (a layer, fused step or the loss as a
check sees it), ``implementation`` (the implementation a check runs), ``sections`` (the link to
the docs section each class names in ``docs_section``), and the checks: ``layer`` (:func:`check_layer`,
:func:`check_gradient`), ``model`` (:func:`check_model`), ``optimizer``
(:func:`check_optimizer`).
"""

from minicnn.gradcheck.layer import check_gradient, check_layer
from minicnn.gradcheck.model import check_model
from minicnn.gradcheck.numeric import (
    EDGE_CHECKS,
    choose_entries,
    factor_hint,
    numerical_gradient,
    relative_error,
)
from minicnn.gradcheck.optimizer import check_optimizer
from minicnn.gradcheck.report import TOLERANCE, WORST, Entry, GradcheckReport, Problem, TensorCheck
from minicnn.gradcheck.sections import DOCS, docs_link

__all__ = [
    "DOCS", "EDGE_CHECKS", "TOLERANCE", "WORST", "Entry", "GradcheckReport", "Problem", "TensorCheck",
    "check_gradient", "check_layer", "check_model", "check_optimizer", "choose_entries", "docs_link",
    "factor_hint", "numerical_gradient", "relative_error",
]
