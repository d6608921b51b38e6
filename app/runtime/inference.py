"""One served model version: its micro-batcher and the stages every request goes through.

image bytes -> decode (open_image, maybe_invert) -> to_model_input -> classify (batcher)
pixel rows  ----------------------------------------^
Each stage is a named method, so each can be timed and tested on its own; the data plane
(app.runtime.dataplane) strings them together for every door. An explanation takes the
same path, then asks the batcher's model thread for a heatmap (app.runtime.explain) and
draws it over the picture the decode kept (app.runtime.overlay).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from app.config import Settings
from app.runtime.batcher import BatchObserver, MicroBatcher
from app.runtime.classifier import Classifier
from app.runtime.drift_reference import Reference
from app.runtime.errors import ExplanationsOff, InvalidInput
from app.runtime.explain import Explainer, Explanation
from app.runtime.imaging import DecodedImage, open_upload
from app.runtime.offload import ThreadRunner, real_lock
from app.runtime.overlay import overlay_png
from app.runtime.prediction_log import PredictionLog
from app.runtime.spec import ImageSpec
from app.runtime.tracing import RequestTrace

# Uploads at least this big are decoded in a real thread: a 12 MP JPEG takes ~40 ms,
# which would stall every other request of the worker. Small ones decode inline
# (~0.1 ms, less than the hand-off to a thread costs).
OFFLOAD_DECODE_BYTES = 64 * 1024


@dataclass(frozen=True)
class Prediction:
    """Probabilities for one image, with the labels they belong to."""

    labels: tuple[str, ...]
    probabilities: np.ndarray

    @property
    def top_label(self) -> str:
        return self.labels[int(np.argmax(self.probabilities))]

    def ranked(self) -> list[tuple[str, float]]:
        """(label, probability) pairs, most probable first (for the upload page)."""
        order = np.argsort(-self.probabilities, kind="stable")
        return [(self.labels[i], float(self.probabilities[i])) for i in order]


class InferenceService:
    """A loaded classifier behind its micro-batcher."""

    def __init__(self, classifier: Classifier, settings: Settings,
                 observer: BatchObserver | None = None,
                 prediction_log: PredictionLog | None = None,
                 drift_reference: Reference | None = None) -> None:
        if not classifier.ready or classifier.runtime is None:
            raise RuntimeError("InferenceService needs a loaded classifier")
        self.classifier = classifier
        self.settings = settings
        self.leases = 0  # requests holding it (app.runtime.repository drains them)
        self.prediction_log = prediction_log
        self.drift_reference = drift_reference  # from a file or the examples (DRIFT_REFERENCE)
        self.batcher = MicroBatcher(classifier.predict,
                                    max_batch_size=classifier.batch_limit,
                                    max_delay_s=settings.MAX_BATCH_DELAY_MS / 1000,
                                    max_queue=settings.MAX_QUEUE_SIZE, observer=observer,
                                    max_tasks=settings.MAX_EXPLAIN_QUEUE,
                                    padded=classifier.runtime.engine.padded)
        self._decode_in_thread = ThreadRunner(max_threads=2)
        self._explainer: Explainer | None = None
        self._explainer_lock = real_lock()  # taken in real threads only
        if settings.EXPLAIN == "eager":
            self.prepare_explainer()

    @property
    def name(self) -> str:
        return self.classifier.name

    @property
    def version(self) -> int:
        return self.classifier.version

    def close(self) -> None:
        """Finish queued work and stop the batcher: the version is being unloaded."""
        self.batcher.close()
        self._decode_in_thread.close()

    @property
    def spec(self) -> ImageSpec:
        assert self.classifier.image_spec is not None
        return self.classifier.image_spec

    @property
    def labels(self) -> tuple[str, ...]:
        assert self.classifier.output_spec is not None
        return self.classifier.output_spec.labels

    @property
    def ready(self) -> bool:
        return self.classifier.ready and self.batcher.alive

    def decode(self, data: bytes, display: bool = False) -> DecodedImage:
        """Encoded image -> its pixels as the model's training data looked (inverted where
        the card says), opened once; `display` keeps the picture for an overlay too. Big
        files decode in a real thread."""
        side = self.settings.EXPLAIN_MAX_SIDE if display else 0
        args = (data, self.spec, self.settings.MAX_IMAGE_PIXELS, side)
        return (self._decode_in_thread(open_upload, *args)
                if len(data) >= OFFLOAD_DECODE_BYTES else open_upload(*args))

    def classify_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """(N, H, W, C) pixels, 0-255 -> probabilities (N, classes)."""
        return self.classify(self.spec.to_model_input(pixels))

    def overlay(self, display: Image.Image, heatmap: np.ndarray) -> bytes:
        """PNG bytes: the heatmap drawn over the picture (in a real thread: ~20 ms)."""
        return self._decode_in_thread(overlay_png, display, heatmap)

    def explain_model_input(self, batch: np.ndarray, probabilities: np.ndarray,
                            labels: Sequence[str | None]) -> list[Explanation]:
        """Heatmaps for a model-input batch, one label per row (None: its top label),
        computed on the model thread when no prediction is waiting."""
        indexes = np.array([self.label_index(label, p) for label, p in
                            zip(labels, probabilities, strict=True)])
        if self.settings.EXPLAIN == "off":
            raise ExplanationsOff()
        explainer = self._explainer
        if explainer is None or not explainer.prepared:  # reading Keras takes seconds
            explainer = self._decode_in_thread(self.prepare_explainer)
        return self.batcher.run_task(explainer.explain, batch, indexes)

    def prepare_explainer(self) -> Explainer:
        """The explainer, its Keras model read and its graph traced (once; in a real
        thread: the first one in a lean worker imports TensorFlow)."""
        with self._explainer_lock:
            if self._explainer is None:
                self._explainer = Explainer(self.classifier.keras_model, self.spec,
                                            self.classifier.output_spec.binary,  # type: ignore[union-attr]
                                            self.settings.EXPLAIN_SMOOTHGRAD_SAMPLES)
            self._explainer.prepare()
            return self._explainer

    def label_index(self, label: str | None, probabilities: np.ndarray) -> int:
        """The index of a label by name; None is the most probable one."""
        if label is None:
            return int(np.argmax(probabilities))
        if label not in self.labels:
            raise InvalidInput("unknown_label", f"This model has no label {label!r}; its "
                               f"labels are: {', '.join(self.labels)}.")
        return self.labels.index(label)

    def classify(self, batch: np.ndarray, image: DecodedImage | None = None,
                 trace: RequestTrace | None = None) -> np.ndarray:
        """A float32 batch in the model's input shape -> probabilities, from the batcher,
        recorded for the quality metrics and the prediction log (with the upload when the
        batch is one image) and in the request's trace."""
        probabilities = self.batcher.submit(batch, trace)
        if self.prediction_log is not None:
            assert self.classifier.card is not None
            self.prediction_log.record(self.name, self.version, self.labels, probabilities,
                                       self.classifier.card.low_confidence, image,
                                       tuple(batch.shape))
        return probabilities
