"""The numerics of a gradient check: central differences, the relative error, which entries to
check, and a hint from how the analytic and numeric gradients differ."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from fractions import Fraction

import numpy as np

EDGE_CHECKS = 2
"""Sampled checks also take this many random entries on each face of a tensor (first or last index)."""


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
    return central_differences(lambda: (f(), []), array, indices, eps)[0]



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


def central_differences(f: Callable[[], tuple[float, list]], array: np.ndarray, indices: np.ndarray,
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
