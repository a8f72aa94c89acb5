"""minicnn._numba_cache: import and run from a read-only install with no writable home.

Each test copies the package into a fresh folder, makes it read-only and imports it in a
subprocess. Root ignores file permissions, so as root the subprocess runs as the
unprivileged user ``nobody`` (uid 65534, via ``setpriv``); the folders it needs are made
reachable for that user.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "minicnn"
NOBODY = 65534
UNPRIVILEGED = (
    ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"] if os.geteuid() == 0 else []
)
USER = NOBODY if UNPRIVILEGED else os.geteuid()

# Imports minicnn, runs one cached kernel (a max pool) and reports where Numba caches.
SCRIPT = """
import json, os, sys, tempfile, warnings
if len(sys.argv) > 1 and sys.argv[1] == "numba-first":
    import numba  # Numba has read its settings before minicnn chooses the cache folder
elif len(sys.argv) > 1:
    tempfile.tempdir = sys.argv[1]  # a temp folder that cannot be written either
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import numpy as np
    import minicnn
    model = minicnn.Sequential([minicnn.Input((4, 4, 1)), minicnn.MaxPooling2D(2), minicnn.Flatten()])
    out = model.predict(np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1))
print(json.dumps({"out": out.ravel().tolist(), "cache_dir": os.environ.get("NUMBA_CACHE_DIR"),
                  "package": minicnn.__file__,
                  "warnings": [str(w.message) for w in caught if "cach" in str(w.message)]}))
"""


@pytest.fixture
def sandbox():
    """A folder the unprivileged user can reach: a read-only copy of minicnn, and room to write."""
    root = Path(tempfile.mkdtemp(prefix="minicnn-ro-"))
    root.chmod(0o755)
    try:
        shutil.copytree(PACKAGE, root / "site" / "minicnn",
                        ignore=shutil.ignore_patterns("__pycache__"))
        for folder in ("home", "writable"):
            (root / folder).mkdir()
        (root / "writable").chmod(0o777)
        subprocess.run(["chmod", "-R", "a-w", str(root / "site"), str(root / "home")], check=True)
        yield root
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(root)], check=True)
        shutil.rmtree(root)


def run(sandbox: Path, env: dict[str, str], *args: str) -> dict:
    """Run SCRIPT against the read-only copy, unprivileged, with a clean environment."""
    import json

    if UNPRIVILEGED and shutil.which("setpriv") is None:
        pytest.skip("as root, this test needs setpriv to drop to an unprivileged user")
    base = {"PATH": os.environ["PATH"], "PYTHONPATH": str(sandbox / "site"),
            "HOME": str(sandbox / "home"), "TMPDIR": str(sandbox / "writable"),
            "PYTHONDONTWRITEBYTECODE": "1",
            "MINICNN_IMPLEMENTATION": os.environ.get("MINICNN_IMPLEMENTATION", "")}
    base = {k: v for k, v in base.items() if v}
    probe = subprocess.run([*UNPRIVILEGED, sys.executable, "-c", "import numba"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"the unprivileged user cannot run this Python ({sys.executable}): "
                    f"{probe.stderr.decode()[-200:]}")
    proc = subprocess.run([*UNPRIVILEGED, sys.executable, "-c", SCRIPT, *args],
                          env={**base, **env}, cwd=sandbox / "home", capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["package"] == str(sandbox / "site" / "minicnn" / "__init__.py")
    return got


def cache_files(folder: Path) -> list[Path]:
    return list(folder.rglob("*.nbi")) if folder.exists() else []


@pytest.mark.parametrize("numba_first", [False, True], ids=["minicnn-first", "numba-first"])
def test_read_only_install_without_home_caches_in_a_private_temp_folder(sandbox, numba_first):
    """The probe's crash: read-only package folder, unwritable home, no XDG_CACHE_HOME."""
    got = run(sandbox, {}, *(["numba-first"] if numba_first else []))
    assert got["out"] == [5.0, 7.0, 13.0, 15.0]
    expected = sandbox / "writable" / f"minicnn-numba-{USER}"
    assert got["cache_dir"] == str(expected) and got["warnings"] == []
    assert cache_files(expected), "the kernel was compiled but nothing was cached"
    assert (expected.stat().st_mode & 0o777) == 0o700
    assert cache_files(sandbox / "site") == []


def test_prefers_xdg_cache_home(sandbox):
    xdg = sandbox / "writable" / "xdg"
    got = run(sandbox, {"XDG_CACHE_HOME": str(xdg)})
    assert got["cache_dir"] == str(xdg / "minicnn" / "numba")
    assert cache_files(xdg / "minicnn" / "numba")


def test_user_choice_of_numba_cache_dir_is_kept(sandbox):
    chosen = sandbox / "writable" / "mine"
    got = run(sandbox, {"NUMBA_CACHE_DIR": str(chosen), "XDG_CACHE_HOME": str(sandbox / "writable")})
    assert got["cache_dir"] == str(chosen)


def test_temp_folder_of_another_user_is_not_used(sandbox):
    """Numba loads pickled code from its cache: a folder someone else made is not trusted."""
    planted = sandbox / "writable" / f"minicnn-numba-{USER}"
    planted.mkdir(mode=0o777)
    planted.chmod(0o777)  # made by root (or by us, but writable by all): not private
    got = run(sandbox, {})
    assert got["cache_dir"] is None and len(got["warnings"]) == 1
    assert cache_files(planted) == []


def test_nothing_writable_runs_uncached_and_says_so_once(sandbox):
    got = run(sandbox, {}, str(sandbox / "home"))
    assert got["out"] == [5.0, 7.0, 13.0, 15.0]
    assert got["cache_dir"] is None
    assert len(got["warnings"]) == 1 and "NUMBA_CACHE_DIR" in got["warnings"][0]
    assert cache_files(sandbox) == []


def test_writable_package_folder_leaves_numba_its_default(monkeypatch, tmp_path):
    """Numba's own choice (``__pycache__`` beside the kernels) stands when it works."""
    from minicnn import _numba_cache

    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(_numba_cache, "PACKAGE_DIR", tmp_path / "package")
    _numba_cache.configure()
    assert "NUMBA_CACHE_DIR" not in os.environ
    assert not (tmp_path / "xdg").exists()
