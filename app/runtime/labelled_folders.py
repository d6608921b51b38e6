"""Labelled images in `image_dataset_from_directory`'s layout: one sub-folder per label.

The one proof that a downloaded model is fed right is a few images whose labels are
known. `flask inspect --examples DIR` reads them from anywhere; at load, a folder beside
the model calibrates its preprocessing (app.runtime.calibration):

    models/gtsrb.h5 + models/gtsrb.examples/<label>/*.png       a flat file
    models/cats/<version>/model.h5 + models/cats/examples/<label>/  every version of "cats"

The repository's versions share their model's folder, so a new version is scored on the
same images as the one it replaces.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace
from pathlib import Path

from app.runtime.self_check import LabelledExample

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".tif", ".tiff"}


class ExamplesError(ValueError):
    """The examples folder cannot be used; the message says why."""


def examples_folder(model_path: Path) -> Path | None:
    """The labelled examples beside a model file, or its repository model's; None if none."""
    beside = model_path.with_name(f"{model_path.stem}.examples")
    if beside.is_dir():
        return beside
    version = model_path.parent
    shared = version.parent / "examples"
    return shared if version.name.isdigit() and shared.is_dir() else None


def read_labelled_folders(root: Path, per_label: int) -> tuple[list[LabelledExample], list[str]]:
    """Images in `root/<label>/`, at most `per_label` each (sorted by name); and what
    was left out."""
    if not root.is_dir():
        raise ExamplesError(f"{root}: not a folder (expected one sub-folder per label)")
    found: list[LabelledExample] = []
    skipped: list[str] = []
    for folder in label_folders(root):
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        skipped += [f"{folder.name}/: {len(files) - per_label} images over --per-label "
                    f"{per_label}"] if len(files) > per_label else []
        found += [LabelledExample(f"{folder.name}/{p.name}", p.read_bytes(), folder.name)
                  for p in files[:per_label]]
    if not found:
        raise ExamplesError(f"{root}: no images in sub-folders (expected one sub-folder "
                            "per label holding PNG or JPEG files)")
    return found, skipped


def label_folders(root: Path) -> list[Path]:
    """The label sub-folders of `root`, sorted by name (image_dataset_from_directory's
    class order)."""
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def name_labels(labelled: list[LabelledExample], model_labels: tuple[str, ...],
                labels_from: str, root: Path,
                ) -> tuple[list[LabelledExample], tuple[str, ...] | None]:
    """Folder names -> the model's labels, matched loosely ("T-shirt-top" is
    "T-shirt/top"); a model that only has indexes takes the sorted folder names as its
    labels, as image_dataset_from_directory numbered them. Fewer folders than labels
    is fine: only the labels present are scored."""
    by_key = {_key(label): label for label in model_labels}
    folders = sorted({e.label for e in labelled})
    if all(_key(f) in by_key for f in folders):
        return [replace(e, label=by_key[_key(e.label)]) for e in labelled], None
    if labels_from == "their indexes" and len(folders) == len(model_labels):
        return labelled, tuple(folders)
    unknown = [f for f in folders if _key(f) not in by_key]
    hint = (f"; the model has only class indexes, so name the folders 0 to "
            f"{len(model_labels) - 1}, or give one folder per class, or the card's \"labels\""
            if labels_from == "their indexes" else "; name each folder after one of them")
    raise ExamplesError(
        f"{root}: folders {', '.join(unknown)} match none of the model's {len(model_labels)} "
        f"labels ({', '.join(model_labels[:12])}{', ...' if len(model_labels) > 12 else ''})"
        f"{hint}")


def digest(examples: list[LabelledExample]) -> str:
    """Which images these are: two versions' scores compare only on the same ones."""
    hashed = hashlib.sha256()
    for example in examples:
        hashed.update(f"{example.file}\0{example.label}\0".encode())
        hashed.update(hashlib.sha256(example.data).digest())
    return hashed.hexdigest()[:16]


def _key(label: str) -> str:
    return re.sub(r"[^0-9a-z]+", "", label.lower())
