"""The roll-outs' Prometheus series (summed over workers like app.metrics' own).

Every live worker sets the same pooled values, so the gauges keep the largest live
value: the pool as of the freshest look. `h5serve_rollout_active` and the start time
feed the stuck-roll-out alert; the decision gauge, the dashboard's roll-out row.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter, Gauge

_ROLLOUT = ["model", "candidate"]
_ROLES = [*_ROLLOUT, "role"]  # role: current or candidate


def _gauge(name: str, documentation: str, labels: list[str] = _ROLLOUT) -> Gauge:
    return Gauge(name, documentation, labels, multiprocess_mode="livemax")


ACTIVE = _gauge("h5serve_rollout_active", "1 while a roll-out is undecided, else 0")
STARTED = _gauge("h5serve_rollout_started_timestamp_seconds",
                 "When the first worker saw the roll-out (Unix time)")
WEIGHT = _gauge("h5serve_rollout_weight_percent",
                "Share of clients the candidate answers (0 in shadow mode, 100 once promoted)")
AGREEMENT = _gauge("h5serve_rollout_agreement",
                   "Top-1 agreement of the candidate with the current version")
DELTA = _gauge("h5serve_rollout_mean_delta_p",
               "Mean |difference| of the current version's top-class probability")
COMPARED = _gauge("h5serve_rollout_compared_requests",
                  "Requests run on both versions, every worker's")
ERROR_RATE = _gauge("h5serve_rollout_error_rate", "Failed share of answers, by role", _ROLES)
P99 = _gauge("h5serve_rollout_p99_seconds", "p99 latency, by role", _ROLES)
DECISION = _gauge("h5serve_rollout_decision",
                  "1 for the roll-out's state: running, promoted or rolled_back",
                  [*_ROLLOUT, "decision"])
SHADOW_DROPPED = Counter("h5serve_rollout_shadow_dropped_total",
                         "Mirror runs dropped because the other version fell behind",
                         _ROLLOUT)
STATES = ("running", "promoted", "rolled_back")


def show(model: str, candidate: int, status: dict[str, Any]) -> None:
    """Set every gauge of one roll-out from its status (app.runtime.canary.control)."""
    key = (model, str(candidate))
    evidence = status["evidence"]
    ACTIVE.labels(*key).set(status["state"] == "running")
    STARTED.labels(*key).set(status["started"] or 0)
    WEIGHT.labels(*key).set(status["serving_percent"])
    AGREEMENT.labels(*key).set(_number(evidence["agreement"]))
    DELTA.labels(*key).set(_number(evidence["mean_delta_p"]))
    COMPARED.labels(*key).set(evidence["requests"])
    for role in ("current", "candidate"):
        ERROR_RATE.labels(*key, role).set(_number(evidence[role]["error_rate"]))
        P99.labels(*key, role).set(_number(evidence[role]["p99_s"]))
    for state in STATES:
        DECISION.labels(*key, state).set(status["state"] == state)


def dropped(model: str, candidate: int) -> None:
    SHADOW_DROPPED.labels(model, str(candidate)).inc()


def _number(value: float | None) -> float:
    return float("nan") if value is None else value
