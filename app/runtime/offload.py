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


def gevent_active() -> bool:
    """True in a gunicorn gevent worker (threading monkey-patched)."""
    try:
        from gevent import monkey
    except ImportError:  # pragma: no cover - gevent is a hard dependency
        return False
    return bool(monkey.is_module_patched("threading"))


class ThreadRunner:
    """`run(fn, *args)`: in one of `max_threads` real threads under gevent, else inline."""

    def __init__(self, max_threads: int) -> None:
        self._pool: Any = None
        if gevent_active():
            from gevent.threadpool import ThreadPool

            self._pool = ThreadPool(max_threads)

    def __call__(self, fn: Callable[..., Any], *args: Any) -> Any:
        return fn(*args) if self._pool is None else self._pool.apply(fn, args)

    def close(self) -> None:
        """Let the pool's threads end (a model version being unloaded)."""
        if self._pool is not None:
            self._pool.kill()


def start_real_thread(fn: Callable[[], None]) -> None:
    """Run `fn` for the life of the process in a real OS thread (also under gevent,
    where `threading.Thread` would be a greenlet that a blocking write stalls)."""
    if gevent_active():
        from gevent import get_hub

        get_hub().threadpool.spawn(fn)
    else:
        import threading

        threading.Thread(target=fn, name=getattr(fn, "__name__", "worker"), daemon=True).start()


def real_lock() -> Any:
    """An OS lock, for code that runs in real threads (the model thread, ThreadRunner's):
    gevent's patched Lock switches hubs when contended there and can hang."""
    try:
        from gevent.monkey import get_original
    except ImportError:  # pragma: no cover - gevent is a hard dependency
        import threading

        return threading.Lock()
    return get_original("threading", "Lock")()
