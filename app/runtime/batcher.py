"""Adaptive micro-batching: requests that arrive while the model is busy share a batch.

Every served model version has its own MicroBatcher (app.runtime.inference), and its one loop
owns that version's model, so no model is ever called concurrently with itself. The loop takes
whatever is queued (up to MAX_BATCH_SIZE rows), runs it, and hands each request its own rows
back. An idle model runs a lone request at once; the optional MAX_BATCH_DELAY_MS only applies
when there is something to wait for. Other work for the model (explanations: a forward and a
backward pass) waits in its own bounded queue and runs on the same thread only when no
prediction is waiting. The model only ever sees a few batch shapes (app.runtime.padding). A
traced request's batch run is recorded as a span linked to it (app.runtime.tracing).

Under gunicorn's gevent worker `threading` is monkey-patched: the loop is then a greenlet, and
the forward pass runs in a real thread (app.runtime.offload), so the hub keeps serving /healthz
and new connections while a batch computes. Without gevent (tests, sync servers) the loop is a
plain thread.

Several models' loops run side by side, each with its own bounded queue (one busy model answers
503 for itself only), and a new version loads in app.runtime.rollout's one load thread while
they run. Loads are serialised among themselves (one thread, one look at a time) but not against
other models' forward passes: those share no TensorFlow object with a loading version (each has
its own Keras model, variables and traced function, and Keras keeps its global state per
thread), and a lock would stall every model for the seconds a load takes.
tests/runtime/test_repository.py checks that answers stay right while versions load beside
other models' running batchers and explanations.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.runtime.errors import Overloaded
from app.runtime.offload import ThreadRunner
from app.runtime.padding import bucket_sizes, predict_padded
from app.runtime.tracing import BatchRun, RequestTrace

log = logging.getLogger(__name__)

PredictFn = Callable[[np.ndarray], np.ndarray]
# Called after each forward pass with (rows, each job's queue wait, forward seconds).
BatchObserver = Callable[[int, list[float], float], None]


@dataclass
class _Job:
    rows: np.ndarray
    trace: RequestTrace | None = None
    future: Future = field(default_factory=Future)
    queued_at: float = field(default_factory=time.perf_counter)


@dataclass
class _Task:
    """Low-priority work for the model thread: fn(*args)."""
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    future: Future = field(default_factory=Future)


class MicroBatcher:
    """Coalesce concurrent `submit` calls into batches for one `predict_fn`."""

    def __init__(self, predict_fn: PredictFn, max_batch_size: int = 32,
                 max_delay_s: float = 0.0, max_queue: int = 64, observer: BatchObserver |
                 None = None, max_tasks: int = 8, padded: bool = True) -> None:
        self._predict = predict_fn
        self._observe = observer
        self.max_batch_size = max_batch_size
        self.max_delay_s = max_delay_s
        self.max_queue = max_queue
        self.max_tasks = max_tasks
        self._buckets = bucket_sizes(max_batch_size, padded)
        self._offload = ThreadRunner(1)
        self._jobs: deque[_Job] = deque()
        self._tasks: deque[_Task] = deque()
        self._closed = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="micro-batcher", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        """False if the batching loop has died (the process can no longer infer)."""
        return self._thread.is_alive()

    def submit(self, rows: np.ndarray, trace: RequestTrace | None = None) -> np.ndarray:
        """Run `rows` (model input, batch axis first) and return their outputs (and record
        the batch in the request's trace); Overloaded at once when MAX_QUEUE_SIZE requests
        are already waiting."""
        job = _Job(rows, trace)
        self._enqueue(self._jobs, job, self.max_queue,
                      "The server is at capacity; retry in a moment.", retry_after_s=1)
        return job.future.result()

    def run_task(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run fn(*args) on the model thread once no prediction is waiting; its result.
        Raises Overloaded at once when max_tasks are already waiting."""
        task = _Task(fn, args)
        self._enqueue(self._tasks, task, self.max_tasks,
                      "Too many explanations are waiting; retry in a moment.", retry_after_s=2)
        return task.future.result()

    def _enqueue(self, queue: deque[Any], item: _Job | _Task, limit: int, full: str,
                 retry_after_s: int) -> None:
        """Queue work for the loop, or refuse it at once: unloading, or `limit` waiting."""
        with self._cond:
            if self._closed:
                raise Overloaded("The model version is being unloaded; retry.", retry_after_s=1)
            if len(queue) >= limit:
                raise Overloaded(full, retry_after_s=retry_after_s)
            queue.append(item)
            self._cond.notify()

    def close(self, timeout_s: float = 30.0) -> None:
        """Take no more jobs, finish the queued ones, end the loop (a version unloaded)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout_s)
        self._offload.close()

    def _run(self) -> None:
        while (work := self._next_work()) is not None:
            if isinstance(work, _Task):
                self._execute_task(work)
            else:
                self._execute(work)

    def _next_work(self) -> list[_Job] | _Task | None:
        """Block for work: a batch of predictions first (see _take_batch), else a task;
        None once closed and drained."""
        with self._cond:
            while not self._jobs and not self._tasks:
                if self._closed:
                    return None
                self._cond.wait()
            return self._take_batch() if self._jobs else self._tasks.popleft()

    def _take_batch(self) -> list[_Job]:
        """The first job, then more while they fit (and the delay allows); under _cond."""
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

    def _execute_task(self, task: _Task) -> None:
        try:
            task.future.set_result(self._offload(task.fn, *task.args))
        except Exception as exc:
            log.exception("model task %s failed", getattr(task.fn, "__qualname__", task.fn))
            task.future.set_exception(exc)

    def _execute(self, batch: list[_Job]) -> None:
        """Run the batch; on failure, run each job alone so one bad job fails only itself."""
        started, started_ns = time.perf_counter(), time.time_ns()
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
        if traced := [job.trace for job in batch if job.trace is not None]:
            BatchRun(traced, started_ns, time.time_ns(), len(outputs))
        start = 0
        for job in batch:
            job.future.set_result(outputs[start:start + len(job.rows)])
            start += len(job.rows)

    def _run_rows(self, rows: np.ndarray) -> np.ndarray:
        """Forward pass in chunks of at most max_batch_size rows (big client batches)."""
        chunks = [self._offload(predict_padded, self._predict, self._buckets,
                                rows[i:i + self.max_batch_size])
                  for i in range(0, len(rows), self.max_batch_size)]
        return chunks[0] if len(chunks) == 1 else np.concatenate(chunks)
