"""Start and stop real servers for integration tests: loopback only, stopped by PID."""

from __future__ import annotations

import os
import re
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


def wait_workers(log_path: Path, offset: int, timeout: float = 60) -> None:
    """Wait until every gunicorn worker booted since `offset` in the log has loaded its model.

    /readyz answers as soon as one worker is up; a second worker still loading TensorFlow
    accepts no connection yet, so tests that need every worker wait for this.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(log_path, "rb") as log:
            log.seek(offset)
            text = log.read().decode(errors="replace")
        booted = set(re.findall(r"Booting worker with pid: (\d+)", text))
        if booted and booted <= set(re.findall(r"Worker ready \(pid: (\d+)\)", text)):
            return
        time.sleep(0.2)
    raise TimeoutError(f"not every worker in {log_path} was ready after {timeout} s")


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
    offset = log_path.stat().st_size if log_path.exists() else 0
    environment = {**os.environ, "BIND": f"127.0.0.1:{port}", "WORKERS": str(workers),
                   "MODEL_PATH": str(model_path), "GRACEFUL_TIMEOUT": "5", **env}
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [str(VENV_BIN / "gunicorn"), "-c", "gunicorn.conf.py", "app:create_app()"],
            cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base + "/readyz", process=process)
        wait_workers(log_path, offset)
        yield base, process
    finally:
        stop(process)


@contextmanager
def stack_sh(env: dict[str, str]) -> Iterator[None]:
    """`scripts/stack.sh up` with `env` (nginx TLS in front of gunicorn), and `down` after,
    whatever happens; an `up` or a `down` that fails fails the test."""
    def run(command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(ROOT / "scripts" / "stack.sh"), command], env=env,
                              capture_output=True, text=True, timeout=180)

    started = run("up")
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        yield
    finally:
        assert run("down").returncode == 0

