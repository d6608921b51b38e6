"""`python -m app.http.prepare REQUEST`: read one model with TensorFlow, write down how to serve it.

Run by a worker that has no TensorFlow (app.runtime.prepared), in a fresh interpreter,
under the worker's own settings (REQUEST carries them, with the model's path, name,
version, cards and examples folder, and the file to write). A model that cannot be
served is written down too, with the reason, so every worker says the same; the exit
code is then still 0. Logs go where the worker's go, in its format.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

from app.config import Settings
from app.http.logs import configure_logging
from app.runtime.classifier import Classifier
from app.runtime.engines.decisions import record
from app.runtime.engines.timing import batch_limit
from app.runtime.loading import ModelLoadError
from app.runtime.model_card import ModelCard
from app.runtime.prepared import Prepared, failure
from app.runtime.reading import read_model
from app.runtime.self_check import labelled_examples

log = logging.getLogger("app.http.prepare")


def main(argv: list[str]) -> int:
    request = json.loads(argv[1])
    settings = Settings.load(request["settings"])
    configure_logging(settings.LOG_LEVEL, settings.LOG_FORMAT)
    started = time.monotonic()
    path = Path(request["path"])
    shared = Path(request["shared_card"]) if request["shared_card"] else None
    examples_dir = Path(request["examples_dir"]) if request["examples_dir"] else None
    folders = Classifier(path, settings, examples_dir).example_folders
    try:
        card = ModelCard.for_model(path, shared)
        reading = read_model(path, card, labelled_examples(card, folders), settings)
    except ModelLoadError as exc:
        result = failure(str(exc))
    else:
        engine = reading.runtime.engine
        limit, rates = batch_limit(engine.forward, reading.image_spec.model_shape,
                                   settings.MAX_BATCH_SIZE, settings.RUNTIME_TIMING_SECONDS)
        log.info("%s: batches of at most %d images on %s (images/s by batch size: %s)",
                 path, limit, engine.name, rates or "not timed")
        result = Prepared(
            reading.card, reading.image_spec, reading.output_spec, reading.choices,
            reading.calibrated, reading.input_name,
            engine.name, str(engine.artefact or ""), reading.runtime.reason,
            [record(c) for c in reading.runtime.candidates], reading.versions,
            round(time.monotonic() - started, 3), limit,
            {str(size): rate for size, rate in rates.items()}).to_json()
    output = Path(request["output"])
    output.with_suffix(".partial").write_text(result)
    output.with_suffix(".partial").replace(output)  # whole or not at all
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
