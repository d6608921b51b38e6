"""Does a 100 % shadow delay answers? p99 of the current version with and without one.

    .venv/bin/python -m bench.rollout_shadow --seconds 10

gunicorn (2 gevent workers, no nginx) serves model `fash` from a temporary repository:
version 1 alone, then with version 2 (the same file) as a shadow mirroring every request
(`shadow_sample` 1.0, `auto` off), in turns, each under the same wrk load (8 keep-alive
connections, loopback). Mirror runs are dropped rather than queued when the candidate
falls behind, so the effective sample rate is printed too. One JSON line; exit 1 when
a request failed or the shadow's p99 is over 1.5 times the plain one's.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import requests

from bench.load import run_wrk
from bench.run import BUNDLED, FASHION_IMAGE, stack

CARD = json.loads(BUNDLED.with_suffix(".json").read_text())
SHADOW = {"candidate": 2, "mode": "shadow", "shadow_sample": 1.0, "auto": False}


def write_card(folder: Path, rollout: dict[str, object] | None) -> None:
    card = {**CARD, "versions": {"specific": [1]}, **({"rollout": rollout} if rollout else {})}
    (folder / "card.tmp").write_text(json.dumps(card))
    (folder / "card.tmp").rename(folder / "fash.json")


def wait_for(url: str, shadowed: bool, timeout: float = 120) -> None:
    """Until every answer of a few says the roll-out is (or is not) there."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen = {"rollout" in requests.get(url, timeout=10).json() for _ in range(8)}
        if seen == {shadowed}:
            return
        time.sleep(0.5)
    raise TimeoutError(f"roll-out {'on' if shadowed else 'off'} not seen in {timeout} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="h5serve-bench-shadow."))
    folder = root / "fash"
    for version in (1, 2):
        (folder / str(version)).mkdir(parents=True)
        shutil.copy(BUNDLED, folder / str(version) / "model.h5")
    write_card(folder, None)
    runs: dict[str, list[float]] = {"plain": [], "shadow": []}
    failures = 0
    try:
        with stack(BUNDLED, 2, MODEL_PATH="", MODEL_REPOSITORY=str(root),
                   MODEL_POLL_SECONDS="1") as server:
            url = f"{server['app']}/models/fash"
            for _ in range(args.rounds):
                for kind in runs:
                    write_card(folder, SHADOW if kind == "shadow" else None)
                    wait_for(url, kind == "shadow")
                    run_wrk(url + "/predictlabel", FASHION_IMAGE, 8, 3, "warm-up")
                    result = run_wrk(url + "/predictlabel", FASHION_IMAGE, 8, args.seconds,
                                     kind, server["master"])  # type: ignore[arg-type]
                    runs[kind].append(result.p99_ms)
                    failures += result.failures
                    if kind == "shadow":
                        evidence = requests.get(url, timeout=10).json()["rollout"]["evidence"]
    finally:
        shutil.rmtree(root, ignore_errors=True)
    plain, shadow = min(runs["plain"]), min(runs["shadow"])
    sampled = evidence["shadow_sampled"]
    report = {"p99_ms_plain": plain, "p99_ms_shadow": shadow,
              "ratio": round(shadow / plain, 2), "runs_p99_ms": runs, "failures": failures,
              "effective_sample": round(1 - evidence["shadow_dropped"] / sampled, 3)
              if sampled else None, "compared": evidence["requests"]}
    print(json.dumps(report))
    return 0 if failures == 0 and shadow <= 1.5 * plain else 1


if __name__ == "__main__":
    sys.exit(main())
