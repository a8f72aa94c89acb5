"""Checking an optimizer's updates against its textbook formula (docs/backprop.md#adam)."""

from __future__ import annotations

import copy

import numpy as np

from minicnn import optimizers
from minicnn.gradcheck.implementation import on_implementation
from minicnn.gradcheck.numeric import factor_hint, relative_error
from minicnn.gradcheck.report import TOLERANCE, WORST, Entry, GradcheckReport, Problem, TensorCheck
from minicnn.gradcheck.sections import docs_link
from minicnn.implementation import accepts_kernels_keyword


@accepts_kernels_keyword
def check_optimizer(optimizer: optimizers.Optimizer, *, steps: int = 3, seed: int = 0,
                    tolerance: float = TOLERANCE, implementation: str = "reference") -> GradcheckReport:
    """Check ``steps`` updates of ``optimizer`` against its textbook formula, on float64 parameters.

    A fresh copy of the optimizer updates two random parameters with random gradients; each step's
    update is compared with the formula of ``docs/backprop.md#adam`` (Adam: the paper's Algorithm 1
    with Keras' epsilon hat; SGD: Keras' momentum rule). Per step, the report gives the relative
    error of the update and, when the update is off by one factor, the factor. ``implementation``:
    the one to check, ``"reference"`` (the default) or ``"fast"`` (``kernels=`` is its deprecated
    old name).
    """
    with on_implementation(implementation, "check_optimizer"):
        opt = copy.deepcopy(optimizer)
        opt.iterations, opt.state = 0, {}
        rng = np.random.default_rng(seed)
        params = {"w": rng.standard_normal((3, 4)), "b": rng.standard_normal(5)}
        textbook = _Textbook(opt)
        report = GradcheckReport(f"{type(opt).__name__}({opt.get_config()})", 0.0, tolerance,
                                 checked=f"{implementation} implementation, {steps} steps, each update "
                                         "against the formula", subject=type(opt).__name__,
                                 sections={type(opt).__name__: docs_link(type(opt))},
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
