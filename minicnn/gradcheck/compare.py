"""Comparing one tensor: its analytic gradient against central differences, into a TensorCheck."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from minicnn.gradcheck.numeric import central_differences, choose_entries, factor_hint, relative_error
from minicnn.gradcheck.report import WORST, Entry, TensorCheck


@dataclass
class Checker:
    """The settings of one check: ``eps``, sampling, tolerance, and the factors hints may name."""

    eps: float
    max_checks: int | None
    rng: np.random.Generator
    tolerance: float
    factors: list[tuple[float, str]]

    def tensor(self, name: str, step: str | None, target: np.ndarray, analytic: np.ndarray,
               f: Callable[[], tuple[float, list]], factors: list[tuple[float, str]] = ()) -> TensorCheck:
        """Compare ``analytic`` with central differences of ``f`` on the chosen entries of ``target``."""
        return compare_tensor(name, step, target, analytic, f, self.eps, self.max_checks, self.rng,
                              self.tolerance, self.factors + list(factors))


def compare_tensor(name: str, step: str | None, target: np.ndarray, analytic: np.ndarray,
                   f: Callable[[], tuple[float, list]], eps: float, max_checks: int | None,
                   rng: np.random.Generator, tolerance: float, factors: list) -> TensorCheck:
    """Compare ``analytic`` with central differences of ``f`` on the chosen entries of ``target``."""
    indices = choose_entries(analytic, max_checks, rng)
    numeric, kinks = central_differences(f, target, indices, eps)
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
