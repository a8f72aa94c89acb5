"""Faults injected into runs of examples/mnist_kfold.py: links, folders that are no run, damaged parts and
checkpoints, a full disk, unusable --out folders, signals to real processes, workers of a killed run, a
terminal that is not UTF-8. Each ends in one clear line, touches nothing outside the run folder, and
keeps what a --resume needs. docs/reliability.md names these tests."""

import errno
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from minicnn.experiments import rundir

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "mnist_kfold.py"
DIGITS = ["--dataset", "digits", "--limit", "300", "--folds", "2", "--epochs", "2", "--verbose", "0"]


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("mnist_kfold_under_faults", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def without_test_plots(example, monkeypatch):
    """The final model's plots (seconds of matplotlib each) are not what these tests are about."""
    monkeypatch.setattr(example, "write_test_outputs", lambda *args: "(the test outputs)")


@pytest.fixture(scope="module")
def finished_run(example, tmp_path_factory):
    """A whole run on digits, 2 folds of 2 epochs: (its folder, the results main returned)."""
    out = tmp_path_factory.mktemp("finished") / "out"
    with pytest.MonkeyPatch.context() as monkeypatch:
        without_test_plots(example, monkeypatch)
        return out, example.main([*DIGITS, "--out", str(out)])


SLOW_CHECKPOINTS = """
import runpy, sys, time
from minicnn.experiments import checkpoints
write_part = checkpoints.write_part
def write_and_pause(*args, **kwargs):
    write_part(*args, **kwargs)
    time.sleep(0.5)
checkpoints.write_part = write_and_pause
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""
"""Runs the example with a pause after each epoch checkpoint: a digits epoch takes milliseconds, too short
a window for a test to see its checkpoint before the fold ends and removes it."""


def start_script(*argv, env=None, slow_checkpoints=False, **kwargs):
    """The example in a process of its own, as a user starts it (pausing after each epoch checkpoint if
    ``slow_checkpoints``: the results are the same, the timing leaves a test time to act)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg", **(env or {})}
    start = [sys.executable, "-c", SLOW_CHECKPOINTS] if slow_checkpoints else [sys.executable]
    return subprocess.Popen([*start, str(EXAMPLE), *map(str, argv)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def wait_for(condition, seconds=120.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def interrupted_run(tmp_path_factory):
    """A run stopped by SIGTERM after its first epoch checkpoint: (folder, exit code, stdout, stderr)."""
    out = tmp_path_factory.mktemp("interrupted") / "out"
    process = start_script(*DIGITS, "--out", out, slow_checkpoints=True)
    wait_for(lambda: (out / "checkpoints" / "fold_1" / "epoch_1.json").exists())
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=60)
    return out, process.returncode, stdout, stderr


def scores(results):
    return ([(f["fold"], f["loss"], f["accuracy"], f["history"]) for f in results["folds"]],
            (results["test"]["loss"], results["test"]["accuracy"], results["test"]["history"]))


def error_of(call, *args) -> str:
    """The one line a SystemExit(1) of ``call(*args)`` prints."""
    with pytest.raises(SystemExit) as stopped:
        call(*args)
    message = str(stopped.value.code)
    assert message.startswith("error: ") and "\n" not in message and "Traceback" not in message
    return message


def listing(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


# Links and folders that are no run

def test_a_dangling_symlink_as_lock_is_refused_and_its_target_never_created(tmp_path):
    target = tmp_path / "elsewhere" / "victim"
    target.parent.mkdir()
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / ".lock").symlink_to(target)
    with pytest.raises(rundir.RunDirError, match=r"\.lock is a symbolic link"), \
            rundir.RunLock(tmp_path / "run"):
        pass
    assert not os.path.lexists(target)
    (tmp_path / "victim.txt").write_text("mine")
    (tmp_path / "run" / ".lock").unlink()
    (tmp_path / "run" / ".lock").symlink_to(tmp_path / "victim.txt")
    with pytest.raises(rundir.RunDirError), rundir.RunLock(tmp_path / "run"):
        pass
    assert (tmp_path / "victim.txt").read_text() == "mine"


@pytest.mark.parametrize("flag", ["--resume", "--merge"])
def test_resume_and_merge_refuse_a_folder_that_is_not_a_run_and_write_nothing(example, tmp_path, flag):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "results.json").write_text('{"my": "results"}')
    (mine / "confusion_matrix.png").write_bytes(b"my picture")
    before = listing(mine)
    message = error_of(example.main, [*DIGITS, flag, str(mine)] if flag == "--resume" else [flag, str(mine)])
    assert str(mine) in message and "not the folder of a minicnn run" in message
    assert listing(mine) == before


def test_links_in_a_run_folder_are_refused_naming_them(example, finished_run, tmp_path):
    victim = tmp_path / "victim.json"
    victim.write_text('{"keep": "me"}')
    for name in ("results.json", "fold_2.json", "checkpoints"):
        copy = tmp_path / name.replace(".", "_")
        shutil.copytree(finished_run[0], copy)
        if (copy / name).exists():
            (copy / name).unlink()
        (copy / name).symlink_to(victim if name.endswith(".json") else tmp_path)
        for argv in ([*DIGITS, "--resume", str(copy)], ["--merge", str(copy)]):
            message = error_of(example.main, argv)
            assert f"{copy / name} is a symbolic link" in message
    assert victim.read_text() == '{"keep": "me"}'


def test_a_part_is_never_written_through_a_link(tmp_path):
    victim = tmp_path / "victim.json"
    victim.write_text("mine")
    (tmp_path / "fold_1.json").symlink_to(victim)
    with pytest.raises(rundir.RunDirError, match="fold_1.json is a symbolic link"):
        rundir.write_part(tmp_path / "fold_1.json", {"loss": 1.0}, {"config": {}})
    with pytest.raises(rundir.RunDirError, match="fold_1.json is a symbolic link"):
        rundir.read_part(tmp_path / "fold_1.json")
    assert victim.read_text() == "mine"


# Parts and checkpoints

def _damage(part: dict, how: str) -> dict:
    if how == "string score":
        part["accuracy"] = "0.9"
    elif how == "nan in history":
        part["history"]["val_loss"][0] = float("nan")
    elif how == "missing key":
        del part["loss"]
    elif how == "accuracy above 1":
        part["accuracy"] = 1.7
    elif how == "negative loss":
        part["loss"] = -0.5
    elif how == "another fold's number":
        part["fold"] = 1
    elif how == "overlapping folds":
        part["val_ranges"] = [[0, part["val_size"]]]
        part["train_ranges"] = [[part["val_size"], part["val_size"] + part["train_size"]]]
    elif how == "more epochs than the run":
        part["history"] = {key: values * 2 for key, values in part["history"].items()}
    return part


@pytest.mark.parametrize("how, field", [
    ("string score", "accuracy: expected a number in [0, 1]; got '0.9'"),
    ("nan in history", "history: val_loss: expected a finite number; got nan"),
    ("missing key", "lacks loss"),
    ("accuracy above 1", "accuracy: expected a number in [0, 1]; got 1.7"),
    ("negative loss", "loss: expected a finite number >= 0; got -0.5"),
    ("another fold's number", "fold: expected the fold number 2"),
    ("overlapping folds", "val_ranges: expected [[150, 300]] (after the folds before it)"),
    ("more epochs than the run", "history: loss: expected a list of one number per epoch run (1 to 2"),
    ("truncated", "is not a part of a minicnn run (JSONDecodeError"),
])
def test_merge_checks_parts_against_the_schema_naming_file_and_field(example, finished_run, tmp_path, how,
                                                                     field):
    gathered = tmp_path / "gathered"
    gathered.mkdir()
    for name in ("fold_1.json", "fold_2.json", "test.json"):
        shutil.copy(finished_run[0] / name, gathered)
    text = (gathered / "fold_2.json").read_text()
    (gathered / "fold_2.json").write_text(text[:len(text) // 2] if how == "truncated" else
                                          json.dumps(_damage(json.loads(text), how)))
    message = error_of(example.main, ["--merge", str(gathered)])
    assert message.startswith(f"error: {gathered / 'fold_2.json'}") and field in message
    assert sorted(p.name for p in gathered.iterdir()) == ["fold_1.json", "fold_2.json", "test.json"]


def test_a_damaged_fold_file_on_resume_is_one_line_naming_it(example, finished_run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(finished_run[0], copy)
    part = json.loads((copy / "fold_1.json").read_text())
    (copy / "fold_1.json").write_text(json.dumps(_damage(part, "string score")))
    (copy / "results.json").unlink()
    assert f"{copy / 'fold_1.json'}: accuracy" in error_of(example.main, [*DIGITS, "--resume", str(copy)])


def test_a_damaged_checkpoint_on_resume_is_one_line_naming_it(example, interrupted_run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(interrupted_run[0], copy)
    checkpoint = next((copy / "checkpoints").glob("fold_*/epoch_*.npz"))
    checkpoint.write_bytes(checkpoint.read_bytes()[:100])
    message = error_of(example.main, [*DIGITS, "--resume", str(copy)])
    assert str(checkpoint) in message and "delete" in message
    assert not (copy / ".lock").exists()


# Disk and folders

def test_a_full_disk_is_one_line_naming_the_file_and_keeps_what_resume_needs(example, tmp_path,
                                                                            monkeypatch):
    import minicnn.files

    real_fdopen = os.fdopen

    class FullDisk:
        """A file whose writes fail as on a full disk."""

        def __init__(self, f):
            self.f = f

        def write(self, data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return self.f.__exit__(*exc)

    def fdopen(fd, *args, **kwargs):
        f = real_fdopen(fd, *args, **kwargs)
        return FullDisk(f) if ".fold_2.json." in os.readlink(f"/proc/self/fd/{fd}") else f

    monkeypatch.setattr(minicnn.files.os, "fdopen", fdopen)
    out = tmp_path / "out"
    assert error_of(example.main, [*DIGITS, "--out", str(out)]) == \
        f"error: {out / 'fold_2.json'}: No space left on device"
    assert (out / "fold_1.json").exists() and not (out / "fold_2.json").exists()
    assert list((out / "checkpoints" / "fold_2").glob("epoch_2.*")) != []  # kept for --resume
    assert not (out / ".lock").exists() and not list(out.rglob(".*.part"))


@pytest.mark.parametrize("case", ["under a file", "name too long", "read-only file system"])
def test_an_unusable_out_folder_is_one_line_naming_it(example, tmp_path, monkeypatch, capsys, case):
    (tmp_path / "a_file").write_text("")
    out = {"under a file": tmp_path / "a_file" / "out", "name too long": tmp_path / ("x" * 300),
           "read-only file system": tmp_path / "ro" / "out"}[case]
    if case == "read-only file system":
        def read_only(self, *args, **kwargs):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))
        monkeypatch.setattr(Path, "mkdir", read_only)
    if case == "name too long":  # found while checking the flags: a usage error
        with pytest.raises(SystemExit) as stopped:
            example.main([*DIGITS, "--out", str(out)])
        assert stopped.value.code == 2
        assert capsys.readouterr().err.splitlines()[-1].endswith(f"--out {out}: File name too long")
        return
    reason = {"under a file": "Not a directory", "read-only file system": "Read-only file system"}[case]
    assert error_of(example.main, [*DIGITS, "--out", str(out)]) == f"error: {out}: {reason}"


def test_an_idx_dataset_with_an_empty_split_is_a_clear_error(example, tmp_path):
    import gzip

    import numpy as np

    def write_idx(path: Path, array: np.ndarray) -> None:
        header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
        path.write_bytes(gzip.compress(header + array.tobytes()))

    folder = tmp_path / "idx"
    folder.mkdir()
    for prefix, n in (("train", 40), ("t10k", 0)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", np.zeros((n, 12, 12), np.uint8))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", np.zeros(n, np.uint8))
    with pytest.raises(SystemExit) as stopped:
        example.main(["--dataset", f"idx:{folder}", "--quick", "--out", str(tmp_path / "out")])
    assert str(stopped.value.code).startswith(f"error: cannot load idx:{folder}: ")
    assert f"the IDX files in {folder}: the test split holds no images" in str(stopped.value.code)
    assert not (tmp_path / "out").exists()


# Signals and workers

def test_sigterm_stops_cleanly_keeping_the_checkpoint_and_releasing_the_lock(interrupted_run):
    out, code, _, stderr = interrupted_run
    assert code == 143
    assert stderr == f"stopped by SIGTERM; what is done is kept in {out}: go on with --resume {out}\n"
    assert not (out / ".lock").exists() and not (out / ".lock.workers").exists()
    assert list((out / "checkpoints").glob("fold_*/epoch_*.npz"))


def test_a_resumed_run_records_every_session_and_their_sum(example, finished_run, interrupted_run, tmp_path,
                                                           monkeypatch):
    without_test_plots(example, monkeypatch)
    copy = tmp_path / "copy"
    shutil.copytree(interrupted_run[0], copy)
    first = json.loads((copy / rundir.MANIFEST_NAME).read_text())["sessions"]
    assert len(first) == 1 and first[0]["seconds"] > 0
    results = example.main([*DIGITS, "--resume", str(copy)])
    assert scores(results) == scores(finished_run[1])
    sessions = results["sessions"]
    assert len(sessions) == 2 and sessions[0] == first[0] and sessions[1]["seconds"] > 0
    assert results["total_seconds"] == sessions[0]["seconds"] + sessions[1]["seconds"]


def test_a_session_killed_without_a_word_counts_until_its_last_write(tmp_path):
    rundir.write_manifest(tmp_path, {"config": {}})
    manifest = tmp_path / rundir.MANIFEST_NAME
    rundir.begin_session(tmp_path)  # then killed an hour ago, 42 s after it started: its time never recorded
    started = time.time() - 3600
    killed = json.loads(manifest.read_text())
    killed["sessions"][0]["started"] = datetime.fromtimestamp(started, timezone.utc).isoformat()
    manifest.write_text(json.dumps(killed))
    (tmp_path / "fold_1.json").write_text("{}")
    os.utime(tmp_path / "fold_1.json", (started + 42.0, started + 42.0))
    with rundir.RunLock(tmp_path):  # as in a run: the lock, written now, is not the killed session's
        sessions = rundir.begin_session(tmp_path)
    assert sessions[0]["seconds"] == pytest.approx(42.0) and sessions[1]["seconds"] is None


def test_results_record_the_thread_counts(finished_run):
    import numba

    assert finished_run[1]["threads"]["jobs"] == 1
    assert finished_run[1]["threads"]["minicnn_per_job"] == numba.get_num_threads()
    assert finished_run[1]["threads"]["blas_in_products"] == 1


def test_ctrl_c_stops_cleanly_with_exit_code_130(tmp_path):
    out = tmp_path / "out"
    process = start_script(*DIGITS, "--out", out, slow_checkpoints=True)
    wait_for(lambda: (out / "checkpoints" / "fold_1" / "epoch_1.json").exists())
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130
    assert stderr == f"stopped by Ctrl-C; what is done is kept in {out}: go on with --resume {out}\n"
    assert not (out / ".lock").exists()


HOLD_AS_WORKER = """
import sys, time
from minicnn.experiments.rundir import worker_hold
with worker_hold(sys.argv[1]):
    print("holding", flush=True)
    time.sleep(60)
"""


def test_a_run_folder_is_refused_while_a_worker_of_an_earlier_run_lives(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    worker = subprocess.Popen([sys.executable, "-c", HOLD_AS_WORKER, str(tmp_path)], stdout=subprocess.PIPE,
                              text=True, env=env)
    try:
        assert worker.stdout.readline() == "holding\n"
        with pytest.raises(rundir.RunDirError, match="still written by the workers of an earlier run"), \
                rundir.RunLock(tmp_path):
            pass
        assert not (tmp_path / ".lock").exists()
    finally:
        worker.kill()
        worker.wait()
    with rundir.RunLock(tmp_path):
        assert (tmp_path / ".lock").exists()


SPAWN_WORKER = """
import os, subprocess, sys, time
code = ("import os, sys, time; from minicnn.experiments import parallel; "
        "parallel.die_with(int(sys.argv[1])); print(os.getpid(), flush=True); time.sleep(60)")
worker = subprocess.Popen([sys.executable, "-c", code, str(os.getpid())], stdout=subprocess.PIPE, text=True)
print(worker.stdout.readline().strip(), flush=True)
time.sleep(60)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_a_worker_dies_with_its_parent_however_the_parent_dies(sig):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    parent = subprocess.Popen([sys.executable, "-c", SPAWN_WORKER], stdout=subprocess.PIPE, text=True,
                              env=env)
    worker = int(parent.stdout.readline())
    parent.send_signal(sig)
    parent.wait()
    wait_for(lambda: not Path(f"/proc/{worker}").exists() or _zombie(worker), seconds=5)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except (FileNotFoundError, IndexError):
        return True


def _children(pid: int) -> set[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children")
    return {int(p) for p in children.read_text().split()} if children.exists() else set()


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_the_workers_of_a_killed_parallel_run_stop_with_it(tmp_path, sig):
    out = tmp_path / "out"
    process = start_script(*DIGITS, "--jobs", "2", "--out", out)
    wait_for(lambda: (out / "checkpoints").exists() and (out / rundir.WORKERS_LOCK_NAME).exists())
    workers = _children(process.pid)
    process.send_signal(sig)
    process.communicate(timeout=60)
    wait_for(lambda: all(not Path(f"/proc/{pid}").exists() or _zombie(pid) for pid in workers), seconds=10)
    if sig == signal.SIGTERM:
        assert process.returncode == 143 and not (out / ".lock").exists()
    with rundir.RunLock(out):  # no worker holds the folder any more
        pass


# Terminal encodings

@pytest.mark.slow
def test_a_terminal_that_is_not_utf8_gets_ascii_and_the_run_ends(tmp_path):
    out = tmp_path / "out"
    env = {"PYTHONIOENCODING": "ascii", "LANG": "C", "LC_ALL": "C"}
    process = start_script("--dataset", "digits", "--folds", "2", "--epochs", "1", "--verbose", "1",
                           "--out", out, env=env)
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr
    assert "(+/- " in stdout and "±" not in stdout
    assert (out / "final_model.npz").exists() and (out / "results.json").exists()
    process = start_script("--dataset", "digits", "--folds", "2", "--epochs", "1", "--verbose", "1",
                           "--resume", out, env=env)
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr
    assert "(+/- " in stdout


def test_output_falls_back_to_ascii_instead_of_failing():
    import io

    from minicnn.experiments import cli

    stream = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    previous, sys.stdout = sys.stdout, stream
    try:
        with cli.one_line_failures(()):
            print("loss 0.1 (± 0.01), 3×3 kernels …, ✓")
        stream.flush()
        assert stream.buffer.getvalue() == b"loss 0.1 (+/- 0.01), 3x3 kernels ..., ?\n"
        assert stream.errors == "strict"  # as it was
    finally:
        sys.stdout = previous
