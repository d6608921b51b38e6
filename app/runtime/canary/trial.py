"""One roll-out as a worker holds it: its policy, its evidence, its decision, and the
routing and serving that follow from them.

A trial is named by the model, the candidate and its file's modification time, so a
candidate whose file is replaced starts a new trial with fresh evidence.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from typing import Any

from app.runtime.canary.evidence import Evidence
from app.runtime.canary.policy import RolloutPolicy
from app.runtime.canary.rules import PROMOTE, ROLL_BACK
from app.runtime.repository_layout import ModelSource, VersionPolicy, fingerprint


def trial_key(source: ModelSource, version: int) -> str:
    """The name of a trial of `version`, the same in every worker, new with a new file."""
    seen = fingerprint(source.files[version])
    return f"{source.name}.v{version}.{seen[1] if seen else 0}"


def without_refused(source: ModelSource, refused: set[str], candidate: int | None
                    ) -> ModelSource:
    """`source` less the versions rolled back earlier, file unchanged: a refused version
    never becomes the current one when the card moves on to the next candidate."""
    kept = {v: p for v, p in source.files.items()
            if v == candidate or trial_key(source, v) not in refused}
    return replace(source, files=kept) if kept else source


@dataclass
class Trial:
    """A candidate on trial against the other versions of its model."""

    key: str
    name: str
    policy: RolloutPolicy
    evidence: Evidence = field(default_factory=Evidence)  # this worker's
    pooled: Evidence = field(default_factory=Evidence)  # every worker's, as last read
    decision: dict[str, Any] | None = None  # the shared decision, once taken
    recommended: str = ""  # auto off: the verdict already logged

    @classmethod
    def of(cls, source: ModelSource) -> Trial | None:
        """The source's roll-out, when its card names a candidate on disk beside at
        least one other version (the current one to compare with)."""
        policy = source.rollout
        if policy is None or policy.candidate not in source.files or len(source.files) < 2:
            return None
        return cls(trial_key(source, policy.candidate), source.name, policy)

    @property
    def candidate(self) -> int:
        return self.policy.candidate

    @property
    def state(self) -> str:
        return self.decision["decision"] if self.decision else "running"

    def serving(self, source: ModelSource) -> ModelSource:
        """`source` with the versions to serve now: the card's policy over the other
        versions plus the candidate while undecided; the policy over all of them plus
        the candidate once promoted; the other versions alone once rolled back."""
        others = sorted(v for v in source.files if v != self.candidate)
        wanted = set(source.policy.select(others))
        if self.state == PROMOTE:
            wanted = set(source.policy.select(list(source.files))) | {self.candidate}
        elif self.state != ROLL_BACK:
            wanted.add(self.candidate)
        return replace(source, policy=VersionPolicy("specific", versions=tuple(sorted(wanted))))

    def route(self, served: Any, client: str) -> int | None:
        """The version a request naming none gets (None: the model's latest). Canary:
        the same client always lands on the same side while the weight holds."""
        if self.state == PROMOTE:
            return self.candidate if self.candidate in served else None
        others = [v for v in served if v != self.candidate]
        if not others:
            return None
        if self.state == "running" and self.policy.mode == "canary" \
                and self.candidate in served and self.bucket(client) < self.policy.weight:
            return self.candidate
        return max(others)

    def bucket(self, client: str) -> float:
        """The client's place in 0-100, the same in every worker and every restart."""
        seed = f"{self.name}:{self.candidate}:{client}".encode()
        return int.from_bytes(hashlib.sha256(seed).digest()[:8], "big") / 2 ** 64 * 100

    def drop_note(self) -> str:
        """The log line that says the mirror fell behind, and what it costs."""
        ev, wanted = self.evidence, self.policy.shadow_sample
        return (f"roll-out of model {self.name} version {self.candidate}: the mirror cannot "
                f"keep up; dropped {ev.dropped} of {ev.sampled} samples in this worker, "
                f"effective sample rate {wanted * (1 - ev.dropped / ev.sampled):.2f} of the "
                f"card's {wanted:.2f}")

    def status(self) -> dict[str, Any]:
        """What GET /models/<name>, the repository index and the metrics show."""
        decision = self.decision or {}
        percent = {"running": self.policy.weight if self.policy.mode == "canary" else 0,
                   PROMOTE: 100, ROLL_BACK: 0}[self.state]
        return {"candidate": self.candidate, "mode": self.policy.mode,
                "state": self.state, "reason": decision.get("reason", ""),
                "decided_by": decision.get("by", ""), "auto": self.policy.auto,
                "recommendation": self.recommended, "serving_percent": percent,
                "shadow_sample": self.policy.shadow_sample, "started": self.pooled.started,
                "bounds": {"min_requests": self.policy.min_requests,
                           "min_agreement": self.policy.min_agreement,
                           "max_error_increase": self.policy.max_error_increase,
                           "max_latency_ratio": self.policy.max_latency_ratio},
                "evidence": self.pooled.summary()}
