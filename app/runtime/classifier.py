"""The image classifier: load a Keras file, describe it, run batches through it.

Knows nothing of Flask, so tests and benchmarks can use it directly. The Keras model,
traced once (app.runtime.engines.tensorflow_engine), is the reference: warm-up, the
card's self-check and explanations use it; batches run on the runtime chosen for the
model (app.runtime.engines.selection), which gives the same answers.
Callers must not run `predict` concurrently: the MicroBatcher serialises it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from app.config import Settings
from app.runtime.calibrated_load import Calibrated, calibrate_on_load
from app.runtime.engines.choice import RuntimeRefused, Selection
from app.runtime.engines.selection import select_runtime
from app.runtime.engines.tensorflow_engine import tensorflow_engine, trace
from app.runtime.loading import LoadedModel, ModelLoadError, item_shape, load_keras_model
from app.runtime.model_card import ModelCard, ModelCardError
from app.runtime.output_head import OUTPUT_NAMES, check_softmax, infer_head
from app.runtime.preprocessing import Choice, infer_input_size, infer_scale
from app.runtime.self_check import check_examples, decode_examples, labelled_examples
from app.runtime.spec import (
    ImageSpec,
    OutputSpec,
    UnservableModel,
    infer_image_spec,
    infer_output_spec,
)

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
        self._example_folders = [self.path.parent / "examples",
                                 *([examples_dir] if examples_dir else [])]
        self.card: ModelCard | None = None
        self.image_spec: ImageSpec | None = None
        self.output_spec: OutputSpec | None = None
        self.choices: dict[str, Choice] = {}  # scaling and output kind, with their reasons
        self.load_seconds: float | None = None
        self.runtime: Selection | None = None
        self.calibrated: Calibrated | None = None  # by a labelled examples folder
        self._loaded: LoadedModel | None = None
        self._forward: Any = None

    @property
    def ready(self) -> bool:
        return self._forward is not None

    @property
    def name(self) -> str:
        return self._name or (self.card.name if self.card else self.path.stem)

    @property
    def keras_model(self) -> Any:  # the loaded Keras model (explanations need it)
        return self._loaded.model if self._loaded else None

    @property
    def input_name(self) -> str:
        """The model's input tensor name, as protocol clients address it."""
        name = getattr(self._loaded.model.inputs[0], "name", "") if self._loaded else ""
        return str(name).split(":")[0] or "input"

    def load(self) -> None:
        """Read card and model, infer the specs, compile the forward pass, warm it up.

        Raises ModelLoadError with a message that says what is wrong with the file.
        """
        started = time.monotonic()
        try:
            self.card = ModelCard.for_model(self.path, self._shared_card)
        except ModelCardError as exc:
            raise ModelLoadError(str(exc)) from None
        loaded = load_keras_model(self.path)
        model = loaded.model
        if len(model.inputs) != 1 or len(model.outputs) != 1:
            raise ModelLoadError(
                f"{self.path}: the model has {len(model.inputs)} inputs and "
                f"{len(model.outputs)} outputs; an image classifier has one of each")
        scale = (Choice(self.card.scale, "the model card says so") if self.card.scale
                 else infer_scale(model, self.path))
        output_shape = item_shape(model.outputs[0])
        head = infer_head(model, output_shape[0] or 0 if len(output_shape) == 1 else 0)
        try:
            self.image_spec = infer_image_spec(item_shape(model.inputs[0]), self.card,
                                               scale.value, infer_input_size(model))
            self.output_spec = infer_output_spec(output_shape, self.card, head.value)
        except UnservableModel as exc:
            raise ModelLoadError(f"{self.path}: {exc}") from None
        self._loaded = loaded
        traced = trace(model, self.image_spec.model_shape)
        keras_engine = tensorflow_engine(traced)
        forward = keras_engine.forward
        warm = forward(np.zeros((1, *self.image_spec.model_shape), np.float32))
        if warm.shape[0] != 1 or not np.isfinite(warm).all():
            raise ModelLoadError(f"{self.path}: warm-up inference gave no finite output")
        head = check_softmax(warm[0], head)
        self.output_spec = replace(self.output_spec, kind=head.value)  # type: ignore[arg-type]
        self.choices = {"scale": scale, "output": head}
        self.calibrated = calibrate_on_load(self.path, self.card, self.image_spec,
                                            self.output_spec, forward, self.settings)
        if self.calibrated:  # labelled examples beside the model: app.runtime.calibrated_load
            self.card, self.image_spec, self.output_spec, scale = self.calibrated.applied
            self.choices["scale"] = scale
        examples = labelled_examples(self.card, self._example_folders)
        self._check_examples(forward, examples)
        try:
            self.runtime = select_runtime(
                traced, keras_engine, self.output_spec.probabilities, self.image_spec,
                decode_examples(examples, self.image_spec), self.settings, self.path)
        except RuntimeRefused as exc:
            raise ModelLoadError(f"{self.path}: {exc}") from None
        self._forward = self.runtime.engine.forward
        self.load_seconds = time.monotonic() - started
        log.info("model %s version %d ready in %.2f s: input %s, %d classes; scale %s (%s); "
                 "output %s (%s); labels from %s; runtime %s (%s)", self.name, self.version,
                 self.load_seconds, self.image_spec.model_shape, len(self.output_spec.labels),
                 scale.value, scale.reason, head.value, head.reason,
                 self.card.labels_from or "their indexes", self.runtime.engine.name,
                 self.runtime.reason)

    def _check_examples(self, forward: Any, examples: list[Any]) -> None:
        """The card's labelled examples must come out right (app.runtime.self_check)."""
        assert self.card and self.image_spec and self.output_spec
        if self.settings.SELF_CHECK == "off" or not examples:
            return
        try:
            output = self.output_spec
            result = check_examples(lambda batch: output.probabilities(forward(batch)),
                                    self.image_spec, output.labels, examples)
        except ValueError as exc:
            raise ModelLoadError(f"{self.path}: self-check: {exc}") from None
        if not result.wrong:
            log.info("self-check: all %d examples of the card right", result.checked)
        elif self.settings.SELF_CHECK == "warn":
            log.warning("%s: %s (SELF_CHECK=warn: serving it anyway)", self.path,
                        result.message())
        else:
            raise ModelLoadError(f"{self.path}: {result.message()}; not served "
                                 "(SELF_CHECK=warn serves it anyway)")

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Model-input batch (float32) -> probabilities (N, classes) in label order."""
        if self._forward is None or self.output_spec is None:
            raise RuntimeError("Classifier.predict called before load()")
        return self.output_spec.probabilities(self._forward(batch))

    def describe(self) -> dict[str, Any]:
        """What GET /model shows: enough for a client to build valid requests."""
        assert self.card and self.image_spec and self.output_spec and self._loaded
        import tensorflow as tf

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
            "calibration": self.calibrated.describe() if self.calibrated else None,
            "input": self.image_spec.describe(),
            "load_seconds": round(self.load_seconds or 0.0, 3),
            "runtime": self.runtime.describe() if self.runtime else None,
            "versions": {
                "keras_library": f"{self._loaded.library} {self._loaded.library_version}",
                "written_by_keras": self._loaded.written_by or None,
                "tensorflow": tf.__version__,
                "numpy": np.__version__,
            },
        }
