"""The path a check runs on (reference or fast), and how a report describes it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from threadpoolctl import threadpool_limits

from minicnn import kernels
from minicnn.gradcheck.steps import CheckedStep


def active_path() -> str:
    return kernels.current()


def path_description(steps: list[CheckedStep]) -> str:
    path = active_path()
    blocks = [s.name for s in steps if s.fused]
    if path == "reference":
        return "reference path (NumPy *_reference kernels), every layer on its own"
    return ("fast path (Numba kernels), " +
            (f"fused steps {', '.join(blocks)}" if blocks else "no fused steps"))


@contextlib.contextmanager
def on_path(path: str, caller: str) -> Iterator[None]:
    """The context in which ``caller`` checks ``path``; ValueError naming ``caller`` for a wrong path.

    BLAS runs on one thread meanwhile: a check makes thousands of tiny products, for which
    waking a thread pool costs more than it gives (twenty times more on a busy machine).
    """
    choices = (*kernels.PATHS, "both") if caller == "check_model" else kernels.PATHS
    if path not in choices:
        raise ValueError(f"{caller}: kernels must be one of {choices}; got {path!r}")
    with kernels.use(path), threadpool_limits(limits=1, user_api="blas"):
        yield
