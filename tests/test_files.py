"""atomic_write: all or nothing, regular files only, stale temporaries removed; strict JSON."""

import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from minicnn import files
from minicnn.files import atomic_write, atomic_write_json

ROOT = str(Path(__file__).resolve().parents[1])


def test_new_file_gets_the_permissions_open_would_give(tmp_path):
    previous = os.umask(0o022)
    try:
        atomic_write(tmp_path / "a.bin", lambda f: f.write(b"data"))
        with open(tmp_path / "b.bin", "wb") as f:
            f.write(b"data")
    finally:
        os.umask(previous)
    mode = stat.S_IMODE((tmp_path / "a.bin").stat().st_mode)
    assert mode == stat.S_IMODE((tmp_path / "b.bin").stat().st_mode) == 0o644


def test_rejected_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "a.bin"
    target.write_bytes(b"old")

    def reject(path):
        assert path.read_bytes() == b"new"
        raise ValueError("checksum mismatch")

    with pytest.raises(ValueError, match="checksum"):
        atomic_write(target, lambda f: f.write(b"new"), verify=reject)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]


# --- what may be replaced ---------------------------------------------------------------------


def test_the_file_is_flushed_before_the_rename_and_the_folder_after(tmp_path, monkeypatch):
    target = tmp_path / "a.bin"
    target.write_bytes(b"old")
    calls = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        info = os.fstat(fd)
        calls.append(("fsync folder",) if stat.S_ISDIR(info.st_mode) else ("fsync file", info.st_size))
        real_fsync(fd)

    def replace(src, dst):
        calls.append(("replace", Path(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    atomic_write(target, lambda f: f.write(b"new content"))
    # the whole content is in the file when it is flushed (Python's buffer was emptied first)
    assert calls == [("fsync file", len(b"new content")), ("replace", target), ("fsync folder",)]
    assert target.read_bytes() == b"new content"


def test_a_failing_fsync_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "a.bin"
    target.write_bytes(b"old")

    def fsync(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(OSError, match="Input/output error"):
        atomic_write(target, lambda f: f.write(b"new"))
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]


def test_refuses_to_replace_a_directory_naming_it(tmp_path):
    target = tmp_path / "model.npz"
    target.mkdir()
    with pytest.raises(FileExistsError, match="directory") as info:
        atomic_write(target, lambda f: f.write(b"data"))
    assert str(target) in str(info.value)
    assert target.is_dir() and list(target.iterdir()) == []
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]


def test_refuses_to_replace_a_fifo(tmp_path):
    target = tmp_path / "pipe"
    os.mkfifo(target)
    with pytest.raises(FileExistsError, match="FIFO"):
        atomic_write(target, lambda f: f.write(b"data"))
    assert stat.S_ISFIFO(target.lstat().st_mode)


def test_refuses_to_replace_a_device(tmp_path):
    """The probe replaced the always-full device with a zip file when run as root."""
    target = tmp_path / "full"
    try:
        os.mknod(target, stat.S_IFCHR | 0o600, os.makedev(1, 7))  # /dev/full's numbers
    except PermissionError:
        pytest.skip("making a device node needs root")
    with pytest.raises(FileExistsError, match="character device"):
        atomic_write(target, lambda f: f.write(b"data"))
    assert stat.S_ISCHR(target.lstat().st_mode)


def test_refuses_a_symlink_to_a_fifo_naming_both(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    link = tmp_path / "link"
    link.symlink_to(fifo)
    with pytest.raises(FileExistsError, match="FIFO") as info:
        atomic_write(link, lambda f: f.write(b"data"))
    assert str(link) in str(info.value) and str(fifo) in str(info.value)


def test_writes_through_a_symlink_and_keeps_the_link(tmp_path):
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "a.bin"
    target.write_bytes(b"old")
    link = tmp_path / "a.bin"
    link.symlink_to(Path("real") / "a.bin")  # relative, as links usually are
    atomic_write(link, lambda f: f.write(b"new"))
    assert link.is_symlink() and os.readlink(link) == os.path.join("real", "a.bin")
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "real"]
    assert [p.name for p in (tmp_path / "real").iterdir()] == ["a.bin"]


def test_dangling_symlink_creates_its_target(tmp_path):
    link = tmp_path / "a.bin"
    link.symlink_to(tmp_path / "b.bin")
    atomic_write(link, lambda f: f.write(b"new"))
    assert link.is_symlink() and (tmp_path / "b.bin").read_bytes() == b"new"


def test_replaced_file_keeps_its_permissions(tmp_path):
    target = tmp_path / "private.bin"
    target.write_bytes(b"old")
    target.chmod(0o600)
    atomic_write(target, lambda f: f.write(b"new"))
    assert stat.S_IMODE(target.stat().st_mode) == 0o600 and target.read_bytes() == b"new"


def test_missing_folder_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="folder .*nowhere does not exist") as info:
        atomic_write(tmp_path / "nowhere" / "a.bin", lambda f: f.write(b"data"))
    assert str(tmp_path / "nowhere" / "a.bin") in str(info.value)
    assert list(tmp_path.iterdir()) == []


# --- stale temporary files --------------------------------------------------------------------


def dead_pid() -> int:
    """The id of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def part_name(target: str, pid: int, host: str | None = None) -> str:
    return f".{target}.{host or files._host()}-{pid}-abc123_x.part"


def test_write_removes_stale_part_files_of_dead_processes(tmp_path):
    stale = tmp_path / part_name("a.bin", dead_pid())
    stale.write_bytes(b"half a model")
    atomic_write(tmp_path / "a.bin", lambda f: f.write(b"new"))
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]


def test_write_keeps_part_files_it_cannot_know_are_stale(tmp_path):
    kept = [
        part_name("a.bin", os.getpid()),  # a live process: a concurrent write
        part_name("a.bin", dead_pid(), host="elsewhere"),  # another machine's process
        part_name("a.bin.gz", dead_pid()),  # another file's
        part_name("b.bin", dead_pid()),
        ".a.bin.unrelated.part",
    ]
    for name in kept:
        (tmp_path / name).write_bytes(b"x")
    atomic_write(tmp_path / "a.bin", lambda f: f.write(b"new"))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*kept, "a.bin"])


def test_killed_write_leaves_a_part_file_the_next_write_removes(tmp_path):
    """SIGKILL mid-write, as the probe did to a save: the next save cleans up."""
    target = tmp_path / "model.npz"
    script = (
        "import os, signal, sys\n"
        "from minicnn.files import atomic_write\n"
        "def write(f):\n"
        "    f.write(b'half'); f.flush()\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        f"atomic_write({str(target)!r}, write)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], env={**os.environ, "PYTHONPATH": ROOT})
    assert proc.returncode == -signal.SIGKILL
    leftovers = [p.name for p in tmp_path.iterdir()]
    assert len(leftovers) == 1 and leftovers[0].startswith(".model.npz.")
    assert leftovers[0].endswith(".part")
    atomic_write(target, lambda f: f.write(b"complete"))
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]


# --- strict JSON ------------------------------------------------------------------------------


def test_json_round_trips(tmp_path):
    data = {"folds": [{"loss": 0.25, "accuracy": 1}], "name": "ü"}
    atomic_write_json(tmp_path / "r.json", data)
    assert json.loads((tmp_path / "r.json").read_text(encoding="utf-8")) == data


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({"folds": [{"loss": 0.1}, {"loss": 0.2}, {"loss": float("nan")}]}, '["folds"][2]["loss"]'),
        ({"a": {"b": (1.0, float("-inf"))}}, '["a"]["b"][1]'),
        ([float("inf")], "[0]"),
        (float("nan"), "the top level"),
    ],
)
def test_json_refuses_non_finite_numbers_naming_file_and_key(tmp_path, data, where):
    path = tmp_path / "fold_1.json"
    path.write_text("{}")
    with pytest.raises(ValueError, match="non-finite") as info:
        atomic_write_json(path, data)
    assert str(path) in str(info.value) and where in str(info.value)
    assert path.read_text() == "{}"
    assert [p.name for p in tmp_path.iterdir()] == ["fold_1.json"]


def test_json_refuses_numpy_non_finite_and_unserialisable_values_naming_file(tmp_path):
    import numpy as np

    with pytest.raises(ValueError, match=r'\["loss"\]'):
        atomic_write_json(tmp_path / "a.json", {"loss": np.float64("nan")})
    with pytest.raises(TypeError, match="b.json") as info:
        atomic_write_json(tmp_path / "b.json", {"weights": np.zeros(2)})
    assert "ndarray" in str(info.value)
    assert list(tmp_path.iterdir()) == []
