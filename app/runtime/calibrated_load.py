"""A model's labelled examples folder, applied at load: labels, preprocessing, refusal.

The classifier hands over what it inferred from the file and the card; this finds the
examples beside the model (app.runtime.labelled_folders), lets them calibrate what the
card leaves open (app.runtime.calibration, under CALIBRATE) and checks the result fits
them (under SELF_CHECK, as the card's own examples are checked). A model with only class
indexes takes the folders' names as labels when there is one folder per class. A roll-out
compares a new version's score with the one it replaces (`scores_worse`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from app.config import Settings
from app.runtime.calibration import Calibration, calibrate
from app.runtime.labelled_folders import (
    ExamplesError,
    digest,
    examples_folder,
    label_folders,
    name_labels,
    read_labelled_folders,
)
from app.runtime.loading import ModelLoadError
from app.runtime.model_card import ModelCard
from app.runtime.preprocessing import Choice
from app.runtime.self_check import Predict, decode_examples
from app.runtime.spec import ImageSpec, OutputSpec

log = logging.getLogger(__name__)
MAX_EXAMPLES = 200  # read at most about this many, spread over the labels, sorted by name


@dataclass(frozen=True)
class Calibrated:
    """What the examples changed, and how they scored it."""

    card: ModelCard  # with the folders' names as labels, when they gave them
    spec: ImageSpec
    output: OutputSpec
    calibration: Calibration
    folder: Path
    digest: str  # which images: versions compare scores on the same ones only

    @property
    def applied(self) -> tuple[ModelCard, ImageSpec, OutputSpec, Choice]:
        """Card, specs and the preprocessing choice with its reason, for the classifier."""
        return self.card, self.spec, self.output, Choice(self.spec.scale,
                                                         self.calibration.line())

    def describe(self) -> dict[str, Any]:
        """For GET /model, and for a roll-out's comparison (`scores_worse`)."""
        return {**self.calibration.describe(), "folder": str(self.folder),
                "digest": self.digest}


def calibrate_on_load(path: Path, card: ModelCard, spec: ImageSpec, output: OutputSpec,
                      predict: Predict, settings: Settings) -> Calibrated | None:
    """Calibrate from the examples beside `path`; None when it has none.

    Raises ModelLoadError for an unusable folder, or (SELF_CHECK=refuse) when the
    preprocessing chosen does not fit the examples."""
    folder = examples_folder(path)
    if folder is None:
        return None
    try:
        per_label = max(1, MAX_EXAMPLES // max(1, len(label_folders(folder))))
        labelled, _ = read_labelled_folders(folder, per_label)
    except ValueError as exc:  # ExamplesError: no usable folder
        raise ModelLoadError(f"{path}: labelled examples: {exc}") from None
    labels_from = card.labels_from or "their indexes"
    try:
        labelled, folder_labels = name_labels(labelled, output.labels, labels_from, folder)
    except ExamplesError as exc:
        if labels_from != "their indexes":  # named labels: a folder names none of them
            raise ModelLoadError(f"{path}: labelled examples: {exc}") from None
        # Only class indexes and fewer folders than classes, named otherwise: nothing
        # says which index each is, so the examples cannot score; not an error.
        log.warning("model %s: examples in %s not used (%s)", path.name, folder, exc)
        return None
    try:
        pixels = decode_examples(labelled, replace(spec, invert=False))
    except ValueError as exc:  # an example that is not an image
        raise ModelLoadError(f"{path}: labelled examples: {exc}") from None
    if folder_labels:
        output = replace(output, labels=folder_labels)
        card = replace(card, labels=list(folder_labels),
                       labels_from=f"the names of the folders in {folder}")
    found = calibrate(lambda batch: output.probabilities(predict(batch)), spec,
                      output.labels, labelled, pixels, card.pinned,
                      search=settings.CALIBRATE == "auto")
    spec = replace(spec, scale=found.chosen.scale, channel_order=found.chosen.channel_order,
                   invert=found.chosen.invert)
    log.info("model %s: %s; %d candidates tried in %.2f s (examples in %s)", path.name,
             found.line(), len(found.scores), found.seconds, folder)
    if not found.fits and settings.SELF_CHECK == "refuse":
        raise ModelLoadError(f"{path}: examples in {folder}: {found.refusal()}; not served "
                             "(SELF_CHECK=warn serves it anyway)")
    if not found.fits and settings.SELF_CHECK == "warn":
        log.warning("%s: examples in %s: %s (SELF_CHECK=warn: serving it anyway)", path,
                    folder, found.refusal())
    return Calibrated(card, spec, output, found, folder, digest(labelled))


def scores_worse(new: dict[str, Any] | None, old: dict[str, Any] | None) -> str | None:
    """Why a new version must not replace `old` (each a Calibrated's description): fewer
    of the same examples right."""
    if new is None or old is None or new["digest"] != old["digest"] \
            or new["right"] >= old["right"]:
        return None
    total = new["examples"]
    return (f"it gets {new['right']}/{total} of the labelled examples in {new['folder']} "
            f"right, fewer than the {old['right']}/{total} of the version it would replace")
