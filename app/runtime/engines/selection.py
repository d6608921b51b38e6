"""Which runtime serves a model: convert, check parity, time, pick; and say why.

RUNTIME=auto converts the model to every installed candidate (once per host: the cache),
keeps those that give Keras' answers (app.runtime.engines.parity), times them beside
TensorFlow and picks the fastest, if it beats TensorFlow by MIN_GAIN (measurement noise
must not move a model). RUNTIME=<name> forces one; it is refused if it cannot convert
or misses parity (RUNTIME_PARITY=warn serves it anyway). TensorFlow always remains.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from app.config import Settings
from app.runtime.engines import ConversionError, Engine, onnx_engine, openvino_engine
from app.runtime.engines.cache import cache_entry, model_key
from app.runtime.engines.parity import Parity, compare
from app.runtime.engines.timing import Timings, cached_measure, score

log = logging.getLogger(__name__)
MIN_GAIN = 1.05
CONVERTERS: dict[str, tuple[ModuleType, tuple[str, ...]]] = {
    "onnxruntime": (onnx_engine, ("onnxruntime", "tf2onnx", "onnx")),
    "openvino": (openvino_engine, ("openvino",)),
}
Probabilities = Callable[[np.ndarray], np.ndarray]


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


def select_runtime(traced: Any, reference: Engine, probabilities: Probabilities,
                   inputs: np.ndarray, settings: Settings, model_path: Path) -> Selection:
    """The runtime to serve with; raises RuntimeRefused for a forced one that cannot."""
    tensorflow = Candidate("tensorflow", reference, parity=Parity(len(inputs), 0.0, 0))
    if settings.RUNTIME == "tensorflow":
        return Selection(reference, "RUNTIME=tensorflow", [tensorflow])
    names = list(CONVERTERS) if settings.RUNTIME == "auto" else [settings.RUNTIME]
    import keras
    import tensorflow as tf

    key = model_key(model_path, tuple(inputs.shape[1:]), f"tf {tf.__version__} "
                    f"keras {keras.__version__}")
    wanted = probabilities(reference.forward(inputs))
    candidates = [tensorflow] + [_try(name, traced, key, inputs, wanted, probabilities,
                                      settings) for name in names]
    for candidate in candidates[1:]:  # one line each: a failure is said once, here
        log.log(logging.WARNING if candidate.failure else logging.INFO,
                "runtime %s for %s: %s", candidate.name, model_path.name, candidate.summary())
    if settings.RUNTIME != "auto":
        return _forced(candidates[1], candidates, settings)
    usable = [c for c in candidates if not c.failure]
    if len(usable) == 1:
        return Selection(reference, "no other runtime gives the same answers", candidates)
    batch_sizes = sorted({1, settings.MAX_BATCH_SIZE})
    setup = f"{reference.description} | {settings.RUNTIME_PRECISION} | {batch_sizes} | " \
        f"{settings.RUNTIME_TIMING_SECONDS}s"
    timings, cached = cached_measure(settings.RUNTIME_CACHE_DIR, key,
                                     [c.engine for c in usable if c.engine], inputs,
                                     batch_sizes, settings.RUNTIME_TIMING_SECONDS, setup)
    for candidate in usable:
        candidate.images_per_s = timings[candidate.name]
    return _fastest(usable, candidates, timings, cached)


def _try(name: str, traced: Any, key: str, inputs: np.ndarray, wanted: np.ndarray,
         probabilities: Probabilities, settings: Settings) -> Candidate:
    """Convert (or read the cache), load and gate one runtime."""
    module, packages = CONVERTERS[name]
    missing = [p for p in packages if importlib.util.find_spec(p) is None]
    if missing:
        return Candidate(name, failure=f"not installed ({', '.join(missing)})")
    libraries = module.libraries()
    folder = f"{name}-{hashlib.sha256(libraries.encode()).hexdigest()[:12]}"
    with cache_entry(settings.RUNTIME_CACHE_DIR, key, folder) as entry:
        if entry.failure is not None:
            return Candidate(name, failure=f"{entry.failure} (cached in {entry.folder})")
        note = f"from the cache ({entry.folder})"
        try:
            if not entry.ready:
                started = time.monotonic()
                module.convert(traced, entry.folder)
                entry.mark_done()
                note = f"converted in {time.monotonic() - started:.1f} s ({libraries})"
            args = (settings.RUNTIME_PRECISION,) if name == "openvino" else ()
            engine = module.load(entry.folder, *args)
        except ConversionError as exc:
            if entry.persistent:
                entry.mark_failed(f"conversion failed: {exc}")
            return Candidate(name, failure=f"conversion failed: {exc}")
    try:
        parity = compare(wanted, probabilities(engine.forward(inputs)), engine.precision)
    except Exception as exc:  # a runtime that converts but cannot run this input
        return Candidate(name, engine, failure=f"failed to run: {exc}", note=note)
    failure = "" if parity.passed else f"misses parity: {parity.summary()}"
    return Candidate(name, engine, failure=failure, parity=parity, note=note)


def _forced(candidate: Candidate, candidates: list[Candidate],
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


def _fastest(usable: list[Candidate], candidates: list[Candidate], timings: Timings,
             cached: bool) -> Selection:
    """The best-scoring runtime, if it beats TensorFlow by MIN_GAIN."""
    base = score(timings["tensorflow"])
    best = max(usable, key=lambda c: score(timings[c.name]))
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
