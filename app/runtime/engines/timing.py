"""Images/s of each runtime on the model's own input, at the batch sizes a server forms.

Candidates are timed in turns (a few rounds each, the best round kept): noise from the
other worker or the machine only ever slows a round down, and turns spread it fairly.
The figures are cached beside the converted models, so every worker of a host picks
from the same measurement and a restart does not measure again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from app.runtime.engines import Engine
from app.runtime.engines.cache import cache_entry

ROUNDS = 3
GAIN = 1.1  # what a doubled batch must add to images/s to be worth its memory and wait
BATCHED = 8  # the batch a busy server forms: 7 on average at c=32 with 2 workers
Timings = dict[str, dict[int, float]]  # runtime -> batch size -> images/s


def batch_sizes(max_batch_size: int, seconds: float, per_image: float) -> list[int]:
    """Batch 1 (a lone request) and BATCHED (a busy server; at most MAX_BATCH_SIZE, and
    smaller when one call would not fit a round). Not MAX_BATCH_SIZE: batches that big
    are rare, and TensorFlow keeps the memory its biggest batch took (MobileNetV2 at 32:
    +490 MB for good), which every worker would pay for having been timed."""
    fits = int(seconds / (ROUNDS * max(per_image, 1e-6)))
    return sorted({1, max(1, min(max_batch_size, BATCHED, fits))})


def measure(engines: list[Engine], inputs: np.ndarray, batch_sizes: list[int],
            seconds: float) -> Timings:
    """About `seconds` of calls per runtime and batch size, split into rounds."""
    found: Timings = {engine.name: {} for engine in engines}
    for size in batch_sizes:
        batch = np.ascontiguousarray(np.resize(inputs, (size, *inputs.shape[1:])))
        started = time.perf_counter()
        for engine in engines:
            engine.forward(batch)  # the first call at a new size may plan or allocate
        one_call = (time.perf_counter() - started) / len(engines)
        for _ in range(ROUNDS if one_call * ROUNDS <= seconds else 1):  # a slow model: once
            for engine in engines:
                calls, started = 0, time.perf_counter()
                while calls == 0 or time.perf_counter() - started < seconds / ROUNDS:
                    engine.forward(batch)
                    calls += 1
                rate = calls * size / (time.perf_counter() - started)
                found[engine.name][size] = max(found[engine.name].get(size, 0.0), rate)
    return found


def cached_measure(root: Path | None, key: str, engines: list[Engine], inputs: np.ndarray,
                   batch_sizes: list[int], seconds: float, setup: str) -> tuple[Timings, bool]:
    """`measure`, read from the cache when this host already timed these runtimes under
    the same setup (threads, batch sizes, precision); (timings, came from the cache)."""
    with cache_entry(root, key, "timings") as entry:
        path = entry.folder / "timings.json"
        stored = json.loads(path.read_text()) if path.exists() else {}
        names = sorted(engine.name for engine in engines)
        hit = stored.get(setup)
        if hit and sorted(hit) == names:
            return {name: {int(b): v for b, v in sizes.items()}
                    for name, sizes in hit.items()}, True
        found = measure(engines, inputs, batch_sizes, seconds)
        stored[setup] = found
        path.write_text(json.dumps(stored, indent=1))
        entry.mark_done()
        return found, False


def batch_limit(forward: Callable[[np.ndarray], Any], shape: tuple[int, ...],
                max_batch_size: int, seconds: float) -> tuple[int, dict[int, float]]:
    """The biggest batch worth forming: from BATCHED, doubled (up to MAX_BATCH_SIZE) while
    the doubled batch gives at least GAIN times the images/s; with the figures.

    A big model gains nothing past a few images on a worker's one thread (MobileNetV2 on
    OpenVINO: 108, 111, 109, 105 images/s at batch 4, 8, 16, 32), while every image in a
    batch holds its activations (the same process: 177, 242, 352, 645 MB) and the memory
    stays after the biggest batch has run. Timed where the model is prepared, in a process
    that exits, so no worker pays for the batches measured here. A size is timed only if
    two calls of it fit `seconds`: a model too slow for that (a second an image) keeps
    BATCHED untimed, where batching gains it nothing anyway.
    """
    rates: dict[int, float] = {}

    def seconds_per_call(size: int) -> float:
        started = time.perf_counter()
        forward(np.zeros((size, *shape), np.float32))
        return time.perf_counter() - started

    def rate(size: int) -> float:
        batch = np.zeros((size, *shape), np.float32)
        forward(batch)  # the first call at a size plans and allocates
        best, spent = float("inf"), 0.0
        while spent < seconds / 3 or best == float("inf"):
            started = time.perf_counter()
            forward(batch)
            took = time.perf_counter() - started
            best, spent = min(best, took), spent + took
        rates[size] = size / best
        return rates[size]

    size = min(BATCHED, max_batch_size)
    if size == max_batch_size or 2 * size * seconds_per_call(1) > seconds:
        return size, {}
    current = rate(size)
    while size < max_batch_size:
        bigger = min(2 * size, max_batch_size)
        if 2 * bigger / current > seconds or rate(bigger) < GAIN * current:
            break
        size, current = bigger, rates[bigger]
    return size, {b: round(r, 1) for b, r in sorted(rates.items())}


def score(rates: dict[int, float]) -> float:
    """One figure for the batch sizes a server forms: the geometric mean, so a runtime
    fast only alone (or only in big batches) does not win on that alone."""
    return float(np.exp(np.mean(np.log(list(rates.values())))))
