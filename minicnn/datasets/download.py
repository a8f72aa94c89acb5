"""Where the published datasets are found, and how missing files are downloaded and verified.

A :class:`Source` describes one published dataset: its folder name, files, SHA-256 checksums
and mirrors. Its files are looked for in, by priority:

1. ``data_dir`` when given (the files directly in it, or in ``data_dir/<name>/``);
2. ``$MINICNN_DATA/<name>/`` when the environment variable ``MINICNN_DATA`` is set;
3. the per-user cache ``$XDG_CACHE_HOME/minicnn/<name>`` (default ``~/.cache/minicnn/<name>``),
   the only place missing files are downloaded to.

A download is kept only once complete and verified, trying each mirror in turn.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from minicnn.datasets.base import MAX_BYTES, DatasetError, check_sha256, checked_dir, file_sha256
from minicnn.datasets.idx import read_content
from minicnn.files import atomic_write

DOWNLOAD_TIMEOUT = 30.0
"""Seconds a download may stall before that mirror counts as failed."""


@dataclass(frozen=True)
class Source:
    """A published dataset: its folder name, files (as downloaded), checksums and mirrors.

    ``hash_content``: the checksums are of the decompressed content (MNIST's, so the raw
    NAME verifies as well as NAME.gz); otherwise of the file as downloaded.
    """

    name: str
    title: str
    files: tuple[str, ...]
    sha256: Mapping[str, str]
    mirrors: tuple[str, ...]
    hash_content: bool = False

    def expected(self, path: Path) -> str:
        """The published SHA-256 for ``path``."""
        return self.sha256[_idx_name(path) if self.hash_content else path.name]


def _idx_name(path: Path) -> str:
    """The dataset file name without a ``.gz`` suffix."""
    return path.name.removesuffix(".gz")


def find(directory: Path, file: str, raw_ok: bool) -> Path | None:
    """``directory/file`` or, if ``raw_ok``, the raw ``directory/NAME`` of a NAME.gz."""
    candidates = [file, file.removesuffix(".gz")] if raw_ok else [file]
    for name in candidates:
        if (directory / name).is_file():
            return directory / name
    return None


def missing_files(directory: Path, source: Source) -> list[str]:
    """The files of ``source`` not in ``directory`` (for MNIST: neither gzipped nor raw)."""
    raw_ok = source.hash_content
    return [_idx_name(Path(f)) if raw_ok else f for f in source.files
            if find(directory, f, raw_ok) is None]


def cache_dir() -> Path:
    """The per-user cache, ``$XDG_CACHE_HOME/minicnn`` or ``~/.cache/minicnn``."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "minicnn"


def _check_download(download: bool, caller: str) -> None:
    if not isinstance(download, bool):
        raise TypeError(f"{caller}: download must be True or False; got {download!r}")


def _dataset_dir(source: Source, data_dir: str | os.PathLike | None,
                 caller: str) -> tuple[Path, bool]:
    """Where to look for ``source``, and whether that is the cache (the only place we download to)."""
    if data_dir is not None:
        directory = checked_dir(data_dir, caller)
        if len(missing_files(directory, source)) < len(source.files):
            return directory, False
        return directory / source.name, False
    if os.environ.get("MINICNN_DATA"):
        return Path(os.environ["MINICNN_DATA"]).expanduser() / source.name, False
    return cache_dir() / source.name, True


def _where_to_put(source: Source, directory: Path) -> str:
    """How to supply the files by hand, for error messages."""
    raw = " (or the raw NAME)" if source.hash_content else ""
    return (
        f"Put the files{raw}, as downloaded from {source.mirrors[0]}, in {directory}, "
        f"or set MINICNN_DATA=DIR with the files in DIR/{source.name}/, or pass data_dir=DIR."
    )


def ensure_files(source: Source, data_dir: str | os.PathLike | None, download: bool,
                 caller: str) -> Path:
    """The folder holding all of ``source``'s files, downloading them into the cache if allowed."""
    _check_download(download, caller)
    directory, is_cache = _dataset_dir(source, data_dir, caller)
    missing = missing_files(directory, source)
    if missing and is_cache and download:
        _download(source, directory)
    elif missing:
        raise DatasetError(
            f"{source.title} files missing from {directory}: {', '.join(missing)}. "
            + _where_to_put(source, directory) + _unverifiable_raw_files(source, directory, missing)
        )
    return directory


def _unverifiable_raw_files(source: Source, directory: Path, missing: list[str]) -> str:
    """A hint when raw NAME files stand where NAME.gz files with published checksums are needed."""
    raw = [name.removesuffix(".gz") for name in missing
           if name.endswith(".gz") and (directory / name.removesuffix(".gz")).is_file()]
    if not raw:
        return ""
    return (f" The raw {', '.join(raw)} there cannot be verified ({source.title}'s published "
            "checksums are of the .gz files): use the .gz files, or load the folder unverified "
            "with minicnn.datasets.load_idx_dataset(DIR).")


def _download(source: Source, directory: Path) -> None:
    """Download ``source``'s missing files into ``directory``, verified, trying every mirror.

    Folders made here are removed again if nothing could be downloaded into them.
    """
    import http.client

    made = [d for d in (directory, *directory.parents) if not d.exists()]
    directory.mkdir(parents=True, exist_ok=True)
    try:
        for file in source.files:
            if find(directory, file, source.hash_content) is not None:
                continue
            for mirror in source.mirrors:
                try:
                    _download_verified(f"{mirror}{file}", directory / file, source)
                    break
                except (OSError, http.client.HTTPException, DatasetError) as exc:
                    last_error = f"{mirror}{file}: {exc}"
            else:
                raise DatasetError(
                    f"{source.title} files missing from {directory}: "
                    f"{', '.join(missing_files(directory, source))}; downloading them failed "
                    f"(last error: {last_error}). {_where_to_put(source, directory)}"
                )
    except BaseException:
        for folder in made:  # innermost first
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        raise


def _download_verified(url: str, dest: Path, source: Source) -> None:
    """Save ``url`` as ``dest`` only once complete and verified, so no half file is ever left."""
    def verify(tmp: Path) -> None:
        if source.hash_content:
            content = read_content(tmp, MAX_BYTES)
            check_sha256(tmp, hashlib.sha256(content).hexdigest(), source.expected(dest),
                         "decompressed content")
        else:
            check_sha256(tmp, file_sha256(tmp), source.expected(dest), "file")

    atomic_write(dest, lambda out: fetch(url, out, desc=dest.name), verify=verify)


def fetch(url: str, out: BinaryIO, *, desc: str = "") -> None:
    """Stream ``url`` into ``out`` with a progress bar sized by Content-Length.

    Uses ``urllib.request.urlopen`` looked up at call time, so tests can monkeypatch it.
    """
    import urllib.request

    from tqdm.auto import tqdm

    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as response:
        length = response.headers.get("Content-Length")
        total = int(length) if length else None
        with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=desc) as bar:
            while chunk := response.read(1 << 16):
                out.write(chunk)
                bar.update(len(chunk))
