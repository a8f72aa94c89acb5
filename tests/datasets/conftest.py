"""Every test of :mod:`minicnn.datasets` runs isolated: no network, no real cache or data folder.

``urllib.request.urlopen`` is replaced for every test, by a guard that fails the test or
(``fakes.serve``) by a fake server.
"""

from __future__ import annotations

import hashlib
import urllib.request
import zlib

import numpy as np
import pytest

from minicnn import datasets

from .fakes import BOMB_ZEROS, fake_mnist, idx_bytes


@pytest.fixture
def arrays() -> dict[str, np.ndarray]:
    return fake_mnist()


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path, arrays):
    """No network, no real cache or data dir, and checksums that match the fake files."""
    def no_network(*args, **kwargs):
        raise AssertionError(f"test tried to use the network: {args}")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    monkeypatch.delenv("MINICNN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    for name, array in arrays.items():
        monkeypatch.setitem(datasets.MNIST_SHA256, name, hashlib.sha256(idx_bytes(array)).hexdigest())


@pytest.fixture(scope="session")
def gzipped_zeros() -> bytes:
    """A gzip member of BOMB_ZEROS zero bytes: about 0.5 MB on disk, 513 MiB decompressed."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: gzip framing
    chunk = bytes(2**24)
    parts = [compressor.compress(chunk) for _ in range(BOMB_ZEROS // len(chunk))]
    parts.append(compressor.compress(bytes(BOMB_ZEROS % len(chunk))))
    return b"".join(parts) + compressor.flush()
