"""Roll-outs under constant load through the real stack: not one request may fail.

nginx (TLS) and gunicorn with two gevent workers serve a repository in a temporary
folder while eight clients post images without pause. A new version appears (copied,
then its folder renamed into place), then a broken one, then another model is removed,
then the two newest versions are deleted (a roll-back to version 1). Every answer must be
a 200 from the client's side, and the switches are timed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import requests
from helpers import encode
from load import Load
from servers import free_port, stack_sh
from toy_models import brightness_model

from app.config import DEFAULT_MODEL_PATH

pytestmark = [pytest.mark.slow]

POLL_S = 1.0
WHITE = encode(np.full((28, 28), 255, np.uint8))


def _version(folder: Path, version: int) -> None:
    """Copy-then-rename, as docs/operations.md says: the folder appears complete."""
    staging = folder.parent / f".staging-{folder.name}-{version}"
    staging.mkdir()
    brightness_model(staging / "model.h5", (28, 28, 1), gain=20.0 if version % 2 else -20.0)
    staging.rename(folder / str(version))


@pytest.fixture(scope="module")
def stack() -> Iterator[tuple[str, str, Path, Path]]:
    directory = Path(tempfile.mkdtemp(prefix="h5serve-rollout."))
    repo = directory / "models"
    (repo / "bright").mkdir(parents=True)
    shutil.copy(DEFAULT_MODEL_PATH, repo / "fashion.h5")
    shutil.copy(DEFAULT_MODEL_PATH.with_suffix(".json"), repo / "fashion.json")
    _version(repo / "bright", 1)
    (repo / "bright" / "bright.json").write_text(json.dumps({"labels": ["dark", "bright"]}))
    shutil.copytree(repo / "bright", repo / "other")
    (repo / "other" / "bright.json").rename(repo / "other" / "other.json")
    (directory / "stack").mkdir()
    ports = {"APP_PORT": free_port(), "HTTP_PORT": free_port(), "HTTPS_PORT": free_port()}
    env = {**os.environ, **{k: str(v) for k, v in ports.items()},
           "STACK_DIR": str(directory / "stack"), "STACK_STATE": str(directory / "state"),
           "VENV": sys.prefix, "WORKERS": "2", "GRACEFUL_TIMEOUT": "5",
           "MODEL_REPOSITORY": str(repo), "DEFAULT_MODEL": "fashion",
           "MODEL_POLL_SECONDS": str(POLL_S), "RATE_LIMIT": "5000r/s"}  # load, not abuse

    try:
        with stack_sh(env):
            yield (f"https://127.0.0.1:{ports['HTTPS_PORT']}",
                   str(directory / "stack" / "certs" / "fullchain.pem"), repo,
                   directory / "stack" / "logs" / "app.log")
    finally:  # after down: it reads its state there
        shutil.rmtree(directory, ignore_errors=True)


def _wait(predicate, timeout: float, what: str, log: Path) -> float:
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < timeout, \
            f"{what}: not within {timeout} s; app log (no access lines):\n" + "\n".join(
                line for line in log.read_text().splitlines() if '" 200 ' not in line)
        time.sleep(0.05)
    return time.monotonic() - started


def _load_seconds(log: Path, name: str, version: int) -> float:
    """The longest time a worker took to load and warm that version (its log line): the
    switch may take two polls plus that, whatever the machine's speed."""
    found = re.findall(rf"model {name} version {version} ready in ([\d.]+) s", log.read_text())
    assert found, f"no 'ready' line for {name} version {version}"
    return max(map(float, found))


def test_new_broken_and_removed_versions_under_load_fail_no_request(stack) -> None:
    url, cert, repo, app_log = stack
    load = Load(url + "/models/bright/predictlabel", cert, WHITE)
    with load.running(8):
        _wait(lambda: len(load.answers) > 50, 30, "first answers", app_log)
        assert {a[2] for a in load.answers} == {"1"}

        appeared = time.monotonic()
        _version(repo / "bright", 2)
        switch = _wait(lambda: {a[2] for a in load.since(time.monotonic() - 0.5)} == {"2"},
                       4 * POLL_S + 10, "version 2 served",
                       app_log) - 0.5
        print(f"\nnew version served by both workers {switch:.2f} s after it appeared "
              f"(poll {POLL_S:g} s)")
        loading = _load_seconds(app_log, "bright", 2)
        assert switch <= 2 * POLL_S + loading + 0.5, \
            f"served within 2 poll periods (+ {loading:.2f} s loading it)"
        assert any(a[2] == "1" for a in load.answers if a[0] >= appeared - 1)

        broken = repo / "bright" / "3"
        broken.mkdir()
        (broken / "model.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 4096)
        _wait(lambda: app_log.read_text().count("model bright version 3 refused") >= 2,
              4 * POLL_S + 10, "version 3 refused by both workers", app_log)
        time.sleep(POLL_S)
        assert {a[2] for a in load.since(time.monotonic() - POLL_S)} == {"2"}

        assert requests.get(url + "/models/other", verify=cert, timeout=10).status_code == 200
        shutil.rmtree(repo / "other")
        _wait(lambda: app_log.read_text().count("model other version 1 unloaded") >= 2,
              4 * POLL_S + 10, "model other unloaded by both workers", app_log)
        gone = requests.post(url + "/models/other/predictlabel",
                             files={"image": ("w.png", WHITE)}, verify=cert, timeout=10)
        assert gone.status_code == 404 and gone.json()["error"]["code"] == "model_not_found"

        shutil.rmtree(broken)
        shutil.rmtree(repo / "bright" / "2")  # roll back: version 2 serves until 1 is ready
        back = _wait(lambda: {a[2] for a in load.since(time.monotonic() - 0.5)} == {"1"},
                     4 * POLL_S + 10, "version 1 served again", app_log) - 0.5
        print(f"roll-back to version 1 served by both workers {back:.2f} s after version 2 "
              "was deleted")
        assert load.failures == [], "version 2 answered until version 1 was ready"
        assert back <= 2 * POLL_S + _load_seconds(app_log, "bright", 1) + 0.5
        time.sleep(POLL_S)
    print(f"{len(load.answers)} requests during the roll-outs, {len(load.failures)} failed")
    assert load.failures == []
    assert len(load.answers) > 200
