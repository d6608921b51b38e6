"""Roll-outs in one process: the card's block, the rules, the shared store (a worker
restart), sticky canary routing, the whole loop through the REST doors, with the
admin's promote and abort, and a mirror that falls behind. Live runs through nginx TLS
and gunicorn: tests/runtime/test_canary_live.py."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from canary_repo import EXAMPLES, add_version, set_rollout
from flask import Flask
from helpers import upload

from app.runtime.canary.evidence import Evidence
from app.runtime.canary.policy import PolicyError, RolloutPolicy
from app.runtime.canary.rules import PROMOTE, ROLL_BACK, judge
from app.runtime.canary.shadow import ShadowRunner
from app.runtime.canary.store import SharedStore
from app.runtime.canary.trial import Trial

ADMIN, USER = "ops-key-0123456789abcdef", "alice-key-0123456789abcdef"


def test_the_card_block_has_safe_defaults() -> None:
    policy = RolloutPolicy.parse({"candidate": 3}, "c.json")
    assert policy == RolloutPolicy(3, "shadow", 10.0, 1.0, 500, 0.98, 0.005, 1.2, True)
    assert RolloutPolicy.parse(None, "c.json") is None


@pytest.mark.parametrize(("block", "message"), [
    ([3], 'must be an object'),
    ({"candidate": 0}, '"candidate" must be a version number'),
    ({"candidate": 2, "mode": "blue"}, '"mode" must be "shadow" or "canary"'),
    ({"candidate": 2, "weight": 120}, '"weight" must be a percentage'),
    ({"candidate": 2, "shadow_sample": 0}, '"shadow_sample" must be a share above 0'),
    ({"candidate": 2, "max_latency_ratio": 0.5}, '"max_latency_ratio" must be a ratio'),
    ({"candidate": 2, "auto": "yes"}, '"auto" must be true or false'),
    ({"candidate": 2, "min_request": 5}, "unknown keys ['min_request']"),
])
def test_a_bad_block_names_its_key(block: object, message: str) -> None:
    with pytest.raises(PolicyError, match=r"c\.json") as error:
        RolloutPolicy.parse(block, "c.json")
    assert message in str(error.value)


def _evidence(compared: int, agreed: int, errors: int = 0, slow: float = 1.0) -> Evidence:
    evidence = Evidence(compared=compared, agreed=agreed)
    for _ in range(compared):
        evidence.answer("current", 0.01)
        evidence.answer("candidate", 0.01 * slow)
    evidence.errors["candidate"] = errors
    return evidence


@pytest.mark.parametrize(("evidence", "decision", "reason"), [
    (_evidence(19, 0), None, ""),  # too few to call anything broken
    (_evidence(24, 7), ROLL_BACK, "agreement 0.292 over 24"),
    (_evidence(60, 59), None, ""),  # fine so far, short of min_requests
    (_evidence(100, 100), PROMOTE, "agreement 1.000 over 100"),
    (_evidence(100, 96), None, ""),  # not promotable, not clearly broken either
    (_evidence(100, 100, errors=20), ROLL_BACK, "error rate 0.200"),
    (_evidence(100, 100, slow=1.5), None, ""),  # too slow to promote, not to roll back
    (_evidence(100, 100, slow=3), ROLL_BACK, "latency: p99"),
])
def test_the_rules_promote_after_min_requests_and_roll_back_when_clearly_broken(
        evidence: Evidence, decision: str | None, reason: str) -> None:
    verdict = judge(RolloutPolicy(2, min_requests=100), evidence)
    assert (verdict.decision if verdict else None) == decision
    assert reason in (verdict.reason if verdict else "")


def test_workers_pool_evidence_a_dead_one_still_counts_and_the_first_decision_stands(
        tmp_path: Path) -> None:
    first, second = SharedStore(tmp_path), SharedStore(tmp_path)
    first.publish("m.v2.1", _evidence(30, 30))
    second.publish("m.v2.1", _evidence(50, 49))
    assert first.pooled("m.v2.1").compared == 80
    restarted = SharedStore(tmp_path)  # `first` died; its replacement starts empty
    restarted.publish("m.v2.1", _evidence(5, 5))
    assert restarted.pooled("m.v2.1").compared == 85  # nothing lost
    assert second.decide("m.v2.1", {"decision": PROMOTE})
    assert not restarted.decide("m.v2.1", {"decision": PROMOTE})  # no double promotion
    assert restarted.decisions()["m.v2.1"] == {"decision": PROMOTE}


def test_a_canary_takes_its_weight_of_clients_and_each_client_stays_put() -> None:
    trial = Trial("m.v2.1", "m", RolloutPolicy(2, "canary", weight=20))
    picks = [trial.route({1: None, 2: None}, f"id:client-{i}") for i in range(2000)]
    assert 0.15 <= picks.count(2) / len(picks) <= 0.25
    assert picks == [trial.route({1: None, 2: None}, f"id:client-{i}") for i in range(2000)]
    shadow = Trial("m.v2.1", "m", RolloutPolicy(2))
    assert {shadow.route({1: None, 2: None}, f"id:{i}") for i in range(100)} == {1}
    shadow.decision = {"decision": PROMOTE}
    assert shadow.route({1: None, 2: None}, "id:x") == 2


class StalledRunner(ShadowRunner):
    """A mirror that falls behind: its runners start taking jobs when `gate` opens."""

    gate = threading.Event()

    def __init__(self) -> None:
        super().__init__(depth=4, runners=1)

    def _run(self) -> None:
        self.gate.wait(10)
        super()._run()


def _canary_app(tmp_path: Path) -> Flask:
    """fash: version 1, and version 2 a good canary for every client, auto off."""
    from app import create_app

    folder = tmp_path / "models" / "fash"
    for version in (1, 2):
        add_version(folder, version)
    set_rollout(folder, candidate=2, mode="canary", weight=100, auto=False, min_requests=10)
    keys = tmp_path / "api-keys"
    keys.write_text(f"ops {ADMIN} admin\nalice {USER}\n")
    app = create_app({"MODEL_REPOSITORY": tmp_path / "models", "MODEL_POLL_SECONDS": 0,
                      "H5SERVE_STATE_DIR": tmp_path, "AUTH": "keys", "API_KEYS_FILE": keys,
                      "CORS_ORIGINS": ""})
    app.testing = True
    return app


@pytest.fixture()
def canary_app(tmp_path: Path) -> Flask:
    return _canary_app(tmp_path)


def _post(client, n: int, **headers: str) -> list[str]:
    return [upload(client, EXAMPLES[i % len(EXAMPLES)].read_bytes(),
                   path="/models/fash/predictlabel", headers=headers
                   ).headers["X-Model-Version"] for i in range(n)]


def _settle(app: Flask, until) -> dict:
    """Tick until the mirror runs are in and `until(status)` holds (5 s at most)."""
    trials = app.extensions["h5serve"].rollout.trials
    deadline = time.monotonic() + 5
    while True:
        trials.tick()
        status = trials.status("fash")
        if until(status) or time.monotonic() > deadline:
            return status
        time.sleep(0.05)


def test_canary_answers_are_rerun_on_current_and_an_admin_promotes(canary_app: Flask) -> None:
    client = canary_app.test_client()
    assert set(_post(client, 12, **{"X-API-Key": USER})) == {"2"}
    pinned = upload(client, EXAMPLES[0].read_bytes(), path="/models/fash/versions/1/predictlabel",
                    headers={"X-API-Key": USER})
    assert pinned.headers["X-Model-Version"] == "1"  # never re-routed
    status = _settle(canary_app, lambda s: s["evidence"]["requests"] >= 12)
    assert status["evidence"]["requests"] == 12 and status["evidence"]["agreement"] == 1.0
    assert status["state"] == "running" and status["recommendation"] == PROMOTE  # auto off
    described = client.get("/models/fash", headers={"X-API-Key": USER}).get_json()
    assert described["rollout"]["candidate"] == 2
    index = client.post("/v2/repository/index", headers={"X-API-Key": USER}).get_json()
    assert [e["version"] for e in index if "rollout" in e] == ["2"]

    promote = "/v2/repository/models/fash/rollout/promote"
    refused = client.post(promote, headers={"X-API-Key": USER})
    assert refused.status_code == 403 and "marked admin" in refused.get_json()["error"]
    done = client.post(promote, headers={"X-API-Key": ADMIN})
    assert done.status_code == 200 and done.get_json()["rollout"]["state"] == PROMOTE
    assert set(_post(client, 5, **{"X-API-Key": USER})) == {"2"}
    assert sorted(canary_app.extensions["h5serve"].models.table["fash"].versions) == [2]
    assert client.post("/v2/repository/models/nope/rollout/abort",
                       headers={"X-API-Key": ADMIN}).status_code == 404


def test_a_bad_shadow_never_answers_and_is_rolled_back_for_agreement(tmp_path: Path) -> None:
    from app import create_app

    folder = tmp_path / "models" / "fash"
    add_version(folder, 1)
    add_version(folder, 2, bad=True)
    set_rollout(folder, candidate=2, min_requests=30)
    app = create_app({"MODEL_REPOSITORY": tmp_path / "models", "MODEL_POLL_SECONDS": 0})
    app.testing = True
    client = app.test_client()
    assert set(_post(client, 40)) == {"1"}
    status = _settle(app, lambda s: s["state"] != "running")
    assert status["state"] == ROLL_BACK and status["reason"].startswith("agreement")
    assert status["evidence"]["agreement"] < 0.9
    app.extensions["h5serve"].rollout.reconcile()  # the next look unloads it
    app.extensions["h5serve"].rollout.trials.tick()
    index = {e["version"]: e for e in client.post("/v2/repository/index").get_json()}
    assert index["2"]["state"] == "UNAVAILABLE"
    assert index["2"]["reason"].startswith("rolled back: agreement")
    assert set(_post(client, 3)) == {"1"}
    assert np.isfinite(status["evidence"]["mean_delta_p"])


def test_a_mirror_that_cannot_keep_up_lowers_the_sample_rate_says_so_and_recovers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The issue: if the candidate's extra compute can't fit, the shadow sample rate
    drops by itself and says so. A full queue drops the sample (no request waits); once
    it drains, every request is sampled again."""
    StalledRunner.gate.clear()
    monkeypatch.setattr("app.runtime.canary.control.ShadowRunner", StalledRunner)
    app = _canary_app(tmp_path)
    client = app.test_client()
    with caplog.at_level(logging.WARNING, logger="app.runtime.canary.control"):
        assert set(_post(client, 10, **{"X-API-Key": USER})) == {"2"}  # all answered
    status = _settle(app, lambda s: s["evidence"]["shadow_sampled"] == 10)["evidence"]
    assert (status["shadow_sampled"], status["shadow_dropped"]) == (10, 6)  # 4 fit the queue
    noted = [r.getMessage() for r in caplog.records if "cannot keep up" in r.getMessage()]
    assert len(noted) == 1 and "effective sample rate 0.80 of the card's 1.00" in noted[0]

    StalledRunner.gate.set()
    assert _settle(app, lambda s: s["evidence"]["requests"] == 4)["evidence"]["requests"] == 4
    _post(client, 4, **{"X-API-Key": USER})
    status = _settle(app, lambda s: s["evidence"]["requests"] == 8)["evidence"]
    assert (status["requests"], status["shadow_sampled"], status["shadow_dropped"]) == (8, 14, 6)
