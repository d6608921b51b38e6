"""Run blocking C work (forward passes, big image decodes) off the gevent hub.

Under gunicorn's gevent worker `threading` is monkey-patched, and a long C call made
from a greenlet blocks every other request of that worker. Such calls go to a pool of
real OS threads instead: the calling greenlet waits, the hub keeps serving. TensorFlow
and Pillow release the GIL while they compute, so the work really runs in parallel.
Outside gevent (tests, sync servers) the call is made directly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Runner = Callable[..., Any]


def _gevent_active() -> bool:
    try:
        from gevent import monkey
    except ImportError:  # pragma: no cover - gevent is a hard dependency
        return False
    return bool(monkey.is_module_patched("threading"))


def thread_runner(max_threads: int) -> Runner:
    """`run(fn, *args)`: in one of `max_threads` real threads under gevent, else inline."""
    if not _gevent_active():
        return lambda fn, *args: fn(*args)
    from gevent.threadpool import ThreadPool

    pool = ThreadPool(max_threads)
    return lambda fn, *args: pool.apply(fn, args)
