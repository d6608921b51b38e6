"""What h5serve reads from a model file, and how it scores on labelled images.

Behind `flask --app app inspect MODEL --examples DIR`: a downloaded model says nothing
about how it was trained, so the only proof that it is fed right is a few images whose
labels are known. Folders of images per label (`image_dataset_from_directory`'s layout)
are scored under every candidate scaling, and the best one goes into a card to copy.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from app.config import PROJECT_ROOT, Settings
from app.runtime.classifier import Classifier
from app.runtime.labelled_folders import ExamplesError, name_labels, read_labelled_folders
from app.runtime.model_card import ModelCard, ModelCardError
from app.runtime.prepared import Prepared, stored
from app.runtime.self_check import (
    answers,
    candidate_scales,
    decode_examples,
    labelled_examples,
)


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
    prepared: Prepared | None = None  # what this host's workers serve it as, if prepared
    scores: tuple[Score, ...] = ()
    folder_labels: tuple[str, ...] | None = None  # labels read from folder names
    skipped: list[str] = field(default_factory=list)

    @property
    def best(self) -> Score | None:
        return max(self.scores, key=lambda s: s.right, default=None)

    @property
    def labels_to_fill(self) -> bool:
        """The model has only class indexes: the card's "labels" are placeholders."""
        return self.description["labels_from"] == "their indexes" and not self.folder_labels

    def card(self) -> dict[str, Any]:
        """A model card that pins what was found: labels (only indexes: to fill in, see
        `labels_to_fill`) and the scaling that scored best."""
        card: dict[str, Any] = {"labels": list(self.folder_labels
                                               or self.description["labels"])}
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
    found = Inspection(classifier.describe(), path.with_suffix(".json"), _prepared(path))
    if examples is None:
        return found
    labelled, skipped = read_labelled_folders(examples, per_label)
    labelled, folder_labels = name_labels(labelled, classifier.output_spec.labels,
                                           found.description["labels_from"], examples)
    labels = folder_labels or classifier.output_spec.labels
    try:
        pixels = decode_examples(labelled, classifier.image_spec)
    except ValueError as exc:
        raise ExamplesError(str(exc)) from None
    scores = []
    for scale in candidate_scales(classifier.image_spec):
        said = answers(classifier.predict, replace(classifier.image_spec, scale=scale),
                       labels, pixels)
        scores.append(Score(scale, sum(a == e.label for a, e in zip(said, labelled,
                                                                     strict=True)),
                            len(labelled)))
    return replace(found, scores=tuple(scores), folder_labels=folder_labels,
                   skipped=skipped)


def _prepared(path: Path) -> Prepared | None:
    """The model as prepared on this host under this environment's settings (with the card
    examples a worker reads: beside the model, and the bundled ones)."""
    try:
        settings = Settings.load()
        card = ModelCard.for_model(path)
    except (ValueError, ModelCardError):
        return None
    folders = [path.parent / "examples", PROJECT_ROOT / "static" / "examples"]
    return stored(path, card, labelled_examples(card, folders), settings)

