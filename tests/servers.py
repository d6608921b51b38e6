"""Start and stop real servers for integration tests: loopback only, stopped by PID."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, timeout: float = 60, process: subprocess.Popen | None = None,
               verify: bool | str = True) -> None:
    """Poll `url` until it answers 200; fail early if the process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before it was ready")
        try:
            if requests.get(url, timeout=2, verify=verify).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} not ready after {timeout} s")


def stop(process: subprocess.Popen, grace: float = 15) -> None:
    """SIGTERM, wait for the PID, then SIGKILL: never leave a server behind."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@contextmanager
def gunicorn(model_path: Path, log_path: Path, workers: int = 1,
             **env: str) -> Iterator[tuple[str, subprocess.Popen]]:
    """Run gunicorn with the project's gunicorn.conf.py on a free loopback port."""
    port = free_port()
    environment = {**os.environ, "BIND": f"127.0.0.1:{port}", "WORKERS": str(workers),
                   "MODEL_PATH": str(model_path), "GRACEFUL_TIMEOUT": "5", **env}
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [str(VENV_BIN / "gunicorn"), "-c", "gunicorn.conf.py", "app:create_app()"],
            cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base + "/readyz", process=process)
        yield base, process
    finally:
        stop(process)
