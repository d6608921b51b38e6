"""What the candidates came to: the runtime that serves a model, why, and each one's figures.

RUNTIME=auto serves the fastest runtime with Keras' answers only if it beats TensorFlow by
MIN_GAIN (measurement noise must not move a model between runtimes); RUNTIME=<name> serves
that one or refuses the model, naming why.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from app.config import Settings
from app.runtime.engines import Engine
from app.runtime.engines.parity import Parity
from app.runtime.engines.timing import Timings, score

log = logging.getLogger(__name__)
MIN_GAIN = 1.05


class RuntimeRefused(RuntimeError):
    """A forced RUNTIME cannot serve this model; the message says why, in one line."""


@dataclass
class Candidate:
    """One runtime tried for a model: what came of it."""

    name: str
    engine: Engine | None = None
    failure: str = ""  # why it cannot serve (conversion or parity), "" when it can
    parity: Parity | None = None
    images_per_s: dict[int, float] = field(default_factory=dict)
    note: str = ""  # converted now, or read from the cache
    description: str = ""  # the engine's, kept once a runtime that lost is let go

    def summary(self) -> str:
        if self.failure:
            return self.failure
        return f"{self.note}; {self.parity.summary()}" if self.parity else self.note

    def describe(self) -> dict[str, Any]:
        return {"runtime": self.name, "usable": not self.failure,
                "why_not": self.failure or None, "note": self.note or None,
                "parity": self.parity.describe() if self.parity else None,
                "images_per_s": {str(b): round(v, 1) for b, v in self.images_per_s.items()},
                "description": self.engine.description if self.engine else self.description}


@dataclass(frozen=True)
class Selection:
    """The runtime that serves, why, and every candidate's figures."""

    engine: Engine
    reason: str
    candidates: list[Candidate]

    def __post_init__(self) -> None:
        """Let go of the runtimes that do not serve: each holds a copy of the model."""
        for candidate in self.candidates:
            if candidate.engine is not None and candidate.engine is not self.engine:
                candidate.description, candidate.engine = candidate.engine.description, None

    def describe(self) -> dict[str, Any]:
        return {"name": self.engine.name, "description": self.engine.description,
                "precision": self.engine.precision, "why": self.reason,
                "candidates": [c.describe() for c in self.candidates]}


def forced(candidate: Candidate, candidates: list[Candidate],
            settings: Settings) -> Selection:
    """RUNTIME=<name>: that runtime, or a refusal naming why."""
    why = f"RUNTIME={candidate.name}"
    if candidate.engine is None or (candidate.failure and settings.RUNTIME_PARITY != "warn"):
        hint = " (RUNTIME_PARITY=warn serves it anyway)" if candidate.engine else ""
        raise RuntimeRefused(f"{why}: {candidate.failure}{hint}")
    if candidate.failure:
        log.warning("%s %s; serving it anyway (RUNTIME_PARITY=warn)", why, candidate.failure)
        why += f", {candidate.failure} (RUNTIME_PARITY=warn)"
    return Selection(candidate.engine, why, candidates)


def fastest(usable: list[Candidate], candidates: list[Candidate], timings: Timings,
             cached: bool) -> Selection:
    """The best-scoring runtime, if it beats TensorFlow by MIN_GAIN and is not slower than
    TensorFlow at the batched size (a busy server must not lose throughput for latency:
    OpenVINO on EfficientNetB0, 1.52x alone and 0.74x at batch 8, stays off)."""
    base, batched = score(timings["tensorflow"]), max(timings["tensorflow"])
    keeps_up = [c for c in usable
                if timings[c.name][batched] >= timings["tensorflow"][batched]]
    best = max(keeps_up, key=lambda c: score(timings[c.name]))
    gain = score(timings[best.name]) / base
    measured = "measured earlier on this host" if cached else "measured now"
    ratios = ", ".join(f"{c.name} {score(timings[c.name]) / base:.2f}x" for c in usable[1:])
    if best.name == "tensorflow" or gain < MIN_GAIN:
        return Selection(usable[0].engine,  # type: ignore[arg-type]
                         f"TensorFlow measured fastest, or within {MIN_GAIN:.2f}x "
                         f"({ratios} TensorFlow's images/s; {measured})", candidates)
    sizes = ", ".join(f"{timings[best.name][b] / timings['tensorflow'][b]:.2f}x at batch {b}"
                      for b in sorted(timings[best.name]))
    return Selection(best.engine,  # type: ignore[arg-type]
                     f"fastest of the runtimes with Keras' answers: {sizes} TensorFlow's "
                     f"images/s ({measured})", candidates)
