"""Which of the two implementations of the same maths runs: ``"fast"`` or ``"reference"``.

Every computation in minicnn is written twice:

- ``"reference"``: plain NumPy (the layers' own passes and the ``*_reference`` kernels of
  :mod:`minicnn.kernels`), written to be read next to ``docs/backprop.md``. Gradient checks
  check it by default.
- ``"fast"``: Numba-compiled kernels (``*_numba``) that compute the same numbers, plus the
  fused steps of :mod:`minicnn.fused`. Tests prove the two equal.

The choice is explicit, as Keras' ``implementation=`` argument of ``LSTM`` chooses between
implementations of the same maths: per model with ``model.compile(..., implementation="reference")``,
or for a block of code with ::

    with minicnn.implementation.use("reference"):
        layer.forward(x)

``MINICNN_IMPLEMENTATION=fast|reference`` in the environment sets only the default (fast).
The choice lives in a :class:`contextvars.ContextVar`, so it is local to the thread (and
asyncio task) that makes it and is restored when the ``with`` block ends.

The old names (``compile(kernels=...)``, ``minicnn.kernels.use``/``current``,
``MINICNN_KERNELS``) still work, with a DeprecationWarning: see :func:`accepts_kernels_keyword`
and :mod:`minicnn.kernels`.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
import os
import warnings
from collections.abc import Callable, Iterator
from typing import TypeVar

IMPLEMENTATIONS = ("fast", "reference")

F = TypeVar("F", bound=Callable)


def check(name: str, what: str = "implementation") -> str:
    """Return ``name`` if it names an implementation, else raise a ValueError naming ``what``."""
    if name not in IMPLEMENTATIONS:
        raise ValueError(f"{what} must be one of {IMPLEMENTATIONS}; got {name!r}")
    return name


def _default() -> str:
    """``MINICNN_IMPLEMENTATION`` (or its deprecated old name ``MINICNN_KERNELS``), else ``"fast"``."""
    new, old = os.environ.get("MINICNN_IMPLEMENTATION"), os.environ.get("MINICNN_KERNELS")
    if old is None:
        return check("fast" if new is None else new, "MINICNN_IMPLEMENTATION")
    if new is not None:
        raise ValueError(f"MINICNN_IMPLEMENTATION={new!r} and MINICNN_KERNELS={old!r} are both set; "
                         "MINICNN_KERNELS is the deprecated old name of MINICNN_IMPLEMENTATION: "
                         "unset it")
    warnings.warn("MINICNN_KERNELS is deprecated: set MINICNN_IMPLEMENTATION instead (same values)",
                  DeprecationWarning, stacklevel=2)
    return check(old, "MINICNN_KERNELS")


DEFAULT = _default()
"""The implementation where nothing chose one: ``MINICNN_IMPLEMENTATION`` if set, else ``"fast"``."""

_active: contextvars.ContextVar[str] = contextvars.ContextVar("minicnn_implementation", default=DEFAULT)


def current() -> str:
    """The active implementation: ``"fast"`` or ``"reference"``."""
    return _active.get()


@contextlib.contextmanager
def use(name: str) -> Iterator[str]:
    """Run the ``with`` block on implementation ``name`` (``"fast"`` or ``"reference"``), then
    restore the previous one."""
    token = _active.set(check(name, "implementation.use"))
    try:
        yield name
    finally:
        _active.reset(token)


def accepts_kernels_keyword(function: F) -> F:
    """``function``, taking ``kernels=`` too: the deprecated old name of its ``implementation=``.

    ``kernels=`` warns (DeprecationWarning) and is passed on as ``implementation=``; passing both
    is a TypeError naming ``function``.
    """
    signature = inspect.signature(function)

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        if "kernels" in kwargs:
            kernels = kwargs.pop("kernels")
            if "implementation" in signature.bind_partial(*args, **kwargs).arguments:
                raise TypeError(f"{function.__name__}: got both implementation= and kernels=; kernels= is "
                                "the deprecated old name of implementation=: pass only implementation=")
            warnings.warn(f"{function.__name__}: kernels= is deprecated, use implementation= (same values)",
                          DeprecationWarning, stacklevel=2)
            kwargs["implementation"] = kernels
        return function(*args, **kwargs)

    return wrapper
