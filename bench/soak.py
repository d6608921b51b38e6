"""Soak: sustained load at c=64 through nginx TLS; no failures, worker memory flat.

    make soak                          (5 minutes)
    .venv/bin/python -m bench.soak --seconds 300

The first 10 % of the run (at least 10 s) warms up; worker RSS is measured after it
and at the end. Prints one JSON line; exits 1 when a request failed or RSS grew >= 10 %.
"""

from __future__ import annotations

import argparse
import json
import sys

from bench.load import rss_mb, run_wrk, worker_pids
from bench.run import BUNDLED, FASHION_IMAGE, stack


def soak(seconds: float, concurrency: int = 64, workers: int = 2) -> dict[str, object]:
    """Run the soak and return its figures (requests, failures, RSS before/after)."""
    warmup = max(10.0, seconds * 0.1)
    # No worker recycling during the soak: it would hide the very growth we look for.
    with stack(BUNDLED, workers, MAX_REQUESTS="0") as server:
        master = server["master"]
        url = f"{server['url']}/predictlabel"
        first = run_wrk(url, FASHION_IMAGE, concurrency, warmup, "warm-up", master)
        before = {pid: rss_mb(pid) for pid in worker_pids(master)}  # type: ignore[arg-type]
        main = run_wrk(url, FASHION_IMAGE, concurrency, seconds - warmup, "soak", master)
        after = {pid: rss_mb(pid) for pid in worker_pids(master)}  # type: ignore[arg-type]
    growth = max((after[pid] - before[pid]) / before[pid] for pid in before if pid in after)
    return {"seconds": seconds, "concurrency": concurrency,
            "requests": first.requests + main.requests,
            "failures": first.failures + main.failures, "rps": main.rps,
            "p50_ms": main.p50_ms, "p99_ms": main.p99_ms,
            "rss_mb_after_warmup": before, "rss_mb_at_end": after,
            "max_rss_growth": round(growth, 4), "same_workers": set(before) == set(after)}


def main() -> int:
    parser = argparse.ArgumentParser(description="h5serve soak test")
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    result = soak(args.seconds, args.concurrency)
    print(json.dumps(result))
    return 0 if result["failures"] == 0 and result["max_rss_growth"] < 0.10 else 1


if __name__ == "__main__":
    sys.exit(main())
