"""The two paths every computation can take, and the hot loops written for each.

minicnn runs every kernel in one of two ways:

- ``"reference"``: plain NumPy (``*_reference`` functions), written to be read next to
  ``docs/backprop.md``. Gradient checks check this path by default.
- ``"fast"``: Numba-compiled loops (``*_numba`` functions) that compute the same
  numbers, plus the fused steps of :mod:`minicnn.fused`. Tests prove each pair equal.

The path is chosen explicitly: per model with ``model.compile(..., kernels="reference")``,
or for a block of code with ::

    with minicnn.kernels.use("reference"):
        layer.forward(x)

``MINICNN_KERNELS=fast|reference`` in the environment sets only the default (fast).
The choice lives in a :class:`contextvars.ContextVar`, so it is local to the thread
(and asyncio task) that makes it and is restored when the ``with`` block ends.

Each kernel pair lives in a module named by its stem (:mod:`~minicnn.kernels.im2col`,
:mod:`~minicnn.kernels.maxpool`) beside a dispatcher of that stem, made by :func:`pair`,
that calls one or the other by the active path. Layout is NHWC throughout.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
from collections.abc import Callable, Iterator
from typing import TypeVar

PATHS = ("fast", "reference")

F = TypeVar("F", bound=Callable)


def _default_path() -> str:
    path = os.environ.get("MINICNN_KERNELS", "fast")
    if path not in PATHS:
        raise ValueError(f"MINICNN_KERNELS must be one of {PATHS}; got {path!r}")
    return path


DEFAULT = _default_path()
"""The path where nothing chose one: ``MINICNN_KERNELS`` if set, else ``"fast"``."""

_active: contextvars.ContextVar[str] = contextvars.ContextVar("minicnn_kernels", default=DEFAULT)


def check_path(path: str, what: str = "kernels") -> str:
    """Return ``path`` if it names a path, else raise a ValueError naming ``what``."""
    if path not in PATHS:
        raise ValueError(f"{what} must be one of {PATHS}; got {path!r}")
    return path


def current() -> str:
    """The active path: ``"fast"`` or ``"reference"``."""
    return _active.get()


@contextlib.contextmanager
def use(path: str) -> Iterator[str]:
    """Run the ``with`` block on ``path`` (``"fast"`` or ``"reference"``), then restore the previous one."""
    token = _active.set(check_path(path, "kernels.use"))
    try:
        yield path
    finally:
        _active.reset(token)


def compiled(parallel: bool = False, reassociate: bool = False) -> Callable[[F], F]:
    """Numba's ``njit`` as every minicnn kernel uses it.

    ``cache``: compiled once and cached on disk, wherever :mod:`minicnn._numba_cache`
    found a writable folder; ``error_model="numpy"``: no Python-style zero-division
    checks, which would stop loops from vectorizing (no kernel divides by anything that
    can be 0). ``parallel=True`` for kernels with ``prange`` loops. ``reassociate=True``
    lets LLVM reorder floating-point sums (fast-math ``reassoc`` only), so that a loop
    summing into one value runs as several SIMD partial sums; the rounding then depends
    on the vector width the machine's code uses, never on the thread count.
    """
    from numba import njit

    from minicnn._numba_cache import CACHE

    return njit(parallel=parallel, cache=CACHE, error_model="numpy",
                fastmath={"reassoc"} if reassociate else False)


def pair(reference: F, numba: F) -> F:
    """A function that calls ``reference`` on the reference path and ``numba`` on the fast path."""

    @functools.wraps(reference)
    def dispatch(*args, **kwargs):
        return (numba if _active.get() == "fast" else reference)(*args, **kwargs)

    dispatch.__doc__ = (f":func:`{reference.__name__}` on the reference path, "
                        f":func:`{numba.__name__}` on the fast path.")
    return dispatch


def conv_output_size(size: int, kernel: int, stride: int, pad_before: int = 0, pad_after: int = 0) -> int:
    """Length of one spatial axis after a convolution or pooling window slides over it."""
    return (size + pad_before + pad_after - kernel) // stride + 1


def window_slice(start: int, count: int, stride: int) -> slice:
    """The positions ``start, start + stride, ...`` (``count`` of them) as a slice."""
    return slice(start, start + stride * (count - 1) + 1, stride)
