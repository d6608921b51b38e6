"""Drift: is what a model version sees and answers now what it saw when it was known right?

Per served version (DRIFT_REFERENCE > 0), the first DRIFT_REFERENCE rows it answers after
it became ready are its reference; the last DRIFT_WINDOW rows since are compared with it,
statistic by statistic, by the population stability index
PSI = sum over bins of (now - ref) * ln(now / ref), on shares (an empty bin counts as
0.0001). Continuous statistics use the reference's deciles as bins, so every bin holds a
tenth of the reference; the predicted class uses the classes. The usual reading, also the
alert's: under 0.1 no drift, 0.1-0.25 some, above 0.25 a real shift.

Statistics per row: `predicted_class`, `confidence` (the top probability), and of the model
input: `brightness` (mean), `contrast` (standard deviation), `clipped` (share of values at
the row's extremes) and, for uploads, `aspect_ratio` (width / height of the file). Figures
are recomputed every EVERY rows into h5serve_drift_psi{model,version,statistic} (each
worker its own; /metrics shows the highest) and `GET /models/<name>`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app import metrics
from app.runtime.dataplane import Call
from app.runtime.dataplane.types import InferRequest, InferResponse

STATISTICS = ("predicted_class", "confidence", "brightness", "contrast", "clipped",
              "aspect_ratio")
NO_DRIFT, DRIFT = 0.1, 0.25
EVERY = 50  # rows between two computations of the figures
_FLOOR = 1e-4


@dataclass
class _Profile:
    """One version's reference and rolling window, per statistic."""

    classes: int
    window: int
    reference: dict[str, list[float]] = field(default_factory=dict)
    recent: dict[str, deque[float]] = field(default_factory=dict)
    rows: int = 0
    psi: dict[str, float] = field(default_factory=dict)

    def add(self, values: dict[str, np.ndarray], size: int) -> bool:
        """Add a batch of rows' statistics; True when the figures are due."""
        for name, column in values.items():
            if self.rows < size:  # still building the reference
                self.reference.setdefault(name, []).extend(column.tolist())
            else:
                self.recent.setdefault(name, deque(maxlen=self.window)).extend(column.tolist())
        before, self.rows = self.rows, self.rows + len(values["confidence"])
        return self.rows > size and before // EVERY != self.rows // EVERY

    def figures(self) -> dict[str, float]:
        self.psi = {name: round(psi(np.array(self.reference[name]), np.array(recent),
                                    self.classes if name == "predicted_class" else 0), 4)
                    for name, recent in self.recent.items() if self.reference.get(name)}
        return self.psi


def psi(reference: np.ndarray, recent: np.ndarray, classes: int = 0) -> float:
    """The population stability index of `recent` against `reference`: over `classes`
    categories, else over the reference's deciles."""
    if classes:
        expected = np.bincount(reference.astype(int), minlength=classes)
        actual = np.bincount(recent.astype(int), minlength=classes)
    else:
        edges = np.unique(np.quantile(reference, np.linspace(0, 1, 11))[1:-1])
        expected = np.bincount(np.searchsorted(edges, reference, "right"),
                               minlength=len(edges) + 1)
        actual = np.bincount(np.searchsorted(edges, recent, "right"), minlength=len(edges) + 1)
    e = np.maximum(expected / max(expected.sum(), 1), _FLOOR)
    a = np.maximum(actual / max(actual.sum(), 1), _FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def row_statistics(request: InferRequest, answer: InferResponse) -> dict[str, np.ndarray]:
    """Each answered row's statistics (aspect ratio only for uploads)."""
    rows = answer.batch.reshape(len(answer.batch), -1)
    low, high = rows.min(axis=1, keepdims=True), rows.max(axis=1, keepdims=True)
    found = {"predicted_class": answer.probabilities.argmax(axis=1).astype(float),
             "confidence": answer.probabilities.max(axis=1),
             "brightness": rows.mean(axis=1), "contrast": rows.std(axis=1),
             "clipped": ((rows <= low) | (rows >= high)).mean(axis=1)}
    shapes = [(d.facts["width"], d.facts["height"]) for d in answer.images if d is not None]
    if shapes:
        found["aspect_ratio"] = np.array([w / h for w, h in shapes], dtype=float)  # type: ignore[operator]
    return found


class DriftMonitor:
    """Watches every answer (a DataPlane watcher) and keeps each version's figures."""

    def __init__(self, reference: int, window: int) -> None:
        self.size = reference
        self.window = window
        self._profiles: dict[tuple[str, int], _Profile] = {}

    def __call__(self, call: Call, request: InferRequest, answer: InferResponse) -> None:
        key = (answer.model_name, answer.model_version)
        profile = self._profiles.get(key)
        if profile is None:
            profile = self._profiles[key] = _Profile(len(answer.labels), self.window)
        if profile.add(row_statistics(request, answer), self.size):
            labels = (answer.model_name, str(answer.model_version))
            for name, value in profile.figures().items():
                metrics.DRIFT_PSI.labels(*labels, name).set(value)

    def figures(self, model: str, version: int) -> dict[str, Any]:
        """What `GET /models/<name>` shows: the reference's progress and the latest PSI."""
        profile = self._profiles.get((model, version))
        rows = profile.rows if profile else 0
        return {"reference_rows": min(rows, self.size), "reference_size": self.size,
                "window_rows": max(0, min(rows - self.size, self.window)),
                "psi": dict(profile.psi) if profile else {},
                "thresholds": {"no_drift_below": NO_DRIFT, "drift_above": DRIFT}}
