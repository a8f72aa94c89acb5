"""Running independent trainings side by side on joblib, each with its share of the cores.

:func:`run_tasks` hands the calls to ``joblib.Parallel``: local processes (loky)
by default, or any joblib backend by name, such as ``"dask"`` (with a
``dask.distributed.Client`` open) or ``"ray"`` (after ``ray.util.joblib.register_ray()``). Inside the worker,
:func:`thread_share` sets BLAS's threads (threadpoolctl) and Numba's threads to
the machine's cores divided by the tasks that run on it at once, so two folds on
two cores each get one core instead of fighting over both. minicnn's own products run
BLAS on one thread whatever the limit (:func:`minicnn.threads.one_blas_thread`), which is
what makes a fold's numbers the same in any worker. Local worker processes (loky) die with
the process that started them, however it dies (:func:`die_with`), so no worker goes on
training for a run that was stopped. BLAS's limit is global to a process,
so with the ``"threading"`` backend it is held at one thread around the whole run, by the
calling thread, rather than set in each task (where one task's end would lift it under
the others); Numba's thread count is per thread and is set in each task.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

from minicnn.threads import one_blas_thread


def run_tasks(function: Callable, calls: Iterable[tuple], *, n_jobs: int, backend: str | None
              ) -> Iterator[Any]:
    """``function(*args)`` for each ``args`` of ``calls``, in workers; results in order of completion.

    ``n_jobs`` and ``backend`` as in ``joblib.Parallel`` (-1: every core, or every
    thread of a Dask cluster).
    """
    import joblib
    from joblib.parallel import LokyBackend, get_active_backend

    calls = list(calls)
    chosen = {"n_jobs": n_jobs, **({"backend": backend} if backend else {})}
    with joblib.parallel_config(**chosen):
        concurrent = max(1, min(joblib.effective_n_jobs(), len(calls)))
        in_threads = backend == "threading"
        # loky's workers are this process' children; other backends' workers are not ours to end
        parent = os.getpid() if isinstance(get_active_backend()[0], LokyBackend) else None
        parallel = joblib.Parallel(return_as="generator_unordered")
        # The arguments one by one, not in a tuple: Dask's backend then sends each large array
        # to the cluster once, instead of once per call.
        tasks = (joblib.delayed(_with_thread_share)(concurrent, not in_threads, parent, function, *args)
                 for args in calls)
        with one_blas_thread() if in_threads else nullcontext():
            yield from parallel(tasks)


def _with_thread_share(concurrent: int, blas: bool, parent: int | None, function: Callable, *args) -> Any:
    if parent is not None:
        die_with(parent)
    with thread_share(_tasks_on_this_machine(concurrent), blas=blas):
        return function(*args)


def die_with(parent: int) -> None:
    """Have this worker process killed (SIGKILL) when ``parent``, the process that started it, ends.

    On Linux, ``prctl(PR_SET_PDEATHSIG)``: the kernel sends the signal when the parent dies,
    even by SIGKILL; elsewhere nothing is set. A worker whose parent is already gone exits
    at once. Nothing happens in ``parent`` itself (joblib runs a lone task there).
    """
    if os.getpid() == parent:
        return
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)


@contextmanager
def thread_share(tasks: int, blas: bool = True) -> Iterator[int]:
    """Within the block, Numba and (unless ``blas=False``) BLAS use ``cores // tasks`` threads
    (at least 1); yields that number. (Numba's threads are its own pool: OpenMP runtimes that
    other libraries bring are left alone.)"""
    from threadpoolctl import threadpool_limits

    threads = threads_per_task(tasks)
    try:
        import numba
    except ImportError:
        numba = None
    previous = numba.get_num_threads() if numba else None
    if numba:
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        with threadpool_limits(limits=threads, user_api="blas") if blas else nullcontext():
            yield threads
    finally:
        if numba:
            numba.set_num_threads(previous)


def threads_per_task(tasks: int) -> int:
    """The threads each of ``tasks`` tasks running at once on this machine gets: its share of the cores."""
    return max(1, _cores() // tasks)


def _cores() -> int:
    """The cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _tasks_on_this_machine(default: int) -> int:
    """How many tasks run at once here: in a Dask worker, the threads of all Dask workers on this host."""
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):
        return default
    workers = worker.client.scheduler_info(n_workers=-1)["workers"].values()
    return max(1, sum(w["nthreads"] for w in workers if w["host"] == worker.ip))
