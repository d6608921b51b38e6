"""Which runtime serves a model: convert, check parity, time, then choose.

RUNTIME=auto converts the model to every installed candidate (once per host: the cache),
keeps those that give Keras' answers (app.runtime.engines.parity), times them beside
TensorFlow (app.runtime.engines.timing) and lets app.runtime.engines.choice pick.
RUNTIME=<name> tries that one only. TensorFlow always remains.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from app.config import Settings
from app.runtime.engines import (
    ConversionError,
    Engine,
    failure_reason,
    onnx_engine,
    openvino_engine,
)
from app.runtime.engines.cache import cache_entry, model_key
from app.runtime.engines.choice import Candidate, Selection, fastest, forced
from app.runtime.engines.decisions import recall, remember
from app.runtime.engines.parity import (
    Parity,
    cached_parity,
    compare,
    inputs_digest,
    parity_inputs,
    synthetic_count,
)
from app.runtime.engines.timing import batch_sizes, cached_measure
from app.runtime.spec import ImageSpec

log = logging.getLogger(__name__)
CONVERTERS: dict[str, tuple[ModuleType, tuple[str, ...]]] = {
    "onnxruntime": (onnx_engine, ("onnxruntime", "tf2onnx", "onnx")),
    "openvino": (openvino_engine, ("openvino",)),
}
Probabilities = Callable[[np.ndarray], np.ndarray]


def select_runtime(traced: Any, reference: Engine, probabilities: Probabilities,
                   spec: ImageSpec, examples: np.ndarray, settings: Settings,
                   model_path: Path) -> Selection:
    """The runtime to serve with; raises RuntimeRefused for a forced one that cannot.
    `examples`: the card's labelled examples as decoded pixels (part of the gate)."""
    if settings.RUNTIME == "tensorflow":
        return Selection(reference, "RUNTIME=tensorflow", [Candidate("tensorflow", reference)])
    names = list(CONVERTERS) if settings.RUNTIME == "auto" else [settings.RUNTIME]
    import keras
    import tensorflow as tf

    per_image = _seconds_per_image(reference, spec)
    inputs = parity_inputs(spec, examples, synthetic_count(per_image))
    key = model_key(model_path, spec.model_shape, f"tf {tf.__version__} "
                    f"keras {keras.__version__}")
    wanted = cache(lambda: probabilities(reference.forward(inputs)))  # unless all cached
    setup = f"{reference.description} | {settings.RUNTIME_PRECISION} | " \
        f"{settings.MAX_BATCH_SIZE} | {settings.RUNTIME_TIMING_SECONDS}s"
    decided_as = f"{setup} | gate {inputs_digest(inputs)}"
    known = recall(settings.RUNTIME_CACHE_DIR, key, decided_as) \
        if settings.RUNTIME == "auto" else None
    if known is not None:
        serves, why, stored = known
        engine = reference if serves == "tensorflow" else _try(
            serves, traced, key, inputs, wanted, probabilities, settings).engine
        if engine is not None:
            log.info("runtime %s for %s: decided earlier on this host (%s)", serves,
                     model_path.name, settings.RUNTIME_CACHE_DIR)
            return Selection(engine, why.replace("measured now", "measured earlier on this "
                                                 "host"), stored)
    tensorflow = Candidate("tensorflow", reference, parity=Parity(len(inputs), 0.0, 0))
    candidates = [tensorflow] + [_try(name, traced, key, inputs, wanted, probabilities,
                                      settings) for name in names]
    for candidate in candidates[1:]:  # one line each; a failure is a warning once per host
        fresh_failure = candidate.failure and "(cached in " not in candidate.failure
        log.log(logging.WARNING if fresh_failure else logging.INFO,
                "runtime %s for %s: %s", candidate.name, model_path.name, candidate.summary())
    if settings.RUNTIME != "auto":
        return forced(candidates[1], candidates, settings)
    usable = [c for c in candidates if not c.failure]
    if len(usable) == 1:
        selection = Selection(reference, "no other runtime gives the same answers", candidates)
    else:  # timings keyed by the settings, not the sizes (those follow this worker's time)
        timings, cached = cached_measure(
            settings.RUNTIME_CACHE_DIR, key, [c.engine for c in usable if c.engine], inputs,
            batch_sizes(settings.MAX_BATCH_SIZE, settings.RUNTIME_TIMING_SECONDS, per_image),
            settings.RUNTIME_TIMING_SECONDS, setup)
        for candidate in usable:
            candidate.images_per_s = timings[candidate.name]
        selection = fastest(usable, candidates, timings, cached)
    remember(settings.RUNTIME_CACHE_DIR, key, decided_as, selection.engine.name,
             selection.reason, candidates)
    return selection


def _seconds_per_image(reference: Engine, spec: ImageSpec) -> float:
    """Keras' time for one image (the best of two calls): sizes the gate and the timing."""
    zeros, best = np.zeros((1, *spec.model_shape), np.float32), float("inf")
    for _ in range(2):
        started = time.perf_counter()
        reference.forward(zeros)
        best = min(best, time.perf_counter() - started)
    return best


def _try(name: str, traced: Any, key: str, inputs: np.ndarray,
         wanted: Callable[[], np.ndarray], probabilities: Probabilities,
         settings: Settings) -> Candidate:
    """Convert (or read the cache), load and gate one runtime, under the entry's lock: a
    second worker waits, then finds the artefact and the gate's result."""
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
            engine = module.load(entry.folder, settings.RUNTIME_PRECISION)
        except ConversionError as exc:  # the model's fault: tried once per host
            if entry.persistent:
                entry.mark_failed(f"conversion failed: {exc}")
            return Candidate(name, failure=f"conversion failed: {exc}")
        except OSError as exc:  # the disk's (full, say): tried again at the next load
            return Candidate(name, failure=f"conversion failed: {exc}")
        try:
            parity = cached_parity(entry.folder if entry.persistent else None, inputs,
                                   engine.precision, lambda: compare(
                                       wanted(), probabilities(engine.forward(inputs)),
                                       engine.precision))
        except Exception as exc:  # a runtime that converts but cannot run this input
            return Candidate(name, engine, failure=f"failed to run: {failure_reason(exc)}",
                             note=note)
    failure = "" if parity.passed else f"misses parity: {parity.summary()}"
    return Candidate(name, engine, failure=failure, parity=parity, note=note)
