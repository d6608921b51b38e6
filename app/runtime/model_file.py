"""Is this a model file at all? Checked in the gunicorn master, before any worker forks.

Reads a few bytes, imports nothing heavy (TensorFlow does not survive a fork), so a
wrong MODEL_PATH costs one clear line at start-up, not a traceback from every worker.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

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
    hdf5, archive = head.startswith(HDF5_SIGNATURE), head.startswith(ZIP_SIGNATURE)
    if path.suffix == ".keras" and not archive:
        raise ModelFileError(
            f"{where}: an HDF5 file named .keras; rename it to {path.stem}.h5" if hdf5 else
            f"{where}: not a Keras zip archive (a .keras file is a zip of config.json and "
            "weights); download it again or save the model again with model.save()")
    if archive and path.suffix != ".keras":
        raise ModelFileError(f"{where}: a .keras zip archive named {path.name}; rename "
                             f"it to {path.stem}.keras")
    if not hdf5 and not archive:
        raise ModelFileError(f"{where}: neither an HDF5 (.h5) nor a .keras (zip) file")


def archive_json(path: Path, member: str) -> dict[str, Any]:
    """A JSON object inside a .keras archive (metadata.json, config.json); {} if none."""
    try:
        with zipfile.ZipFile(path) as archive:
            data = json.loads(archive.read(member))
    except (zipfile.BadZipFile, KeyError, ValueError, OSError):
        return {}
    return data if isinstance(data, dict) else {}


def archive_class_names(path: Path) -> tuple[list[str], str] | None:
    """A `class_names` list people store in a .keras file (Keras itself writes none):
    in metadata.json, or at the top of config.json; with the member it came from."""
    for member in ("metadata.json", "config.json"):
        names = archive_json(path, member).get("class_names")
        if isinstance(names, list) and names and all(isinstance(n, str) for n in names):
            return names, member
    return None
