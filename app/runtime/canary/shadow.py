"""Mirror work that runs after the answer is sent, never on the request path.

A request only drops a job into a short queue (no wait, no lock held); a couple of
workers (greenlets under gevent, threads elsewhere) run the jobs when the hub is free. A
job first yields, so the request that made it writes its answer before any mirror work
starts. When the queue is full the job is dropped, not waited for: the sample rate falls
by itself when the other version cannot keep up, and the caller counts and says so.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)
QUEUE_DEPTH = 8  # per worker: beyond this, the mirror has fallen behind
RUNNERS = 2


class ShadowRunner:
    """A bounded queue of mirror jobs and the few runners that empty it."""

    def __init__(self, depth: int = QUEUE_DEPTH, runners: int = RUNNERS) -> None:
        self._jobs: queue.Queue[Callable[[], None]] = queue.Queue(depth)
        self._runners = runners
        self._started = False

    def offer(self, job: Callable[[], None]) -> bool:
        """Queue `job`; False (dropped) when the queue is full."""
        if not self._started:  # on the serving hub: a greenlet made elsewhere never runs
            self._started = True
            for number in range(self._runners):
                threading.Thread(target=self._run, name=f"rollout-shadow-{number}",
                                 daemon=True).start()
        try:
            self._jobs.put_nowait(job)
        except queue.Full:
            return False
        return True

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            time.sleep(0)  # let the request that queued it send its answer first
            try:
                job()
            except Exception:  # one failed mirror must not end the runner
                log.exception("a roll-out's mirror run failed")
