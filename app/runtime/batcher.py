"""Adaptive micro-batching: requests that arrive while the model is busy share a batch.

One loop per process owns the model, so TensorFlow is never called concurrently.
It takes whatever is queued (up to MAX_BATCH_SIZE rows), runs it, and hands each
request its own rows back. An idle model runs a lone request at once; the optional
MAX_BATCH_DELAY_MS only applies when there is something to wait for.

The model only ever sees a few batch shapes: each batch is padded with zero rows to
1, 2 or the next multiple of 4 (at most 3 rows of padding). TensorFlow keeps kernels
and buffers for every input shape it meets: after every size from 1 to 32, one
MobileNetV2 process held 1.30 GB, after those ten sizes 1.20 GB.

Under gunicorn's gevent worker `threading` is monkey-patched: the loop is then a
greenlet, and the forward pass runs in a real thread (app.runtime.offload), so the hub keeps
serving /healthz and new connections while a batch computes. Without gevent (tests,
sync servers) the loop is a plain thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from app.runtime.errors import Overloaded
from app.runtime.offload import ThreadRunner

log = logging.getLogger(__name__)

PredictFn = Callable[[np.ndarray], np.ndarray]
# Called after each forward pass with (rows, each job's queue wait, forward seconds).
BatchObserver = Callable[[int, list[float], float], None]


@dataclass
class _Job:
    rows: np.ndarray
    future: Future = field(default_factory=Future)
    queued_at: float = field(default_factory=time.perf_counter)


class MicroBatcher:
    """Coalesce concurrent `submit` calls into batches for one `predict_fn`."""

    def __init__(self, predict_fn: PredictFn, max_batch_size: int = 32,
                 max_delay_s: float = 0.0, max_queue: int = 64,
                 observer: BatchObserver | None = None) -> None:
        self._predict = predict_fn
        self._observe = observer
        self.max_batch_size = max_batch_size
        self.max_delay_s = max_delay_s
        self.max_queue = max_queue
        self._buckets = bucket_sizes(max_batch_size)
        self._offload = ThreadRunner(1)
        self._jobs: deque[_Job] = deque()
        self._closed = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="micro-batcher", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        """False if the batching loop has died (the process can no longer infer)."""
        return self._thread.is_alive()

    def submit(self, rows: np.ndarray) -> np.ndarray:
        """Run `rows` (model input, batch axis first) and return their outputs.

        Raises Overloaded at once when MAX_QUEUE_SIZE requests are already waiting.
        """
        job = _Job(rows)
        with self._cond:
            if self._closed:
                raise Overloaded("The model version is being unloaded; retry.", retry_after_s=1)
            if len(self._jobs) >= self.max_queue:
                raise Overloaded("The server is at capacity; retry in a moment.",
                                 retry_after_s=1)
            self._jobs.append(job)
            self._cond.notify()
        return job.future.result()

    def close(self, timeout_s: float = 30.0) -> None:
        """Take no more jobs, finish the queued ones, end the loop (a version unloaded)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout_s)
        self._offload.close()

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            self._execute(batch)

    def _next_batch(self) -> list[_Job] | None:
        """Block for the first job, then take more while they fit (and the delay allows);
        None once closed and drained."""
        with self._cond:
            while not self._jobs:
                if self._closed:
                    return None
                self._cond.wait()
            batch = [self._jobs.popleft()]
            rows = len(batch[0].rows)
            deadline = time.monotonic() + self.max_delay_s
            while rows < self.max_batch_size:
                if not self._jobs:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or not self._cond.wait(remaining):
                        break
                    continue
                if rows + len(self._jobs[0].rows) > self.max_batch_size:
                    break
                job = self._jobs.popleft()
                batch.append(job)
                rows += len(job.rows)
        return batch

    def _execute(self, batch: list[_Job]) -> None:
        """Run the batch; on failure, run each job alone so one bad job fails only itself."""
        started = time.perf_counter()
        try:
            outputs = self._run_rows(np.concatenate([job.rows for job in batch]))
        except Exception as exc:
            if len(batch) == 1:
                log.exception("inference failed for a batch of %d rows", len(batch[0].rows))
                batch[0].future.set_exception(exc)
                return
            for job in batch:
                self._execute([job])
            return
        if self._observe is not None:
            self._observe(len(outputs), [started - job.queued_at for job in batch],
                          time.perf_counter() - started)
        start = 0
        for job in batch:
            job.future.set_result(outputs[start:start + len(job.rows)])
            start += len(job.rows)

    def _run_rows(self, rows: np.ndarray) -> np.ndarray:
        """Forward pass in chunks of at most max_batch_size rows (big client batches)."""
        chunks = [self._offload(self._predict_padded, rows[i:i + self.max_batch_size])
                  for i in range(0, len(rows), self.max_batch_size)]
        return chunks[0] if len(chunks) == 1 else np.concatenate(chunks)

    def _predict_padded(self, rows: np.ndarray) -> np.ndarray:
        """The model's outputs for `rows`, run as a batch of the next bucket size."""
        size = next(b for b in self._buckets if b >= len(rows))
        if size == len(rows):
            return self._predict(rows)
        padding = np.zeros((size - len(rows), *rows.shape[1:]), rows.dtype)
        return self._predict(np.concatenate([rows, padding]))[:len(rows)]


def bucket_sizes(max_batch_size: int) -> tuple[int, ...]:
    """The batch sizes the model is run with: 1, 2, multiples of 4, and the maximum."""
    sizes = {size for size in (1, 2, *range(4, max_batch_size, 4)) if size < max_batch_size}
    return (*sorted(sizes), max_batch_size)
