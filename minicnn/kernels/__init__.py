"""The hot loops, each written twice: a NumPy reference to read and a Numba kernel to run.

Each kernel pair lives in a module named by its stem (:mod:`~minicnn.kernels.im2col`,
:mod:`~minicnn.kernels.maxpool`): ``<stem>_reference`` in plain NumPy, written to be read
next to ``docs/backprop.md``, and ``<stem>_numba``, compiled by :func:`compiled`, that
computes the same numbers (tests prove each pair equal). Beside them a dispatcher of that
stem, made by :func:`pair`, calls one or the other by the active implementation
(:mod:`minicnn.implementation`). Layout is NHWC throughout.

``use``, ``current``, ``PATHS``, ``DEFAULT`` and ``check_path`` here are the deprecated old
names of :mod:`minicnn.implementation`'s ``use``, ``current``, ``IMPLEMENTATIONS``,
``DEFAULT`` and ``check``: they still work, with a DeprecationWarning.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import TypeVar

import numpy as np

from minicnn import implementation

F = TypeVar("F", bound=Callable)

_RENAMED = {"use": "use", "current": "current", "PATHS": "IMPLEMENTATIONS", "DEFAULT": "DEFAULT",
            "check_path": "check"}
"""The old names of the implementation choice, which lived here, and their names in
:mod:`minicnn.implementation`."""


def __getattr__(name: str):
    if name in _RENAMED:
        warnings.warn(f"minicnn.kernels.{name} is deprecated: use minicnn.implementation.{_RENAMED[name]}",
                      DeprecationWarning, stacklevel=2)
        return getattr(implementation, _RENAMED[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def compiled(reassociate: bool = False, contract: bool = False) -> Callable[[F], F]:
    """Numba's ``njit`` as every minicnn kernel uses it.

    ``cache``: compiled once and cached on disk, wherever :mod:`minicnn._numba_cache`
    found a writable folder; ``nogil``: a kernel runs without Python's GIL, so minicnn's
    threads (:func:`minicnn.threads.for_each_block`) run kernels side by side;
    ``error_model="numpy"``: no Python-style zero-division checks, which would stop loops
    from vectorizing (no kernel divides by anything that can be 0). No kernel is
    ``parallel=True``: each runs on one thread, over a run of images or rows, and minicnn's
    threads share the runs out (:func:`minicnn.threads.for_each_run`); Numba's ``prange``
    lowering took about as long to compile as all the rest. Inside a loop a kernel indexes
    arrays rather than making views of them where it can: each view costs two atomic
    reference-count updates. ``reassociate=True`` lets LLVM reorder floating-point sums
    (fast-math ``reassoc`` only), so that a loop summing into one value runs as several SIMD
    partial sums; the rounding then depends on the vector width the machine's code uses, never
    on the thread count. ``contract=True`` lets LLVM fuse a multiplication and the addition of
    its product into one FMA instruction (fast-math ``contract``): one rounding instead of two,
    and half the instructions in a loop of multiply-adds.
    """
    from numba import njit

    from minicnn._numba_cache import CACHE

    fastmath = {flag for flag, wanted in (("reassoc", reassociate), ("contract", contract)) if wanted}
    return njit(cache=CACHE, nogil=True, error_model="numpy", fastmath=fastmath or False)


NO_WINNERS = np.zeros((1, 1, 1, 1), dtype=np.uint8)
"""What a kernel that can pool takes as its ``argmax`` (N, PH, PW, F) when it does not: it is never read
or written then, and one array type keeps one compiled version."""


def pair(reference: F, numba: F) -> F:
    """A function that calls ``reference`` or ``numba``, by the active implementation."""

    @functools.wraps(reference)
    def dispatch(*args, **kwargs):
        return (numba if implementation.current() == "fast" else reference)(*args, **kwargs)

    dispatch.__doc__ = (f":func:`{reference.__name__}` on the reference implementation, "
                        f":func:`{numba.__name__}` on the fast one.")
    return dispatch


def conv_output_size(size: int, window: int, stride: int, pad_before: int = 0, pad_after: int = 0) -> int:
    """Length of one spatial axis after a convolution or pooling window ``window`` long slides over it."""
    return (size + pad_before + pad_after - window) // stride + 1


def window_slice(start: int, count: int, stride: int) -> slice:
    """The positions ``start, start + stride, ...`` (``count`` of them) as a slice."""
    return slice(start, start + stride * (count - 1) + 1, stride)
