"""Is this a model file at all? Checked in the gunicorn master, before any worker forks.

Reads a few bytes, imports nothing heavy (TensorFlow does not survive a fork), so a
wrong MODEL_PATH costs one clear line at start-up, not a traceback from every worker.
"""

from __future__ import annotations

import os
from pathlib import Path

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"  # .h5 (Keras 2 and 3)
ZIP_SIGNATURE = b"PK\x03\x04"  # .keras (Keras 3)
LFS_POINTER = b"version https://git-lfs"


class ModelFileError(ValueError):
    """The model path cannot be served; the message says why and what to do."""


def check_model_file(path: Path, where: str = "") -> None:
    """Raise ModelFileError unless `path` is a readable HDF5 (.h5) or zip (.keras) file."""
    where = where or f"MODEL_PATH={path}"
    if not path.exists():
        raise ModelFileError(f"{where}: no such file (put the model in models/ or set "
                             "MODEL_PATH to its path)")
    if not path.is_file():
        raise ModelFileError(f"{where}: not a file")
    if not os.access(path, os.R_OK):
        raise ModelFileError(f"{where}: not readable by this user (uid {os.getuid()})")
    with path.open("rb") as file:
        head = file.read(64)
    if head.startswith(LFS_POINTER):
        raise ModelFileError(f"{where}: a Git LFS pointer, not the model; run `git lfs pull`")
    if not head.startswith((HDF5_SIGNATURE, ZIP_SIGNATURE)):
        raise ModelFileError(f"{where}: neither an HDF5 (.h5) nor a .keras (zip) file")
