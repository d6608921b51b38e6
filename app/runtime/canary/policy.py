"""The `"rollout"` block of a model folder's card: which version is on trial, how, and
the bounds that decide it.

    "rollout": {"candidate": 3, "mode": "shadow", "shadow_sample": 0.2}
    "rollout": {"candidate": 3, "mode": "canary", "weight": 10, "auto": false}

Every bound has a default safe enough to leave out: promote after 500 compared requests
with 98 % top-1 agreement, an error rate at most 0.5 points above the current version's
and a p99 latency at most 1.2 times its own. The card is read at every look at the disk,
like `versions` and `version_labels`, so editing it starts, changes or ends a roll-out.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

MODES = ("shadow", "canary")


class PolicyError(ValueError):
    """A `"rollout"` block that cannot be used; the message names the card and the key."""


@dataclass(frozen=True)
class RolloutPolicy:
    """One model's roll-out, as its card says."""

    candidate: int
    mode: str = "shadow"
    weight: float = 10.0  # canary: percent of clients answered by the candidate
    shadow_sample: float = 1.0  # share of requests also run on the other version
    min_requests: int = 500  # compared requests before a promotion
    min_agreement: float = 0.98  # top-1 agreement with the current version
    max_error_increase: float = 0.005  # over the current version's error rate
    max_latency_ratio: float = 1.2  # candidate p99 / current p99
    auto: bool = True  # False: evidence and recommendations only

    @classmethod
    def parse(cls, value: Any, where: str) -> RolloutPolicy | None:
        """The card's block (None when it has none); PolicyError naming what is wrong."""
        if value is None:
            return None
        if not isinstance(value, dict):
            raise PolicyError(f'{where}: "rollout" must be an object, got {value!r}')
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(value) - known)
        if unknown:
            raise PolicyError(f'{where}: "rollout" has unknown keys {unknown}; known: '
                              f"{sorted(known)}")
        policy = cls(**value)
        policy._check(where)
        return policy

    def _check(self, where: str) -> None:
        def fail(key: str, wanted: str) -> PolicyError:
            return PolicyError(f'{where}: "rollout"."{key}" must be {wanted}, got '
                               f"{getattr(self, key)!r}")

        if not _integer(self.candidate) or self.candidate < 1:
            raise fail("candidate", "a version number (a positive integer)")
        if self.mode not in MODES:
            raise fail("mode", " or ".join(f'"{m}"' for m in MODES))
        if not _number(self.weight) or not 0 <= self.weight <= 100:
            raise fail("weight", "a percentage, 0 to 100")
        if not _number(self.shadow_sample) or not 0 < self.shadow_sample <= 1:
            raise fail("shadow_sample", "a share above 0, at most 1")
        if not _integer(self.min_requests) or self.min_requests < 1:
            raise fail("min_requests", "a positive integer")
        if not _number(self.min_agreement) or not 0 <= self.min_agreement <= 1:
            raise fail("min_agreement", "a share, 0 to 1")
        if not _number(self.max_error_increase) or not 0 <= self.max_error_increase <= 1:
            raise fail("max_error_increase", "a share, 0 to 1")
        if not _number(self.max_latency_ratio) or self.max_latency_ratio < 1:
            raise fail("max_latency_ratio", "a ratio of at least 1")
        if not isinstance(self.auto, bool):
            raise fail("auto", "true or false")


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
