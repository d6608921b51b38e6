"""Converted models on disk, so a model file is converted once per host.

The key is the model file's sha256, the input shape served and the versions of the
libraries that produced and run the artefact: another worker, a restart or a roll-back
finds the artefact; an upgrade converts again. One entry is held under an exclusive
`flock` while it is made, so the second worker waits for the first one's result rather
than converting too. A failed conversion is cached as well (its reason), so it is tried
and logged once. RUNTIME_CACHE_DIR="" (or an unwritable one) converts in a temporary
folder at every load instead.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)
_DONE, _FAILED = "done", "failed.txt"
_warned: set[Path] = set()


def model_key(model_path: Path, item_shape: tuple[int, ...], libraries: str) -> str:
    """What decides a conversion: the file's bytes, the served shape, the libraries."""
    digest = file_digest(model_path)
    digest.update(f"|{item_shape}|{libraries}".encode())
    return digest.hexdigest()[:32]


def file_digest(path: Path) -> hashlib._Hash:
    """The sha256 of a file's bytes, read in blocks (a model may be hundreds of MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest


@dataclass(frozen=True)
class CacheEntry:
    """One runtime's artefact folder for one model key, locked while it is in use."""

    folder: Path
    persistent: bool

    @property
    def ready(self) -> bool:
        return (self.folder / _DONE).exists()

    @property
    def failure(self) -> str | None:
        """The reason an earlier conversion failed, if it did."""
        path = self.folder / _FAILED
        return path.read_text() if path.exists() else None

    def mark_done(self) -> None:
        (self.folder / _DONE).touch()

    def mark_failed(self, reason: str) -> None:
        (self.folder / _FAILED).write_text(reason)


@contextmanager
def cache_entry(root: Path | None, key: str, name: str) -> Iterator[CacheEntry]:
    """The folder for `name` (a runtime's artefact, or timings) of one model key.

    Held under an exclusive lock until the block ends; a half-written entry (a worker
    killed while converting) is emptied before it is handed out.
    """
    folder = _usable(root, key, name)
    if folder is None:
        with tempfile.TemporaryDirectory(prefix="h5serve-runtime.") as temporary:
            yield CacheEntry(Path(temporary), persistent=False)
        return
    with open(folder.parent / f"{folder.name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            entry = CacheEntry(folder, persistent=True)
            if not entry.ready and entry.failure is None and any(folder.iterdir()):
                shutil.rmtree(folder)
                folder.mkdir()
            yield entry
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _usable(root: Path | None, key: str, name: str) -> Path | None:
    """root/key/name, created; None (with one warning per root) when it cannot be."""
    if root is None:
        return None
    folder = root / key / name
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    except OSError as exc:
        if root not in _warned:
            _warned.add(root)
            log.warning("RUNTIME_CACHE_DIR=%s is not writable (%s): converting in a "
                        "temporary folder at every load", root, exc.strerror or exc)
        return None
