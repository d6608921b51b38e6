"""Roll-outs that decide by themselves, through the real stack under load.

nginx (TLS) in front of gunicorn with two gevent workers (scripts/stack.sh) serves a
repository in a temporary folder while eight clients post the card's example photos
without pause. Version 2, a good shadow, is promoted with no failed request and no
answer from it before its promotion; version 3, the same weights with the wrong pixel
scale, is rolled back for its agreement and never answers; version 4, a canary at weight
20, answers its share of 2,000 requests, the same version for each client; a worker
restarted mid-roll-out loses no evidence, and the roll-out is promoted once. Bounds are
small (min_requests) and latency loose: tests check behaviour, the bench
(bench/rollout_shadow.py) the timings. Loopback only: nginx's per-address rate limit is
lifted for the load, and every request nginx logs must come from 127.0.0.1.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from canary_repo import EXAMPLES, add_version, set_rollout
from load import Load
from servers import free_port, stack_sh

pytestmark = [pytest.mark.slow]

POLL_S = 0.5
BOUNDS = {"min_requests": 120, "max_latency_ratio": 3.0}
PICTURES = tuple(path.read_bytes() for path in EXAMPLES)


@dataclass
class Stack:
    base: str  # https://127.0.0.1:<port>, through nginx
    cert: str
    folder: Path  # the model's folder in the repository
    log: Path  # gunicorn's
    access: Path  # nginx's

    def only_loopback(self) -> None:
        """Every request nginx saw came from this host: the lifted limit exposed nothing."""
        addresses = {line.split(" ", 1)[0] for line in self.access.read_text().splitlines()}
        assert addresses == {"127.0.0.1"}, addresses


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    directory = Path(tempfile.mkdtemp(prefix="h5serve-canary."))
    folder = directory / "models" / "fash"
    add_version(folder, 1)
    add_version(folder, 2)
    set_rollout(folder, candidate=2, mode="shadow", **BOUNDS)
    (directory / "stack").mkdir()
    https = free_port()
    env = {**os.environ, "APP_PORT": str(free_port()), "HTTP_PORT": str(free_port()),
           "HTTPS_PORT": str(https), "STACK_DIR": str(directory / "stack"),
           "STACK_STATE": str(directory / "state"), "VENV": sys.prefix, "WORKERS": "2",
           "GRACEFUL_TIMEOUT": "5", "MODEL_PATH": "",
           "MODEL_REPOSITORY": str(directory / "models"), "MODEL_POLL_SECONDS": str(POLL_S),
           "RATE_LIMIT": "5000r/s"}  # 8 busy clients from one address: load, not abuse
    logs = directory / "stack" / "logs"
    try:
        with stack_sh(env):
            yield Stack(f"https://127.0.0.1:{https}",
                        str(directory / "stack" / "certs" / "fullchain.pem"), folder,
                        logs / "app.log", logs / "access.log")
    finally:  # after down: it reads its state there
        shutil.rmtree(directory, ignore_errors=True)


def _wait(predicate, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s; log tail:\n" + \
            "\n".join(line for line in log.read_text().splitlines()[-60:]
                      if '" 200 ' not in line)
        time.sleep(0.1)


def _decisions(log: Path, version: int) -> list[str]:
    return re.findall(rf"roll-out of model fash version {version} (promoted|rolled back) "
                      r"\(by \w+\): (.*)", log.read_text())


def _load(stack: Stack) -> Load:
    return Load(stack.base + "/models/fash/predictlabel", stack.cert, PICTURES[0],
                more=PICTURES[1:])


def test_a_good_shadow_is_promoted_under_load_without_a_failed_request(stack: Stack) -> None:
    load = _load(stack)
    with load.running(8):
        _wait(lambda: any(a[2] == "2" for a in load.answers), 90, "version 2 promoted",
              stack.log)
        time.sleep(2 * POLL_S + 1)
    versions = [a[2] for a in sorted(load.answers)]
    assert load.failures == []
    assert set(versions) == {"1", "2"}, "every answer names its version"
    first = versions.index("2")
    assert set(versions[:first]) == {"1"}, "the shadow answered before its promotion"
    assert set(versions[-50:]) == {"2"}
    decided = _decisions(stack.log, 2)
    assert [d[0] for d in decided] == ["promoted"], decided  # once, for both workers
    stack.only_loopback()
    print(f"\nshadow promoted after {first} of {len(versions)} answers: {decided[0][1]}")


def test_a_bad_shadow_is_rolled_back_for_its_agreement_and_never_answers(stack: Stack) -> None:
    add_version(stack.folder, 3, bad=True)
    set_rollout(stack.folder, candidate=3, mode="shadow", **BOUNDS)
    load = _load(stack)
    with load.running(8):
        _wait(lambda: _decisions(stack.log, 3), 90, "version 3 decided", stack.log)
        time.sleep(2 * POLL_S)
    decided = _decisions(stack.log, 3)
    assert [d[0] for d in decided] == ["rolled back"] and decided[0][1].startswith("agreement")
    compared = int(re.search(r"over (\d+) compared", decided[0][1]).group(1))
    assert compared < 2 * BOUNDS["min_requests"]
    assert {a[2] for a in load.answers} == {"2"} and load.failures == []
    stack.only_loopback()
    print(f"\nbad shadow, {len(load.answers)} answers: {decided[0][1]}")


class Clients:
    """One kept-alive TLS session per thread, each request naming its client."""

    def __init__(self, stack: Stack) -> None:
        self._stack, self._local = stack, threading.local()

    def post(self, client: str) -> str:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        response = session.post(self._stack.base + "/models/fash/predictlabel", timeout=30,
                                files={"image": ("i.png", PICTURES[hash(client) % 10])},
                                headers={"X-Client-Id": client}, verify=self._stack.cert)
        assert response.status_code == 200, response.text
        return response.headers["X-Model-Version"]


def _evidence(stack: Stack) -> int:
    return requests.get(stack.base + "/models/fash", timeout=10, verify=stack.cert).json()[
        "rollout"]["evidence"]["requests"]


def test_a_canary_takes_its_share_sticks_to_clients_and_survives_a_restart(
        stack: Stack) -> None:
    log = stack.log
    add_version(stack.folder, 4)
    set_rollout(stack.folder, candidate=4, mode="canary", weight=20, auto=False, **BOUNDS)
    _wait(lambda: log.read_text().count("model fash version 4 ready") >= 2, 60,
          "version 4 loaded by both workers", log)
    time.sleep(2 * POLL_S)
    clients, post = [f"client-{i % 1000}" for i in range(2000)], Clients(stack).post
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda c: (c, post(c)), clients))
    share = sum(v == "4" for _, v in answers) / len(answers)
    assert 0.15 <= share <= 0.25, share
    assert all(len({v for c, v in answers if c == client}) == 1 for client in set(clients))
    time.sleep(3 * POLL_S)
    before = _evidence(stack)
    assert before > 0 and not _decisions(log, 4)  # auto off: only reported

    ready = log.read_text().count("Worker ready")
    worker = int(re.findall(r"Booting worker with pid: (\d+)", log.read_text())[-1])
    os.kill(worker, signal.SIGTERM)
    _wait(lambda: log.read_text().count("Worker ready") > ready, 60, "worker restarted", log)
    time.sleep(3 * POLL_S)
    assert min(_evidence(stack) for _ in range(6)) >= before  # either worker: none lost

    set_rollout(stack.folder, candidate=4, mode="canary", weight=20, **BOUNDS)  # auto on
    _wait(lambda: _decisions(log, 4), 30, "version 4 decided", log)
    time.sleep(3 * POLL_S)
    assert [d[0] for d in _decisions(log, 4)] == ["promoted"]
    assert {post(c) for c in clients[:20]} == {"4"}
    stack.only_loopback()
    print(f"\ncanary share {share:.3f} of {len(answers)} answers; evidence {before} "
          "requests kept across a worker restart")
