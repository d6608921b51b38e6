"""The drift reference a model version starts with: its shipped file, else its examples.

Taken at load with DRIFT_REFERENCE on, before the version serves (no batcher runs
`predict` yet). A reference file beside the model (app.runtime.drift_reference) comes
first. Else the card's examples and the labelled examples folder that calibration reads
(app.runtime.labelled_folders), at most DRIFT_REFERENCE images spread over its labels,
are decoded as uploads are and run through the served runtime, in batches of the sizes
the batcher uses: nothing here needs TensorFlow, so a lean worker takes it too. Fewer than
MIN_EXAMPLES images give deciles of noise (a card's ten page examples): then, as with
none, the version's first DRIFT_REFERENCE rows build it (app.runtime.drift).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

from app.config import Settings
from app.runtime.drift_reference import (
    Reference,
    ReferenceError,
    read_reference_file,
    reference_file,
    statistics,
    upload_size,
)
from app.runtime.errors import InvalidInput
from app.runtime.imaging import DecodedImage, open_upload
from app.runtime.labelled_folders import (
    ExamplesError,
    examples_folder,
    label_folders,
    read_labelled_folders,
)
from app.runtime.loading import ModelLoadError
from app.runtime.padding import bucket_sizes, predict_padded
from app.runtime.self_check import find_example

if TYPE_CHECKING:
    from app.runtime.classifier import Classifier

log = logging.getLogger(__name__)
MIN_EXAMPLES = 100


def initial_reference(classifier: Classifier, settings: Settings) -> Reference | None:
    """The reference a loaded version starts with; None when its first rows build it.

    Raises ModelLoadError for a reference file, or an example, that cannot be used."""
    assert classifier.output_spec is not None and classifier.runtime is not None
    labels = classifier.output_spec.labels
    file = reference_file(classifier.path)
    if file.is_file():
        try:
            return read_reference_file(file, labels)
        except ReferenceError as exc:
            raise ModelLoadError(f"drift reference {exc}; not served (ship the file that "
                                 "GET /models/<name>/drift_reference gives)") from None
    files, origins = _example_files(classifier, settings.DRIFT_REFERENCE)
    if len(files) < MIN_EXAMPLES:
        if files:
            log.info("model %s version %d: %d examples are fewer than the %d a drift "
                     "reference needs; its first %d rows will be its reference",
                     classifier.name, classifier.version, len(files), MIN_EXAMPLES,
                     settings.DRIFT_REFERENCE)
        return None
    size = classifier.batch_limit  # the batcher's: the sizes this runtime is run with
    buckets = bucket_sizes(size, classifier.runtime.engine.padded)
    columns: dict[str, list[float]] = {}
    for start in range(0, len(files), size):
        decoded = [_decode(name, data, classifier, settings)
                   for name, data in files[start:start + size]]
        assert classifier.image_spec is not None
        batch = classifier.image_spec.to_model_input(np.stack([d.pixels for d in decoded]))
        found = statistics(batch, predict_padded(classifier.predict, buckets, batch),
                           [upload_size(d.facts) for d in decoded])
        for name, column in found.items():
            columns.setdefault(name, []).extend(column.tolist())
    reference = Reference.of(columns, len(labels), "examples", "; ".join(origins))
    log.info("model %s version %d: drift reference from %d examples (%s)", classifier.name,
             classifier.version, reference.rows, reference.origin)
    return reference


def _example_files(classifier: Classifier, most: int
                   ) -> tuple[list[tuple[str, bytes]], list[str]]:
    """The card's examples found, then the labelled folder's (at most `most`); and where
    they were read."""
    assert classifier.card is not None
    files, origins = [], []
    for example in classifier.card.examples:
        path = find_example(example.file, classifier.example_folders)
        if path is not None:
            files.append((example.file, path.read_bytes()))
    if files:
        origins.append(f"the card's {len(files)} examples")
    folder = examples_folder(classifier.path)
    if folder is not None:
        try:
            per_label = max(1, most // max(1, len(label_folders(folder))))
            labelled, _ = read_labelled_folders(folder, per_label)
        except ExamplesError:  # calibration has said why already
            labelled = []
        files += [(e.file, e.data) for e in labelled]
        origins += [f"{len(labelled)} in {folder}"] if labelled else []
    return files, origins


def _decode(name: str, data: bytes, classifier: Classifier, settings: Settings
            ) -> DecodedImage:
    """An example decoded exactly as an upload of it would be."""
    spec = classifier.image_spec
    assert spec is not None
    try:
        return open_upload(data, spec, settings.MAX_IMAGE_PIXELS)
    except InvalidInput as exc:
        raise ModelLoadError(f"{classifier.path}: drift reference: example {name}: "
                             f"{exc.message}") from None
