"""What ``fit`` shows while it trains: a bar per epoch, a line per epoch, a line before compiling.

``verbose`` has Keras' meanings: 0 shows nothing; 1 a progress bar during each epoch, then the
epoch's line (``Epoch 3/10 - 4.2s - loss: 0.1234 - accuracy: 0.9612``); 2 the line only;
``"auto"`` (the default of ``fit``) is 1 when standard output is a terminal or a notebook and 2
otherwise, so that a log file (``> log.txt``) gets one line per epoch and no carriage returns.
Bars and lines go to standard output, as Keras'.

The bar tells the truth about speed: its clock and rate start after the epoch's first batch
(:meth:`EpochBar.batch_done`), which may include compiling kernels, so the estimate of the time
left is made from steady batches only. Numba compiles minicnn's kernels the first time they run
with an empty cache (:mod:`minicnn._numba_cache`); :func:`compiling_notice` watches that first
batch and, when Numba does compile a minicnn kernel, prints one line saying so and roughly how
long it takes, and marks the bar "compiling".
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

__all__ = ["EpochBar", "compiling_notice", "epoch_line", "minicnn_kernels", "resolve_verbose"]

VERBOSE = (0, 1, 2, "auto")

SECONDS_TO_COMPILE = 0.4
"""Rough seconds to compile one minicnn kernel on 2 idle cores (none has ``prange`` loops, which
take Numba about twice as long): a cold start of the seed model compiles 26 kernel versions in
12-25 s on the same 2-core Intel VM type, hours apart. The estimate counts every minicnn kernel not
yet compiled (41 kernels in all: about 16 s), so the notice gives a rough figure and says
that a slower or busy machine takes longer; ``benchmarks/cold_start.py`` measures."""


def resolve_verbose(verbose: int | str, where: str) -> int:
    """``verbose`` as 0, 1 or 2: ``"auto"`` is 1 on a terminal or in a notebook, else 2."""
    if isinstance(verbose, bool) or verbose not in VERBOSE:
        raise ValueError(f"{where}: verbose must be 0, 1, 2 or 'auto'; got {verbose!r}")
    if verbose != "auto":
        return verbose
    interactive = getattr(sys.stdout, "isatty", lambda: False)() or "ipykernel" in sys.modules
    return 1 if interactive else 2


def epoch_line(epoch: int, epochs: int, seconds: float, logs: dict[str, float]) -> str:
    """``Epoch 3/10 - 4.2s - loss: 0.1234 - ...``: epoch ``epoch`` (from 0) of ``epochs``."""
    metrics = " - ".join(f"{key}: {value:.4f}" for key, value in logs.items())
    return f"Epoch {epoch + 1}/{epochs} - {seconds:.1f}s - {metrics}"


class EpochBar:
    """The progress bar of one epoch (tqdm, on standard output, gone when the epoch ends).

    Its clock starts again after the first batch, which then counts as done but not in the rate.
    """

    def __init__(self, description: str, steps: int | None, shown: bool):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=steps, desc=description, unit="batch", leave=False, disable=not shown,
                        file=sys.stdout)

    def __enter__(self) -> EpochBar:
        return self

    def __exit__(self, *exc_info) -> None:
        self.bar.close()

    def batch_done(self, logs: dict[str, float]) -> None:
        """One more batch trained; ``logs`` (the running means) go in the postfix."""
        postfix = {key: f"{value:.4f}" for key, value in logs.items()}
        if self.bar.n == 0:  # the warm-up batch: counted, its time kept out of the rate
            self.bar.reset()
            self.bar.initial = self.bar.n = self.bar.last_print_n = 1
            self.bar.set_postfix(postfix)
        else:
            self.bar.set_postfix(postfix, refresh=False)
            self.bar.update()

    def mark_compiling(self) -> None:
        self.bar.set_postfix_str("compiling")


def minicnn_kernels() -> list:
    """Every Numba kernel of the minicnn modules imported so far."""
    from numba.core.dispatcher import Dispatcher

    return [value for name, module in list(sys.modules.items())
            if name == "minicnn" or name.startswith("minicnn.")
            for value in vars(module).values() if isinstance(value, Dispatcher)]


def _on_disk(kernel) -> bool:
    """Whether Numba's cache holds some compiled version of ``kernel`` (its index file exists)."""
    index = getattr(getattr(getattr(kernel, "_cache", None), "_cache_file", None), "_index_path", None)
    return index is not None and Path(index).exists()


def estimated_compile_seconds(compiling) -> float:
    """Rough seconds to compile ``compiling`` (a kernel) and the minicnn kernels neither loaded nor
    in the disk cache: an upper bound, as a model uses only some of them."""
    cold = {kernel for kernel in minicnn_kernels() if not kernel.signatures and not _on_disk(kernel)}
    return SECONDS_TO_COMPILE * len(cold | {compiling})


@contextlib.contextmanager
def compiling_notice(shown: bool, bar: EpochBar) -> Iterator[None]:
    """Within: when Numba starts compiling a minicnn kernel (not loading it from its cache), print
    once ``Compiling minicnn's kernels ...`` with a rough duration, and mark ``bar`` compiling.

    Said only if ``shown`` and the estimate exceeds a second."""
    if not shown:
        yield
        return
    from numba.core import event
    from tqdm.auto import tqdm

    class Listener(event.Listener):
        said = False

        def on_start(self, compile_event: event.Event) -> None:
            kernel = compile_event.data["dispatcher"]
            if self.said or not kernel.py_func.__module__.startswith("minicnn."):
                return
            self.said = True
            seconds = estimated_compile_seconds(kernel)
            if seconds > 1:
                tqdm.write(f"Compiling minicnn's kernels for this model (first run only: about "
                           f"{seconds:.0f} s on 2 idle cores, longer on a busy or slower machine) ...",
                           file=sys.stdout)
                bar.mark_compiling()

        def on_end(self, compile_event: event.Event) -> None: ...

    listener = Listener()
    event.register("numba:compile", listener)
    try:
        yield
    finally:
        event.unregister("numba:compile", listener)
