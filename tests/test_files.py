"""atomic_write: all or nothing, and ordinary file permissions."""

import os
import stat

import pytest

from minicnn.files import atomic_write


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
