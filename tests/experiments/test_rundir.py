"""The output folder: one run at a time (a lock that dies with its holder), parts that name their run."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from minicnn.experiments import rundir

HOLD = """
import sys, time
from minicnn.experiments.rundir import RunLock
with RunLock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(60)
"""


def hold_lock(directory):
    """A child process that takes the lock on ``directory`` and sleeps; returned once it holds it."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    child = subprocess.Popen([sys.executable, "-c", HOLD, str(directory)], stdout=subprocess.PIPE, text=True,
                             env=env)
    assert child.stdout.readline() == "held\n"
    return child


def test_a_second_run_fails_at_once_naming_the_first(tmp_path):
    child = hold_lock(tmp_path)
    try:
        start = time.perf_counter()
        with pytest.raises(rundir.RunDirError) as error, rundir.RunLock(tmp_path):
            pass
        assert time.perf_counter() - start < 1
        holder = json.loads((tmp_path / ".lock").read_text())
        assert holder["pid"] == child.pid and holder["host"] == socket.gethostname()
        assert str(error.value) == (f"{tmp_path} is in use by another run (pid {child.pid} on "
                                    f"{socket.gethostname()}, started {holder['started']}); "
                                    "wait for it to end or choose another folder")
    finally:
        child.kill()
        child.wait()


def test_a_lock_left_by_a_dead_process_is_taken_over(tmp_path):
    child = hold_lock(tmp_path)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert json.loads((tmp_path / ".lock").read_text())["pid"] == child.pid  # left behind
    with rundir.RunLock(tmp_path):
        assert json.loads((tmp_path / ".lock").read_text())["pid"] == os.getpid()
    assert not (tmp_path / ".lock").exists()


def test_the_lock_is_released_for_the_next_run_and_creates_the_folder(tmp_path):
    out = tmp_path / "new" / "run"
    with rundir.RunLock(out):
        assert out.is_dir()
    with rundir.RunLock(out):
        pass


RECORD = rundir.run_record({"folds": 2, "epochs": 3}, "aa")


def test_parts_carry_their_run_record(tmp_path):
    rundir.write_part(tmp_path / "fold_1.json", {"loss": 0.5}, RECORD)
    assert json.loads((tmp_path / "fold_1.json").read_text()) == {"loss": 0.5, "run": RECORD}
    assert rundir.read_part(tmp_path / "fold_1.json", RECORD) == {"loss": 0.5}
    other = rundir.run_record({"folds": 5, "epochs": 3, "limit": 10}, "bb")
    with pytest.raises(rundir.RunDirError, match=r"fold_1.json belongs to another run: folds: 2 there, "
                                                 r"5 here; limit: None there, 10 here; the data differ"):
        rundir.read_part(tmp_path / "fold_1.json", other)
    with pytest.raises(rundir.RunDirError, match=r"fold_1.json belongs to another run"):
        rundir.check_parts(tmp_path, other)
    (tmp_path / "test.json").write_text("{}")
    with pytest.raises(rundir.RunDirError, match=r"test.json is not a part of a minicnn run \(KeyError"):
        rundir.check_parts(tmp_path, RECORD)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_no_part_is_written_with_a_non_finite_number(tmp_path, value):
    with pytest.raises(rundir.NonFiniteScoreError, match=r"fold_1.json: history: val_loss: refusing to"):
        rundir.write_part(tmp_path / "fold_1.json", {"loss": 0.1, "history": {"val_loss": [0.2, value]}},
                          RECORD)
    assert list(tmp_path.iterdir()) == []


def test_check_empty_ignores_only_the_lock(tmp_path):
    with rundir.RunLock(tmp_path):
        rundir.check_empty(tmp_path)
        (tmp_path / "results.json").write_text("{}")
        with pytest.raises(rundir.RunDirError, match="it holds results.json"):
            rundir.check_empty(tmp_path)
