"""Folds in parallel on joblib: the numbers of a sequential run, and each worker its share of the cores."""

import os
from functools import partial

import pytest

import minicnn
from minicnn.experiments import parallel, protocol
from minicnn.experiments.crossval import cross_validate
from minicnn.experiments.data import load_data


def _digits_folds(**kwargs):
    data = load_data("digits").limited(400)
    return cross_validate(partial(protocol.fold_model, data.x_cv.shape[1:], data.num_classes, 3),
                          data.x_cv, minicnn.to_categorical(data.y_cv, data.num_classes), n_splits=2,
                          epochs=2, batch_size=64, verbose=0, fit_kwargs=partial(protocol.fold_fit_kwargs, 3),
                          **kwargs)


def _scores(cv):
    return [(f.fold, f.loss, f.accuracy, f.history) for f in cv.folds]


def test_parallel_folds_equal_sequential_ones_bit_for_bit(tmp_path):
    sequential = _digits_folds()
    in_parallel = _digits_folds(n_jobs=2, out_dir=tmp_path)
    assert _scores(in_parallel) == _scores(sequential)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fold_1.json", "fold_2.json"]
    assert _scores(_digits_folds(folds=[2])) == _scores(sequential)[1:]


def _threads_seen(_):
    import numba
    from threadpoolctl import threadpool_info

    blas = {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}
    return numba.get_num_threads(), blas


@pytest.mark.parametrize("backend", [None, "threading"])  # loky presets thread limits, threads have none
def test_each_worker_gets_its_share_of_the_cores(backend):
    share = max(1, len(os.sched_getaffinity(0)) // 2)
    seen = list(parallel.run_tasks(_threads_seen, [(1,), (2,)], n_jobs=2, backend=backend))
    # Threads share one BLAS limit, held at one thread for the run (minicnn's products need no more)
    blas = 1 if backend == "threading" else share
    assert seen == [(share, {blas})] * 2


def test_thread_share_is_undone_after_the_block():
    import numba

    before = numba.get_num_threads()
    with parallel.thread_share(tasks=64) as threads:
        assert threads == 1 and numba.get_num_threads() == 1
    assert numba.get_num_threads() == before


@pytest.mark.parametrize("backend", ["threading"])
def test_any_joblib_backend_by_name(backend):
    assert _scores(_digits_folds(folds=[1], n_jobs=2, backend=backend)) == _scores(_digits_folds(folds=[1]))
