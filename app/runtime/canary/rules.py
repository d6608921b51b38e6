"""When a roll-out's evidence is enough to promote its candidate, or to roll it back.

Promotion waits for `min_requests` compared requests and every bound met. A roll-back
does not wait: it comes as soon as a bound is *clearly* broken, that is when even the
most favourable reading of the evidence so far breaks it (a Wilson bound at z = 3, about
one chance in 700 of blaming a good candidate), so a bad candidate is stopped after a few
dozen requests and a good one is not stopped by an unlucky start. Latency, noisier than
counts, rolls back only past twice its bound, and only after `min_requests`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from app.runtime.canary.evidence import Evidence
from app.runtime.canary.policy import RolloutPolicy

PROMOTE, ROLL_BACK = "promoted", "rolled_back"
Z = 3.0
MIN_SEEN = 20  # requests before any bound can be called clearly broken


@dataclass(frozen=True)
class Verdict:
    decision: str  # PROMOTE or ROLL_BACK
    reason: str  # names the bound: agreement, error rate or latency


def wilson(successes: int, trials: int) -> tuple[float, float]:
    """The Wilson score interval of a share, at Z standard errors."""
    if not trials:
        return 0.0, 1.0
    share = successes / trials
    centre = share + Z * Z / (2 * trials)
    spread = Z * math.sqrt(share * (1 - share) / trials + Z * Z / (4 * trials * trials))
    scale = 1 + Z * Z / trials
    return max(0.0, (centre - spread) / scale), min(1.0, (centre + spread) / scale)


def judge(policy: RolloutPolicy, evidence: Evidence) -> Verdict | None:
    """The decision the evidence calls for now, or None: keep watching."""
    return _broken(policy, evidence) or _promotable(policy, evidence)


def _broken(policy: RolloutPolicy, ev: Evidence) -> Verdict | None:
    if ev.compared >= MIN_SEEN and wilson(ev.agreed, ev.compared)[1] < policy.min_agreement:
        return Verdict(ROLL_BACK, f"agreement {ev.agreement:.3f} over {ev.compared} "
                                  f"compared requests, below min_agreement "
                                  f"{policy.min_agreement}")
    tried = ev.answered["candidate"]
    allowed = (ev.error_rate("current") or 0.0) + policy.max_error_increase
    if tried >= MIN_SEEN and wilson(ev.errors["candidate"], tried)[0] > allowed:
        return Verdict(ROLL_BACK, f"error rate {ev.error_rate('candidate'):.3f} over {tried} "
                                  f"requests, above the current version's + "
                                  f"max_error_increase ({allowed:.3f})")
    ratio = _latency_ratio(ev)
    if tried >= policy.min_requests and ratio is not None \
            and ratio > 2 * policy.max_latency_ratio:
        return Verdict(ROLL_BACK, f"latency: p99 {ratio:.2f} times the current version's, "
                                  f"above 2 x max_latency_ratio {policy.max_latency_ratio}")
    return None


def _promotable(policy: RolloutPolicy, ev: Evidence) -> Verdict | None:
    if ev.compared < policy.min_requests or ev.agreement is None:
        return None
    errors = ev.error_rate("candidate") or 0.0
    allowed = (ev.error_rate("current") or 0.0) + policy.max_error_increase
    ratio = _latency_ratio(ev)
    if ev.agreement < policy.min_agreement or errors > allowed \
            or (ratio is not None and ratio > policy.max_latency_ratio):
        return None
    return Verdict(PROMOTE, f"agreement {ev.agreement:.3f} over {ev.compared} compared "
                            f"requests, error rate {errors:.3f}, p99 "
                            f"{'n/a' if ratio is None else f'{ratio:.2f}'} times the "
                            "current version's")


def _latency_ratio(ev: Evidence) -> float | None:
    current, candidate = ev.quantile("current", 0.99), ev.quantile("candidate", 0.99)
    if not current or candidate is None:
        return None
    return candidate / current
