"""The example's folds on a two-worker Dask LocalCluster: the scores of a sequential run, one core per worker.

Needs the cluster extra (``pip install -e ".[cluster]"``); skipped without it.
"""

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("distributed", reason='the Dask tests need pip install -e ".[cluster]"')

from distributed import Client, LocalCluster  # noqa: E402

from minicnn.experiments import parallel  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "mnist_kfold.py"


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("mnist_kfold_on_dask", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _scores(results):
    return [(f["fold"], f["loss"], f["accuracy"], f["history"]) for f in results["folds"]]


def test_folds_on_dask_equal_a_sequential_run(example, cluster, tmp_path):
    argv = ["--dataset", "digits", "--quick", "--verbose", "0"]
    sequential = example.main([*argv, "--out", str(tmp_path / "sequential")])
    on_dask = example.main([*argv, "--out", str(tmp_path / "dask"), "--scheduler", cluster.scheduler_address])
    assert _scores(on_dask) == _scores(sequential)
    assert on_dask["test"]["history"] == sequential["test"]["history"]


def _threads_seen(_):
    import numba
    from threadpoolctl import threadpool_info

    with parallel.thread_share(parallel._tasks_on_this_machine(default=1)) as share:
        blas = {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}
        return share, numba.get_num_threads(), blas


def test_each_dask_worker_gets_its_share_of_the_cores(cluster):
    import os

    share = max(1, len(os.sched_getaffinity(0)) // 2)  # two one-thread workers on this machine
    with Client(cluster) as client:
        assert client.gather(client.map(_threads_seen, [1, 2])) == [(share, share, {share})] * 2


def test_an_unreachable_scheduler_is_one_clear_error_and_leaves_nothing(example, tmp_path):
    import dask

    unreachable = r"^error: cannot reach the Dask scheduler at tcp://127.0.0.1:9: "
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}), \
            pytest.raises(SystemExit, match=unreachable):
        example.main(["--dataset", "digits", "--quick", "--verbose", "0", "--out", str(tmp_path / "out"),
                      "--scheduler", "tcp://127.0.0.1:9"])
    assert list(tmp_path.iterdir()) == []
