"""Roll-outs that decide by themselves, on gunicorn with two gevent workers under load.

One server watches a repository in a temporary folder while eight clients post the
card's example photos without pause. Version 2, a good shadow, is promoted with no
failed request and no answer from it before its promotion; version 3, the same weights
with the wrong pixel scale, is rolled back for its agreement and never answers; version 4,
a canary at weight 20, answers its share of 2,000 requests, the same version for each
client; a worker restarted mid-roll-out loses no evidence, and the roll-out is promoted
once. Bounds are small (min_requests) and latency loose: tests check behaviour, the
bench (bench/rollout_shadow.py) the timings.
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from canary_repo import EXAMPLES, add_version, set_rollout
from load import Load
from servers import gunicorn

pytestmark = [pytest.mark.slow]

POLL_S = 0.5
BOUNDS = {"min_requests": 120, "max_latency_ratio": 3.0}
PICTURES = tuple(path.read_bytes() for path in EXAMPLES)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, Path]]:
    root = tmp_path_factory.mktemp("canary")
    folder = root / "models" / "fash"
    add_version(folder, 1)
    add_version(folder, 2)
    set_rollout(folder, candidate=2, mode="shadow", **BOUNDS)
    log = root / "app.log"
    with gunicorn(Path(), log, workers=2, MODEL_PATH="", MODEL_REPOSITORY=str(root / "models"),
                  MODEL_POLL_SECONDS=str(POLL_S)) as (base, _):
        yield base, folder, log


def _wait(predicate, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s; log tail:\n" + \
            "\n".join(log.read_text().splitlines()[-30:])
        time.sleep(0.1)


def _decisions(log: Path, version: int) -> list[str]:
    return re.findall(rf"roll-out of model fash version {version} (promoted|rolled back) "
                      r"\(by \w+\): (.*)", log.read_text())


def _load(base: str) -> Load:
    return Load(base + "/models/fash/predictlabel", "", PICTURES[0], more=PICTURES[1:])


def test_a_good_shadow_is_promoted_under_load_without_a_failed_request(server) -> None:
    base, _, log = server
    load = _load(base)
    with load.running(8):
        _wait(lambda: any(a[2] == "2" for a in load.answers), 90, "version 2 promoted", log)
        time.sleep(2 * POLL_S + 1)
    versions = [a[2] for a in sorted(load.answers)]
    first = versions.index("2")
    assert set(versions[:first]) == {"1"}, "the shadow answered before its promotion"
    assert set(versions[-50:]) == {"2"}
    assert load.failures == []
    decided = _decisions(log, 2)
    assert [d[0] for d in decided] == ["promoted"], decided  # once, for both workers
    print(f"\nshadow promoted after {first} answers: {decided[0][1]}")


def test_a_bad_shadow_is_rolled_back_for_its_agreement_and_never_answers(server) -> None:
    base, folder, log = server
    add_version(folder, 3, bad=True)
    set_rollout(folder, candidate=3, mode="shadow", **BOUNDS)
    load = _load(base)
    with load.running(8):
        _wait(lambda: _decisions(log, 3), 90, "version 3 decided", log)
        time.sleep(2 * POLL_S)
    decided = _decisions(log, 3)
    assert [d[0] for d in decided] == ["rolled back"] and decided[0][1].startswith("agreement")
    compared = int(re.search(r"over (\d+) compared", decided[0][1]).group(1))
    assert compared < 2 * BOUNDS["min_requests"]
    assert {a[2] for a in load.answers} == {"2"} and load.failures == []
    print(f"\nbad shadow: {decided[0][1]}")


def _post_as(base: str, client: str) -> str:
    response = requests.post(base + "/models/fash/predictlabel", timeout=30,
                             files={"image": ("i.png", PICTURES[hash(client) % 10])},
                             headers={"X-Client-Id": client})
    assert response.status_code == 200, response.text
    return response.headers["X-Model-Version"]


def _evidence(base: str) -> int:
    return requests.get(base + "/models/fash", timeout=10).json()["rollout"]["evidence"][
        "requests"]


def test_a_canary_takes_its_share_sticks_to_clients_and_survives_a_restart(server) -> None:
    base, folder, log = server
    add_version(folder, 4)
    set_rollout(folder, candidate=4, mode="canary", weight=20, auto=False, **BOUNDS)
    _wait(lambda: log.read_text().count("model fash version 4 ready") >= 2, 60,
          "version 4 loaded by both workers", log)
    time.sleep(2 * POLL_S)
    clients = [f"client-{i % 1000}" for i in range(2000)]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda c: (c, _post_as(base, c)), clients))
    share = sum(v == "4" for _, v in answers) / len(answers)
    assert 0.15 <= share <= 0.25, share
    assert all(len({v for c, v in answers if c == client}) == 1 for client in set(clients))
    time.sleep(3 * POLL_S)
    before = _evidence(base)
    assert before > 0 and not _decisions(log, 4)  # auto off: only reported

    worker = int(re.findall(r"Booting worker with pid: (\d+)", log.read_text())[-1])
    os.kill(worker, signal.SIGTERM)
    _wait(lambda: log.read_text().count("Worker ready") >= 3, 60, "worker restarted", log)
    time.sleep(3 * POLL_S)
    assert min(_evidence(base) for _ in range(6)) >= before  # either worker: none lost

    set_rollout(folder, candidate=4, mode="canary", weight=20, **BOUNDS)  # auto on
    _wait(lambda: _decisions(log, 4), 30, "version 4 decided", log)
    time.sleep(3 * POLL_S)
    assert [d[0] for d in _decisions(log, 4)] == ["promoted"]
    assert {_post_as(base, c) for c in clients[:20]} == {"4"}
    print(f"\ncanary share {share:.3f} of {len(answers)} answers; evidence {before} "
          "requests kept across a worker restart")
