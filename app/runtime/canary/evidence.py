"""What a roll-out has seen of its candidate against the current version.

Counts and latency histograms only, so that every worker's evidence adds up to the
pool's (a percentile cannot be averaged; bucket counts can be summed). Latencies fall in
log-spaced buckets 25 % apart, so a pooled p99 is within a bucket's width of the truth.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Any

ROLES = ("current", "candidate")
BUCKETS = tuple(0.0001 * 1.25 ** i for i in range(64))  # 0.1 ms to ~160 s


def _zeros() -> dict[str, list[int]]:
    return {role: [0] * (len(BUCKETS) + 1) for role in ROLES}


@dataclass
class Evidence:
    """One worker's (or the pool's) evidence about one roll-out."""

    compared: int = 0  # requests run on both versions
    agreed: int = 0  # ... whose top-1 class was the same
    delta_sum: float = 0.0  # sum of |p_candidate - p_current| of the current's top class
    answered: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ROLES, 0))
    errors: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ROLES, 0))
    latency: dict[str, list[int]] = field(default_factory=_zeros)
    sampled: int = 0  # mirror runs wanted by shadow_sample
    dropped: int = 0  # ... and dropped because the other version fell behind
    started: float = 0.0  # when the first worker saw the roll-out (time.time())

    def answer(self, role: str, seconds: float) -> None:
        self.answered[role] += 1
        self.latency[role][bisect_left(BUCKETS, seconds)] += 1

    def error(self, role: str) -> None:
        self.answered[role] += 1
        self.errors[role] += 1

    def compare(self, current: Any, candidate: Any) -> None:
        """One request's probabilities from both versions (rows x classes)."""
        for mine, theirs in zip(current, candidate, strict=True):
            top = int(mine.argmax())
            self.compared += 1
            self.agreed += int(theirs.argmax()) == top
            self.delta_sum += abs(float(theirs[top]) - float(mine[top]))

    def add(self, other: Evidence) -> None:
        """Pool `other` into this one."""
        self.compared += other.compared
        self.agreed += other.agreed
        self.delta_sum += other.delta_sum
        self.sampled += other.sampled
        self.dropped += other.dropped
        for role in ROLES:
            self.answered[role] += other.answered[role]
            self.errors[role] += other.errors[role]
            self.latency[role] = [a + b for a, b in zip(self.latency[role],
                                                          other.latency[role], strict=True)]
        starts = [s for s in (self.started, other.started) if s]
        self.started = min(starts, default=0.0)

    @property
    def agreement(self) -> float | None:
        return self.agreed / self.compared if self.compared else None

    def error_rate(self, role: str) -> float | None:
        return self.errors[role] / self.answered[role] if self.answered[role] else None

    def quantile(self, role: str, q: float) -> float | None:
        """The latency under which a share `q` of the role's answers fell (bucket top)."""
        counts = self.latency[role]
        total = sum(counts)
        if not total:
            return None
        rank, seen = math.ceil(q * total), 0
        for index, count in enumerate(counts):
            seen += count
            if seen >= rank:
                return BUCKETS[min(index, len(BUCKETS) - 1)]
        return BUCKETS[-1]  # pragma: no cover - the loop always reaches rank

    def summary(self) -> dict[str, Any]:
        """The evidence as GET /models/<name>, the log and the metrics show it."""
        agreement = self.agreement
        return {
            "requests": self.compared,
            "agreement": None if agreement is None else round(agreement, 4),
            "mean_delta_p": round(self.delta_sum / self.compared, 5) if self.compared
            else None,
            "shadow_sampled": self.sampled, "shadow_dropped": self.dropped,
            **{role: {"answered": self.answered[role],
                      "error_rate": _rounded(self.error_rate(role)),
                      "p50_s": _rounded(self.quantile(role, 0.5)),
                      "p99_s": _rounded(self.quantile(role, 0.99))} for role in ROLES}}

    def to_json(self) -> dict[str, Any]:
        return {"compared": self.compared, "agreed": self.agreed, "delta_sum": self.delta_sum,
                "answered": self.answered, "errors": self.errors, "latency": self.latency,
                "sampled": self.sampled, "dropped": self.dropped, "started": self.started}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Evidence:
        return cls(**data)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 5)
