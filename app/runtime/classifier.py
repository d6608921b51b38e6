"""The image classifier: load a Keras file, describe it, run batches through it.

Knows nothing of Flask, so tests and benchmarks can use it directly. Loading serves the
model as prepared once per host in a separate process (app.runtime.prepared): the chosen
runtime's artefact, no TensorFlow in the worker; or reads it here with TensorFlow
(app.runtime.reading) where TensorFlow serves it or is loaded anyway. Explanations read
the Keras model when they first need it.
Callers must not run `predict` concurrently: the MicroBatcher serialises it.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from app.config import Settings
from app.runtime.engines import ConversionError
from app.runtime.engines.choice import Selection
from app.runtime.engines.decisions import candidate
from app.runtime.engines.selection import CONVERTERS
from app.runtime.loading import LoadedModel, ModelLoadError, load_keras_model
from app.runtime.model_card import ModelCard, ModelCardError
from app.runtime.offload import real_lock
from app.runtime.output_head import OUTPUT_NAMES
from app.runtime.prepared import Prepared, prepare, prepared_key, settings_overrides
from app.runtime.preprocessing import Choice
from app.runtime.reading import read_model
from app.runtime.self_check import LabelledExample, labelled_examples
from app.runtime.spec import ImageSpec, OutputSpec

log = logging.getLogger(__name__)


class Classifier:
    """A served model with a life cycle: `load()`, then `predict(batch)`; `ready` between."""

    def __init__(self, path: Path, settings: Settings | None = None,
                 examples_dir: Path | None = None, name: str | None = None,
                 version: int = 1, shared_card: Path | None = None) -> None:
        self.path = Path(path)
        self.version = version
        self._name = name  # the repository's name for it; else the card's or the file's
        self._shared_card = shared_card
        self.settings = settings or Settings()  # SELF_CHECK and the RUNTIME_* settings
        self._examples_dir = examples_dir
        self.example_folders = [self.path.parent / "examples",
                                *([examples_dir] if examples_dir else [])]
        self.card: ModelCard | None = None
        self.image_spec: ImageSpec | None = None
        self.output_spec: OutputSpec | None = None
        self.choices: dict[str, Choice] = {}  # scaling and output kind, with their reasons
        self.load_seconds: float | None = None
        self.runtime: Selection | None = None
        self.batch_limit = self.settings.MAX_BATCH_SIZE  # prepared models measure theirs
        self.versions: dict[str, str | None] = {}  # the libraries that read it
        self.calibrated: dict[str, Any] | None = None  # by a labelled examples folder
        self._input_name = "input"
        self._loaded: LoadedModel | None = None
        self._keras_lock = real_lock()  # explanations read Keras in real threads
        self._forward: Any = None

    @property
    def ready(self) -> bool:
        return self._forward is not None

    @property
    def name(self) -> str:
        return self._name or (self.card.name if self.card else self.path.stem)

    @property
    def input_name(self) -> str:
        """The model's input tensor name, as protocol clients address it."""
        return self._input_name

    @property
    def keras_model(self) -> Any:
        """The Keras model (explanations' gradients need it): read now if this worker
        serves a prepared model without it (the first explanation pays for TensorFlow)."""
        with self._keras_lock:
            if self._loaded is None:
                self._loaded = load_keras_model(self.path)
                log.info("model %s version %d: Keras model read for explanations",
                         self.name, self.version)
        return self._loaded.model

    def load(self) -> None:
        """Read the card, then serve the model as prepared in a separate process (the
        runtime it was converted to), or read it here with TensorFlow where that is the
        runtime, TensorFlow is here already, or results cannot be kept.

        Raises ModelLoadError with a message that says what is wrong with the file.
        """
        started = time.monotonic()
        try:
            self.card = ModelCard.for_model(self.path, self._shared_card)
        except ModelCardError as exc:
            raise ModelLoadError(str(exc)) from None
        examples = labelled_examples(self.card, self.example_folders)
        prepared = None
        if "tensorflow" not in sys.modules and self.settings.RUNTIME != "tensorflow":
            key = prepared_key(self.path, self.card, examples, self.settings)
            prepared = prepare(self.preparation_request(), key, self.settings)
        if prepared is not None:
            self.batch_limit = min(prepared.batch_limit, self.settings.MAX_BATCH_SIZE)
        if prepared is None or prepared.runtime == "tensorflow":
            self.read_with_keras(examples)
        else:
            self._serve(prepared)
        self.load_seconds = time.monotonic() - started
        assert self.image_spec and self.output_spec and self.runtime
        scale, head = self.choices["scale"], self.choices["output"]
        log.info("model %s version %d ready in %.2f s: input %s, %d classes; scale %s (%s); "
                 "output %s (%s); labels from %s; runtime %s (%s)", self.name, self.version,
                 self.load_seconds, self.image_spec.model_shape, len(self.output_spec.labels),
                 scale.value, scale.reason, head.value, head.reason,
                 self.card.labels_from or "their indexes", self.runtime.engine.name,
                 self.runtime.reason)

    def preparation_request(self) -> dict[str, Any]:
        """What `python -m app.http.prepare` needs to read this model as this worker would."""
        return {"path": str(self.path), "name": self._name, "version": self.version,
                "shared_card": self._shared_card, "examples_dir": self._examples_dir,
                "settings": settings_overrides(self.settings)}

    def _serve(self, prepared: Prepared) -> None:
        """Serve a prepared model: its runtime's artefact, nothing of TensorFlow."""
        self.card, self.calibrated = prepared.card, prepared.calibrated
        self.image_spec, self.output_spec = prepared.image_spec, prepared.output_spec
        self.choices, self.versions = prepared.choices, prepared.versions
        self._input_name = prepared.input_name
        module = CONVERTERS[prepared.runtime][0]
        try:
            engine = module.load(Path(prepared.artefact), self.settings.RUNTIME_PRECISION)
        except ConversionError as exc:
            raise ModelLoadError(f"{self.path}: the prepared {prepared.runtime} model does "
                                 f"not load: {exc}") from None
        warm = engine.forward(np.zeros((1, *self.image_spec.model_shape), np.float32))
        if warm.shape[0] != 1 or not np.isfinite(warm).all():
            raise ModelLoadError(f"{self.path}: warm-up inference gave no finite output")
        self.runtime = Selection(engine, prepared.reason.replace(
                                     "measured now", "measured when it was prepared"),
                                 [candidate(c) for c in prepared.candidates])
        self._forward = engine.forward

    def read_with_keras(self, examples: list[LabelledExample]) -> None:
        """Read the model here, with TensorFlow (app.runtime.reading); the card is read."""
        assert self.card is not None
        reading = read_model(self.path, self.card, examples, self.settings)
        self._loaded, self.runtime, self.card = reading.loaded, reading.runtime, reading.card
        self.calibrated = reading.calibrated
        self.image_spec, self.output_spec = reading.image_spec, reading.output_spec
        self.choices, self.versions = reading.choices, reading.versions
        self._input_name = reading.input_name
        self._forward = self.runtime.engine.forward

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Model-input batch (float32) -> probabilities (N, classes) in label order."""
        if self._forward is None or self.output_spec is None:
            raise RuntimeError("Classifier.predict called before load()")
        return self.output_spec.probabilities(self._forward(batch))

    def describe(self) -> dict[str, Any]:
        """What GET /model shows: enough for a client to build valid requests."""
        assert self.card and self.image_spec and self.output_spec
        return {
            "name": self.name,
            "version": self.version,
            "file": self.path.name,
            "description": self.card.description,
            "accuracy": self.card.accuracy,
            "low_confidence": self.card.low_confidence,
            "labels": list(self.output_spec.labels),
            "output": OUTPUT_NAMES[self.output_spec.kind],
            "output_why": self.choices["output"].reason,
            "preprocessing": {"scale": self.image_spec.scale,
                              "why": self.choices["scale"].reason},
            "labels_from": self.card.labels_from or "their indexes",
            "calibration": self.calibrated,
            "input": self.image_spec.describe(),
            "load_seconds": round(self.load_seconds or 0.0, 3),
            "runtime": {**self.runtime.describe(), "max_batch_size": self.batch_limit}
            if self.runtime else None,
            "versions": {**self.versions, "numpy": np.__version__},
        }
