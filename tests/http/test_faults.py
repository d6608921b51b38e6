"""Faults under load, through the real stack on loopback: a killed worker, slow clients,
and a short soak (the long one is `make soak`). SIGTERM with requests in flight:
tests/http/test_gunicorn.py."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import threading
import time
from collections.abc import Iterator

import pytest
import requests

from bench.load import run_wrk, worker_pids
from bench.run import BUNDLED, FASHION_IMAGE, stack
from bench.soak import soak

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def server() -> Iterator[dict[str, object]]:
    with stack(BUNDLED, 2) as running:
        yield running


def _ready_within(url: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if requests.get(url + "/readyz", verify=False, timeout=2).ok:
                return True
        except requests.RequestException:
            pass
        time.sleep(0.1)
    return False


def test_kill_9_of_a_worker_under_load(server: dict[str, object]) -> None:
    master = server["master"]
    before = worker_pids(master)  # type: ignore[arg-type]
    assert len(before) == 2
    results = []
    load = threading.Thread(target=lambda: results.append(run_wrk(
        f"{server['url']}/predictlabel", FASHION_IMAGE, 8, 10, "kill-9", None)))
    load.start()
    time.sleep(3)
    os.kill(before[0], signal.SIGKILL)
    load.join(60)
    (result,) = results
    print(f"kill -9 under load: {result.requests} requests, {result.failures} failed "
          f"({100 * result.failures / max(1, result.requests):.2f} %), statuses {result.statuses}")
    assert result.requests > 1000
    assert result.failures / result.requests < 0.01, result
    assert _ready_within(str(server["url"]), 10)
    after = worker_pids(master)  # type: ignore[arg-type]
    assert len(after) == 2 and before[0] not in after and before[1] in after, "replaced"


def _slow_tls(port: int) -> ssl.SSLSocket:
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    raw = socket.create_connection(("127.0.0.1", port), timeout=30)
    return context.wrap_socket(raw, server_hostname="localhost")


def test_slow_clients_are_cut_by_nginx_and_never_reach_the_app(
        server: dict[str, object]) -> None:
    url = str(server["url"])
    port = int(url.rsplit(":", 1)[1])
    slow_headers = [_slow_tls(port) for _ in range(40)]
    slow_bodies = [_slow_tls(port) for _ in range(40)]
    for conn in slow_headers:
        conn.sendall(b"POST /predictlabel HTTP/1.1\r\nHost: localhost\r\n")  # never finished
    for conn in slow_bodies:
        conn.sendall(b"POST /predictlabel HTTP/1.1\r\nHost: localhost\r\n"
                     b"Content-Type: multipart/form-data; boundary=x\r\n"
                     b"Content-Length: 100000\r\n\r\n--x\r\n")  # body trickles below
    started = time.monotonic()
    with FASHION_IMAGE.open("rb") as f:  # meanwhile a normal client is served at once
        quick = requests.post(url + "/predictlabel", files={"image": f}, verify=False,
                              timeout=10)
    assert quick.status_code == 200 and time.monotonic() - started < 5
    for conn in slow_bodies:
        conn.sendall(b"a")
    time.sleep(12)  # client_header_timeout is 10 s
    cut = 0
    for conn in slow_headers:
        try:
            cut += conn.recv(1024) == b""
        except (ConnectionError, ssl.SSLError, TimeoutError):
            cut += 1
        conn.close()
    assert cut == len(slow_headers), "nginx closed every stalled header"
    metrics = requests.get(url + "/metrics", verify=False, timeout=10).text
    assert "h5serve_requests_total" in metrics
    for conn in slow_bodies:  # still buffering in nginx: the app has not seen them
        conn.close()


def test_short_soak_keeps_memory_flat_and_fails_nothing() -> None:
    result = soak(seconds=float(os.environ.get("SOAK_SECONDS", "40")))
    assert result["failures"] == 0, result
    assert result["same_workers"] and result["max_rss_growth"] < 0.10, result
