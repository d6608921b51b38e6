"""Drift: is what a model version sees and answers now what it saw when it was known right?

Per served version (DRIFT_REFERENCE > 0) a reference, from the first source it has
(app.runtime.drift_sources): a reference file shipped beside the model, else its
examples, else the first DRIFT_REFERENCE rows it answers after it became ready. The last
DRIFT_WINDOW rows since are compared with it, statistic by statistic, by the population
stability index PSI = sum over bins of (now - ref) * ln(now / ref), on shares (an empty
bin counts as 0.0001). Continuous statistics use the reference's deciles as bins, so every
bin holds a tenth of the reference; the predicted class uses the classes
(app.runtime.drift_reference). The usual reading, also the alert's: under 0.1 no drift,
0.1-0.25 some, above 0.25 a real shift.

Statistics per row: `predicted_class`, `confidence` (the top probability), and of the model
input: `brightness` (mean), `contrast` (standard deviation), `clipped` (share of values at
the row's extremes) and, for uploads, `aspect_ratio` (width / height of the file). A version
reloaded under the same number (its file replaced) starts over with its own reference.
Figures are recomputed every EVERY rows into h5serve_drift_psi{model,version,statistic} (each
worker its own; /metrics shows the highest) and `GET /models/<name>`.
"""

from __future__ import annotations

import weakref
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app import metrics
from app.runtime.dataplane import Call
from app.runtime.dataplane.types import InferRequest, InferResponse
from app.runtime.drift_reference import Histogram, Reference, statistics, upload_size

NO_DRIFT, DRIFT = 0.1, 0.25
EVERY = 50  # rows between two computations of the figures


@dataclass
class _Profile:
    """One version's reference (built from its first `size` rows when none was given)
    and rolling window, per statistic."""

    classes: int
    window: int
    size: int
    reference: Reference | None
    # The loaded version it describes, weakly (a profile must not keep a retired model
    # alive): a version reloaded under the same number starts a profile of its own.
    served: weakref.ref[Any] | None = None
    building: dict[str, list[float]] = field(default_factory=dict)
    recent: dict[str, deque[float]] = field(default_factory=dict)
    rows: int = 0  # since the reference was complete
    psi: dict[str, float] = field(default_factory=dict)

    def add(self, values: dict[str, np.ndarray]) -> bool:
        """Add a batch of rows' statistics; True when the figures are due."""
        count = len(values["confidence"])
        if self.reference is None:  # still building it: the whole batch goes in
            for name, column in values.items():
                self.building.setdefault(name, []).extend(column.tolist())
            if len(self.building["confidence"]) >= self.size:
                self.reference = Reference.of(self.building, self.classes, "requests")
                self.building = {}
            return False
        for name, column in values.items():
            self.recent.setdefault(name, deque(maxlen=self.window)).extend(column.tolist())
        before, self.rows = self.rows, self.rows + count
        return before // EVERY != self.rows // EVERY

    def figures(self) -> dict[str, float]:
        assert self.reference is not None
        histograms = self.reference.histograms
        self.psi = {name: round(histograms[name].psi(np.array(recent)), 4)
                    for name, recent in self.recent.items() if name in histograms}
        return self.psi


def psi(reference: np.ndarray, recent: np.ndarray, classes: int = 0) -> float:
    """The population stability index of `recent` against `reference`: over `classes`
    categories, else over the reference's deciles."""
    return Histogram.of(reference, classes).psi(recent)


def row_statistics(request: InferRequest, answer: InferResponse) -> dict[str, np.ndarray]:
    """Each answered row's statistics (aspect ratio only for uploads)."""
    return statistics(answer.batch, answer.probabilities,
                      [upload_size(d.facts) for d in answer.images if d is not None])


class DriftMonitor:
    """Watches every answer (a DataPlane watcher) and keeps each version's figures."""

    def __init__(self, reference: int, window: int) -> None:
        self.size = reference
        self.window = window
        self._profiles: dict[tuple[str, int], _Profile] = {}

    def __call__(self, call: Call, request: InferRequest, answer: InferResponse) -> None:
        key, served = (answer.model_name, answer.model_version), call.served
        profile = self._profiles.get(key)
        if profile is None or (served is not None and profile.served is not None
                               and profile.served() is not served):
            given = served.drift_reference if served is not None else None
            profile = self._profiles[key] = _Profile(
                len(answer.labels), self.window, self.size, given,
                weakref.ref(served) if served is not None else None)
        if profile.add(row_statistics(request, answer)):
            labels = (answer.model_name, str(answer.model_version))
            for name, value in profile.figures().items():
                metrics.DRIFT_PSI.labels(*labels, name).set(value)

    def reference(self, model: str, version: int) -> Reference | None:
        """The version's reference in this worker, None while its first rows build it."""
        profile = self._profiles.get((model, version))
        return profile.reference if profile else None

    def figures(self, model: str, version: int, given: Reference | None) -> dict[str, Any]:
        """What `GET /models/<name>` shows: the reference's source and progress (`given`:
        the version's own, from a file or its examples), and the latest PSI."""
        profile = self._profiles.get((model, version))
        reference = profile.reference if profile else given
        building = len(profile.building.get("confidence", ())) if profile else 0
        return {"reference_source": reference.source if reference else "requests",
                "reference_from": reference.origin if reference else "",
                "reference_rows": reference.rows if reference else building,
                "reference_size": self.size if reference is None
                or reference.source == "requests" else reference.rows,
                "window_rows": min(profile.rows, self.window) if profile else 0,
                "psi": dict(profile.psi) if profile else {},
                "thresholds": {"no_drift_below": NO_DRIFT, "drift_above": DRIFT}}
