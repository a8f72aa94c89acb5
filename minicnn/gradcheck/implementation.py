"""The implementation a check runs (reference or fast), and how a report describes it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from threadpoolctl import threadpool_limits

from minicnn import implementation
from minicnn.gradcheck.steps import CheckedStep


def description(steps: list[CheckedStep]) -> str:
    """What the active implementation runs for ``steps``, as a report says it."""
    blocks = [s.name for s in steps if s.fused]
    if implementation.current() == "reference":
        return "reference implementation (NumPy *_reference kernels), every layer on its own"
    return ("fast implementation (Numba kernels), " +
            (f"fused steps {', '.join(blocks)}" if blocks else "no fused steps"))


@contextlib.contextmanager
def on_implementation(name: str, caller: str) -> Iterator[None]:
    """The context in which ``caller`` checks implementation ``name``; ValueError naming ``caller``
    for a wrong name.

    BLAS runs on one thread meanwhile: a check makes thousands of tiny products, for which
    waking a thread pool costs more than it gives (twenty times more on a busy machine).
    """
    choices = implementation.IMPLEMENTATIONS + (("both",) if caller == "check_model" else ())
    if name not in choices:
        raise ValueError(f"{caller}: implementation must be one of {choices}; got {name!r}")
    with implementation.use(name), threadpool_limits(limits=1, user_api="blas"):
        yield
