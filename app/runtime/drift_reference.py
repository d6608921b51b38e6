"""A model version's drift reference: a histogram per statistic, and where it came from.

A reference is known right from one of three sources, the first that a version has
(app.runtime.drift_sources): a file shipped beside the model, written by a server that took it
earlier (`GET /models/<name>/drift_reference`); else its labelled examples, run through
the served runtime once at load, so drift is measured from the first request; else the
first DRIFT_REFERENCE rows it answers (app.runtime.drift builds that one). Only the
runtime's predict is called: a lean worker (no TensorFlow) computes it as well.

The file, `<model stem>.drift_reference.json` beside the model file:

    {"h5serve_drift_reference": 1, "rows": 1000, "labels": ["T-shirt/top", ...],
     "statistics": {"predicted_class": {"shares": [0.1, ...]},        one per label
                    "confidence": {"edges": [0.61, ...], "shares": [0.1, ...]}, ...}}

`edges` are the cut points between a number's bins (its reference deciles), `shares` each
bin's share of the reference rows (one more than the edges).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np

STATISTICS = ("predicted_class", "confidence", "brightness", "contrast", "clipped",
              "aspect_ratio")
FORMAT = 1  # the file's "h5serve_drift_reference"
_FLOOR = 1e-4  # an empty bin's share, so the logarithm stays finite


class ReferenceError(ValueError):
    """A reference file that cannot be used; the message says why."""


@dataclass(frozen=True)
class Histogram:
    """One statistic's reference: each bin's share and, for a number, the cut points
    between its bins (the reference's deciles); a class's bins are the labels (no edges)."""

    shares: tuple[float, ...]
    edges: tuple[float, ...] | None = None

    @classmethod
    def of(cls, values: np.ndarray, classes: int = 0) -> Histogram:
        """The histogram of reference `values`: over `classes` classes, else deciles."""
        edges = None if classes else tuple(
            np.unique(np.quantile(values, np.linspace(0, 1, 11))[1:-1]).tolist())
        counts = cls((0.0,) * max(classes, 1), edges).counts(values)
        return cls(tuple((counts / max(counts.sum(), 1)).tolist()), edges)

    def counts(self, values: np.ndarray) -> np.ndarray:
        """How many of `values` fall in each bin."""
        if self.edges is None:
            return np.bincount(values.astype(int), minlength=len(self.shares))
        return np.bincount(np.searchsorted(self.edges, values, "right"),
                           minlength=len(self.edges) + 1)

    def psi(self, recent: np.ndarray) -> float:
        """The population stability index of `recent` against this reference."""
        counts = self.counts(recent)
        expected = np.maximum(np.array(self.shares), _FLOOR)
        actual = np.maximum(counts / max(counts.sum(), 1), _FLOOR)
        return float(np.sum((actual - expected) * np.log(actual / expected)))

    def to_dict(self) -> dict[str, list[float]]:
        return {"shares": list(self.shares), **({} if self.edges is None
                                                else {"edges": list(self.edges)})}


@dataclass(frozen=True)
class Reference:
    """A version's reference: its histograms, how many rows made them, and their source
    ("file", "examples" or "requests") with the file or folders they were read from."""

    source: str
    rows: int
    histograms: dict[str, Histogram]
    origin: str = ""

    @classmethod
    def of(cls, values: dict[str, list[float]], classes: int, source: str,
           origin: str = "") -> Reference:
        """The reference of rows' statistics (app.runtime.drift's `statistics`)."""
        return cls(source, len(values["confidence"]), {
            name: Histogram.of(np.array(column), classes if name == "predicted_class" else 0)
            for name, column in values.items() if column}, origin)

    def to_json(self, labels: tuple[str, ...]) -> dict[str, Any]:
        """The reference file's content, for a model with `labels`."""
        return {"h5serve_drift_reference": FORMAT, "rows": self.rows, "labels": list(labels),
                "statistics": {name: histogram.to_dict()
                               for name, histogram in self.histograms.items()}}


def statistics(batch: np.ndarray, probabilities: np.ndarray,
               sizes: list[tuple[int, int]]) -> dict[str, np.ndarray]:
    """Each row's statistics, from its model input and its answer; and the aspect ratio
    of each upload among them, from its file's (width, height) in `sizes`."""
    rows = batch.reshape(len(batch), -1)
    low, high = rows.min(axis=1, keepdims=True), rows.max(axis=1, keepdims=True)
    found = {"predicted_class": probabilities.argmax(axis=1).astype(float),
             "confidence": probabilities.max(axis=1),
             "brightness": rows.mean(axis=1), "contrast": rows.std(axis=1),
             "clipped": ((rows <= low) | (rows >= high)).mean(axis=1)}
    if sizes:
        found["aspect_ratio"] = np.array([w / h for w, h in sizes], dtype=float)
    return found


def upload_size(facts: dict[str, object]) -> tuple[int, int]:
    """An upload's (width, height), from what decoding it found (DecodedImage.facts)."""
    return cast(int, facts["width"]), cast(int, facts["height"])


def reference_file(model_path: Path) -> Path:
    """Where a model's reference file is shipped: beside it, named after it."""
    return model_path.with_name(f"{model_path.stem}.drift_reference.json")


def read_reference_file(path: Path, labels: tuple[str, ...]) -> Reference:
    """The reference in `path`, checked against the model's `labels`.

    Raises ReferenceError naming what is wrong."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReferenceError(f"{path}: not readable JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("h5serve_drift_reference") != FORMAT:
        raise ReferenceError(f'{path}: expected an object with "h5serve_drift_reference": '
                             f"{FORMAT} (as GET /models/<name>/drift_reference writes it)")
    if data.get("labels", list(labels)) != list(labels):
        raise ReferenceError(f"{path}: its labels are not the model's ({', '.join(labels)})")
    rows, statistics = data.get("rows"), data.get("statistics")
    if not isinstance(rows, int) or rows < 1 or not isinstance(statistics, dict) \
            or not statistics or not set(statistics) <= set(STATISTICS):
        raise ReferenceError(f'{path}: needs "rows" (a count) and "statistics" (some of '
                             f"{', '.join(STATISTICS)})")
    return Reference("file", rows, {name: _histogram(path, name, entry, len(labels))
                                    for name, entry in statistics.items()}, str(path))


def _histogram(path: Path, name: str, entry: Any, classes: int) -> Histogram:
    shares = entry.get("shares") if isinstance(entry, dict) else None
    edges = entry.get("edges") if isinstance(entry, dict) else None
    bins = classes if name == "predicted_class" else len(edges or ()) + 1
    numbers = [*(shares or ()), *(edges or ())]
    if not isinstance(shares, list) or len(shares) != bins or (edges is None) != (
            name == "predicted_class") or not all(
            isinstance(x, int | float) and math.isfinite(x) for x in numbers) \
            or min(shares) < 0 or (edges and edges != sorted(edges)):
        raise ReferenceError(
            f'{path}: statistic {name!r}: expected {{"shares": [{bins} shares]}}'
            if name == "predicted_class" else f'{path}: statistic {name!r}: expected '
            '{"edges": [ascending numbers], "shares": [one more share than edges]}')
    return Histogram(tuple(float(s) for s in shares),
                     None if edges is None else tuple(float(e) for e in edges))
