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
    return _original("threading", "Lock")()


def run_process(args: list[str]) -> int | None:
    """Run a command to its end from any thread: its exit code, None if another waiter
    took it (its output goes where this process's goes)."""
    return wait_process(spawn_process(args))


def spawn_process(args: list[str], stdin: int | None = None, output: int | None = None
                  ) -> int:
    """Start a command and return its pid; `stdin`/`output` (stdout and stderr) are file
    descriptors, else this process's. The OS's spawn and wait, not `subprocess`: gevent's
    watches children only from the main thread's loop, and models load in real threads
    too (roll-outs, explanations); a wait blocks only the thread that asked."""
    import os

    actions = [(os.POSIX_SPAWN_DUP2, stdin, 0)] if stdin is not None else []
    actions += [(os.POSIX_SPAWN_DUP2, output, fd) for fd in (1, 2)] if output is not None \
        else []
    return _original("os", "posix_spawn")(args[0], args, os.environ, file_actions=actions)


def wait_process(pid: int, timeout: float | None = None) -> int | None:
    """Wait until a spawned command ends (None after `timeout` seconds): its exit code,
    or None where another waiter reaped it (a SIGCHLD handler)."""
    import os
    import time

    waitpid, sleep = _original("os", "waitpid"), _original("time", "sleep")
    deadline = None if timeout is None else time.monotonic() + timeout
    while deadline is None or time.monotonic() < deadline:
        try:
            done, status = waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return None
        if done:
            return os.waitstatus_to_exitcode(status)
        sleep(0.02)
    return None


def skip_processor_probe() -> None:
    """Answer platform.processor() without its probe, `uname -p` (\"unknown\", i.e. "", on
    Linux; nothing here reads it). h5py's import asks it, from whatever thread first reads
    a Keras file, and under gevent a subprocess runs only on the main thread and leaves a
    SIGCHLD handler that reaps spawn_process's children before wait_process can."""
    import platform

    vars(platform.uname()).setdefault("processor", "")


def _original(module: str, name: str) -> Any:
    """The standard library's own function, even where gevent patched it."""
    try:
        from gevent.monkey import get_original
    except ImportError:  # pragma: no cover - gevent is a hard dependency
        import importlib

        return getattr(importlib.import_module(module), name)
    return get_original(module, name)
