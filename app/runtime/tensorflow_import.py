"""Import TensorFlow once per process, without the start-up notices nobody can act on.

TensorFlow 2.21 prints, in every worker, four lines that TF_CPP_MIN_LOG_LEVEL does not
stop (two copies of absl, in libtensorflow_framework and the profiler plugin, each say):

    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    I0000 00:00:... port.cc:153] oneDNN custom operations are on. You may see ...

Both are written by static initialisers while the libraries are loaded, before any
Python after the import could lower absl's level (absl reads no environment variable
for it; TensorFlow applies TF_CPP_MIN_LOG_LEVEL only later). The one switch for the
oneDNN line, TF_ENABLE_ONEDNN_OPTS=0, would change the numerics, so it stays as it is.

So, for the import alone, the process's stderr runs through a filter that drops exactly
those two lines and copies every other line as it comes. The filter is a child process,
not a thread: a fatal error inside the import (an abort in a static initialiser, with
the GIL held) still reaches the log whole. TF_CPP_MIN_LOG_LEVEL defaults to 1 here,
which stops TensorFlow's INFO lines (the CPU-feature notice) and keeps its warnings and
errors.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import threading
from types import ModuleType

from app.runtime.offload import spawn_process, wait_process

log = logging.getLogger(__name__)

# Each pattern matches one whole line, and nothing else TensorFlow writes.
NOTICES = (
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to "
    r"STDERR",
    r"I\d{4} [\d:.]+ +\d+ port\.cc:\d+\] oneDNN custom operations are on\. .*",
)
_FILTER = (
    "import re, sys\n"
    f"drop = re.compile(rb'(?:{'|'.join(NOTICES)})\\r?\\n?')\n"
    "for line in iter(sys.stdin.buffer.readline, b''):\n"
    "    if not drop.fullmatch(line):\n"
    "        sys.stdout.buffer.write(line)\n"
    "        sys.stdout.buffer.flush()\n"
)
_lock = threading.Lock()


def import_tensorflow() -> ModuleType:
    """`import tensorflow`, the first time with its start-up notices filtered out."""
    with _lock:
        if "tensorflow" in sys.modules:
            return sys.modules["tensorflow"]
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
        return _import_without_notices("tensorflow")


def _import_without_notices(name: str) -> ModuleType:
    sys.stderr.flush()
    stderr = os.dup(2)
    read, write = os.pipe()
    try:
        notices = spawn_process([sys.executable, "-I", "-S", "-c", _FILTER], stdin=read,
                                output=stderr)
    except OSError as exc:  # no filter, no harm: the notices show, nothing else changes
        for fd in (stderr, read, write):
            os.close(fd)
        log.debug("TensorFlow's start-up notices not filtered: %s", exc)
        return importlib.import_module(name)
    os.close(read)
    os.dup2(write, 2)
    os.close(write)
    try:
        return importlib.import_module(name)
    finally:
        sys.stderr.flush()
        os.dup2(stderr, 2)  # the pipe's last writer closes: the filter ends
        os.close(stderr)
        wait_process(notices, timeout=10)  # every line copied before the next one is logged
