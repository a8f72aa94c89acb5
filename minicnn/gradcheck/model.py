"""Checking a whole model: end to end (the loss against the input and every parameter), and step
by step (each layer's or fused step's backward, and the loss's, against its own forward)."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np

from minicnn import implementation
from minicnn.gradcheck.compare import Checker
from minicnn.gradcheck.implementation import description, on_implementation
from minicnn.gradcheck.report import TOLERANCE, GradcheckReport, Problem, TensorCheck
from minicnn.gradcheck.sections import docs_link
from minicnn.gradcheck.steps import CheckedStep, LossStep, generator_states, restore_generators
from minicnn.implementation import accepts_kernels_keyword
from minicnn.losses import CategoricalCrossentropy, to_categorical
from minicnn.models import Sequential


@accepts_kernels_keyword
def check_model(model: Sequential, x: np.ndarray, y: np.ndarray, *, eps: float = 1e-6,
                max_checks: int | None = 20, seed: int = 0, tolerance: float = TOLERANCE,
                implementation: str = "reference") -> GradcheckReport:
    """Check a whole model: end to end, and each step's backward against its own forward.

    x: ``(N, *input_shape)``; y: one-hot (N, K) or integer labels (N,). The loss is the
    model's (cross-entropy on the logits), in training mode (dropout on, with fixed
    masks). Per tensor, ``max_checks`` random entries (20 by default), as many entries
    with a nonzero analytic gradient, and the corners are checked; ``max_checks=None``
    checks every entry (exhaustive, slow). ``implementation``: the one to check,
    ``"reference"`` (the default), ``"fast"`` or ``"both"`` (one report, each tensor
    checked in each); ``kernels=`` is its deprecated old name. The model's own
    ``implementation`` setting is overridden.
    """
    if implementation == "both":
        parts = [check_model(model, x, y, eps=eps, max_checks=max_checks, seed=seed, tolerance=tolerance,
                             implementation=name) for name in ("reference", "fast")]
        return _merge(parts, ("reference", "fast"))
    with on_implementation(implementation, "check_model"):
        return _check_model(model, x, y, eps, max_checks, seed, tolerance)


def _check_model(model: Sequential, x: np.ndarray, y: np.ndarray, eps: float, max_checks: int | None,
                 seed: int, tolerance: float) -> GradcheckReport:
    x = np.array(x, dtype=np.float64)
    model = copy.deepcopy(model)
    model.implementation = None  # follow the implementation being checked
    if not model.built:
        model.build((None, *x.shape[1:]))
    model.astype(np.float64)
    y = np.asarray(y)
    y = to_categorical(y, model.output_shape[-1], np.float64) if y.ndim == 1 else y.astype(np.float64)
    loss = LossStep(model.loss or CategoricalCrossentropy(from_logits=not model.ends_in_softmax), y)
    steps = _model_steps(model)
    report = GradcheckReport(f'model "{model.name}", input {x.shape}', eps, tolerance,
                             checked=description(steps),
                             sections={s.name: docs_link(s.kind) for s in steps}
                             | {"loss": docs_link(loss.loss_fn)},
                             labels={s.name: s.label for s in steps} | {"loss": "the loss"})
    check = Checker(eps, max_checks, np.random.default_rng(seed), tolerance, _batch_size_factors(model, x))
    start = generator_states(steps)
    checked = _check_step_by_step(steps, loss, x, check, report)
    if checked is not None:
        report.checks += _check_end_to_end(model, steps, loss, x, *checked, check, start)
    return report


def _check_step_by_step(steps: list[CheckedStep], loss: LossStep, x: np.ndarray, check: Checker,
                        report: GradcheckReport) -> tuple[np.ndarray, list] | None:
    """Each step's backward, and the loss's, against its own forward, into ``report.step_checks``.

    Returns the input's analytic gradient and ``(step, analytic)`` for each checked step, from the
    last; None when a step (or the loss) passes no gradient on, so nothing below it can be checked.
    """
    # One forward pass, keeping each step's input and generator state, then the loss.
    inputs, states, out = [], [], x
    for step in steps:
        inputs.append(out.copy())
        states.append(generator_states([step]))
        out = step.forward(out)
    dz = loss.analytic(out, None, report.problems)
    if dz is None:
        return None
    report.step_checks += loss.compare(out, dz, check)

    # Backward, step by step: each step's analytic gradients, checked where they are made.
    upstream, done = dz["z"], []
    for i in reversed(range(len(steps))):
        analytic = steps[i].analytic(inputs[i], upstream, report.problems, forward_done=True)
        if "x" not in analytic:
            return None  # no gradient to pass on: nothing below this step, nor end to end, can be checked
        report.step_checks += steps[i].compare(inputs[i], upstream, analytic, check, state=states[i])
        done.append((steps[i], analytic))
        upstream = analytic["x"]
    return upstream, done


def _check_end_to_end(model: Sequential, steps: list[CheckedStep], loss: LossStep, x: np.ndarray,
                      dx: np.ndarray, done: list, check: Checker, start: list) -> list[TensorCheck]:
    """The loss itself against the input and every parameter, replaying the generators from ``start``.
    The loss is the model's training loss: with its weight penalties, whose gradients join the steps'."""
    def loss_and_switches() -> tuple[float, list]:
        restore_generators(start)
        out, switches = x, []
        for step in steps:
            out = step.forward(out)
            switches += step.switches()
        return loss.value(out) + model.regularization_loss(), switches

    end_to_end = {"x": (x, dx)}
    penalty_gradients = model.regularization_gradients()
    for step, analytic in reversed(done):
        for key, param in step.params.items():
            if key in analytic:
                name = step.param_key(key)
                end_to_end[name] = (param, analytic[key] + penalty_gradients.get(name, 0.0))
    return [check.tensor(name, None, target, grad, loss_and_switches)
            for name, (target, grad) in end_to_end.items()]


def _model_steps(model: Sequential) -> list[CheckedStep]:
    """The steps the active implementation runs: every layer in the reference one, fused blocks in the
    fast one.
    The last one stops at the logits when the loss fuses the final softmax."""
    steps = model.layers if implementation.current() == "reference" else model.steps()
    return [CheckedStep(step, affine_only=model.ends_in_softmax and i == len(steps) - 1)
            for i, step in enumerate(steps)]


def _merge(parts: list[GradcheckReport], names: tuple[str, ...]) -> GradcheckReport:
    first = parts[0]
    report = GradcheckReport(first.title, first.eps, first.tolerance, sections=first.sections,
                             labels=first.labels, checked="; ".join(p.checked for p in parts))
    for part, name in zip(parts, names, strict=True):
        report.checks += [dataclasses.replace(c, name=f"{c.name} [{name}]") for c in part.checks]
        report.step_checks += [dataclasses.replace(c, name=f"{c.name} [{name}]") for c in part.step_checks]
        report.problems += [Problem(p.step, f"[{name}] {p.message}") for p in part.problems]
        report.sections |= part.sections
        report.labels |= part.labels
    return report


def _batch_size_factors(model: Sequential, x: np.ndarray) -> list[tuple[float, str]]:
    n = x.shape[0]
    if n == 1:
        return []
    return [(float(n), f"the 1/N of the mean loss is missing (N = {n}, the batch size)"),
            (1.0 / n, f"divided by N = {n} once too often")]
