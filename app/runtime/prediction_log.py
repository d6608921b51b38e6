"""What the model has been answering: quality metrics for every prediction, and a sampled
log of them (PREDICTION_LOG=off|stdout|<path>, PREDICTION_LOG_SAMPLE=0.0-1.0).

Metrics (every prediction): the top-1 confidence histogram, a counter per predicted
label and one of answers under the card's `low_confidence`, per model and version, so a
dashboard shows confidence drift and label mix. Log lines (sampled): time, request id,
model, version, the top label and its probability, the top 3, the input (an upload's
width, height, format and mode, or a tensor's shape) and the SHA-256 of the image bytes:
never the image itself. Lines are written by one real thread from a bounded buffer, each
with one O_APPEND write (whole lines, even from several workers); when the buffer is full
(a slow disk) the line is dropped and counted, and the request does not wait.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import time
from collections import deque
from collections.abc import Callable

import numpy as np

from app import metrics
from app.runtime.imaging import DecodedImage
from app.runtime.offload import start_real_thread

log = logging.getLogger(__name__)
CAPACITY = 1000  # lines waiting for the writer; beyond this they are dropped


class PredictionLog:
    """Records every prediction in the metrics and writes a sample of them."""

    def __init__(self, destination: str, sample: float, request_id: Callable[[], str],
                 rng: random.Random | None = None) -> None:
        self.destination = destination
        self.sample = sample if destination != "off" else 0.0
        self._request_id = request_id
        self._rng = rng or random.Random()
        self._lines: deque[bytes] = deque()
        if self.sample > 0:
            self._fd = 1 if destination == "stdout" else os.open(
                destination, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            start_real_thread(self._write_forever)

    def record(self, model: str, version: int, labels: tuple[str, ...],
               probabilities: np.ndarray, low_confidence: float,
               image: DecodedImage | None = None, input_shape: tuple[int, ...] = ()) -> None:
        """After each answered request: metrics always, a log line for sampled rows."""
        metrics.record_predictions(model, version, labels, probabilities, low_confidence)
        if self.sample <= 0:
            return
        for row in probabilities:
            if self._rng.random() >= self.sample:
                continue
            if len(self._lines) >= CAPACITY:
                metrics.PREDICTION_LOG_DROPPED.inc()
                continue
            self._lines.append(self._line(model, version, labels, row, image, input_shape))

    def _line(self, model: str, version: int, labels: tuple[str, ...], row: np.ndarray,
              image: DecodedImage | None, input_shape: tuple[int, ...]) -> bytes:
        top = np.argsort(-row, kind="stable")[:3]
        entry = {"time": time.time(), "request_id": self._request_id(), "model": model,
                 "version": version, "label": labels[top[0]],
                 "probability": round(float(row[top[0]]), 6),
                 "top3": [{"label": labels[i], "probability": round(float(row[i]), 6)}
                          for i in top],
                 "input": image.facts if image is not None
                 else {"tensor_shape": list(input_shape)},
                 "sha256": hashlib.sha256(image.data).hexdigest() if image is not None
                 else None}
        return (json.dumps(entry, ensure_ascii=False) + "\n").encode()

    def _write_forever(self) -> None:
        while True:
            if not self._lines:
                time.sleep(0.05)
                continue
            try:
                os.write(self._fd, self._lines.popleft())
            except OSError as exc:  # a full disk: count and go on, never crash a worker
                metrics.PREDICTION_LOG_DROPPED.inc()
                log.warning("prediction log %s: %s", self.destination, exc.strerror)
                time.sleep(1)
