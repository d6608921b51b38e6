"""What h5serve reads from a model file, and how it scores on labelled images.

Behind `flask --app app inspect MODEL --examples DIR`: a downloaded model says nothing
about how it was trained, so the only proof that it is fed right is a few images whose
labels are known. Folders of images per label (`image_dataset_from_directory`'s layout)
are scored under every candidate scaling, and the best one goes into a card to copy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from app.config import Settings
from app.runtime.classifier import Classifier
from app.runtime.self_check import (
    LabelledExample,
    answers,
    candidate_scales,
    decode_examples,
)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".tif", ".tiff"}


class InspectionError(ValueError):
    """The examples folder cannot be used; the message says why."""


@dataclass(frozen=True)
class Score:
    scale: str
    right: int
    total: int

    @property
    def accuracy(self) -> float:
        return self.right / self.total if self.total else 0.0


@dataclass(frozen=True)
class Inspection:
    """The model as served (GET /model's description) and, given examples, the scores."""

    description: dict[str, Any]
    card_path: Path
    scores: tuple[Score, ...] = ()
    folder_labels: tuple[str, ...] | None = None  # labels read from folder names
    skipped: list[str] = field(default_factory=list)

    @property
    def best(self) -> Score | None:
        return max(self.scores, key=lambda s: s.right, default=None)

    def card(self) -> dict[str, Any]:
        """A model card that pins what was found: labels and the scaling that scored best."""
        labels = list(self.folder_labels or self.description["labels"])
        card: dict[str, Any] = {} if self.description["labels_from"] == "their indexes" \
            and not self.folder_labels else {"labels": labels}
        best = self.best
        card["scale"] = best.scale if best else self.description["preprocessing"]["scale"]
        return card


def inspect_model(path: Path, examples: Path | None = None,
                  per_label: int = 200) -> Inspection:
    """Load the model as the service would (self-check warns only) and score the examples.
    It is read, not served: the Keras model answers and no other runtime is timed."""
    classifier = Classifier(path, Settings(SELF_CHECK="warn", RUNTIME="tensorflow"))
    classifier.load()
    assert classifier.image_spec and classifier.output_spec
    found = Inspection(classifier.describe(), path.with_suffix(".json"))
    if examples is None:
        return found
    labelled, skipped = read_labelled_folders(examples, per_label)
    labelled, folder_labels = _name_labels(labelled, classifier.output_spec.labels,
                                           found.description["labels_from"], examples)
    labels = folder_labels or classifier.output_spec.labels
    try:
        pixels = decode_examples(labelled, classifier.image_spec)
    except ValueError as exc:
        raise InspectionError(str(exc)) from None
    scores = []
    for scale in candidate_scales(classifier.image_spec):
        said = answers(classifier.predict, replace(classifier.image_spec, scale=scale),
                       labels, pixels)
        scores.append(Score(scale, sum(a == e.label for a, e in zip(said, labelled,
                                                                     strict=True)),
                            len(labelled)))
    return replace(found, scores=tuple(scores), folder_labels=folder_labels,
                   skipped=skipped)


def _name_labels(labelled: list[LabelledExample], model_labels: tuple[str, ...],
                 labels_from: str, root: Path,
                 ) -> tuple[list[LabelledExample], tuple[str, ...] | None]:
    """Folder names -> the model's labels, matched loosely ("T-shirt-top" is
    "T-shirt/top"); a model that only has indexes takes the sorted folder names as its
    labels, as image_dataset_from_directory numbered them."""
    by_key = {_key(label): label for label in model_labels}
    folders = sorted({e.label for e in labelled})
    if all(_key(f) in by_key for f in folders):
        return [replace(e, label=by_key[_key(e.label)]) for e in labelled], None
    if labels_from == "their indexes" and len(folders) == len(model_labels):
        return labelled, tuple(folders)
    unknown = [f for f in folders if _key(f) not in by_key]
    raise InspectionError(
        f"{root}: folders {', '.join(unknown)} match none of the model's {len(model_labels)} "
        f"labels ({', '.join(model_labels)}); name each folder after one of them")


def _key(label: str) -> str:
    return re.sub(r"[^0-9a-z]+", "", label.lower())


def read_labelled_folders(root: Path, per_label: int) -> tuple[list[LabelledExample], list[str]]:
    """Images in `root/<label>/`, at most `per_label` each (sorted by name); and what
    was left out."""
    if not root.is_dir():
        raise InspectionError(f"{root}: not a folder (expected one sub-folder per label)")
    found: list[LabelledExample] = []
    skipped: list[str] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        skipped += [f"{folder.name}/: {len(files) - per_label} images over --per-label "
                    f"{per_label}"] if len(files) > per_label else []
        found += [LabelledExample(f"{folder.name}/{p.name}", p.read_bytes(), folder.name)
                  for p in files[:per_label]]
    if not found:
        raise InspectionError(f"{root}: no images in sub-folders (expected one sub-folder "
                              "per label holding PNG or JPEG files)")
    return found, skipped
