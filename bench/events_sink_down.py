"""Does a stopped event sink delay answers? p99 with events off and with EVENTS_URL dead.

    make bench-events     (or: .venv/bin/python -m bench.events_sink_down --seconds 10)

Two stacks at once (scripts/stack.sh, gunicorn with 2 gevent workers; the load goes to
gunicorn itself on loopback, no nginx): one with inference events off, one sending every
inference's request and response events (EVENTS_SAMPLE 1.0) to a closed local port, so
every connection is refused. They are taken in turns, A then B each round, under the same
wrk load (8 keep-alive connections, uploads to /predictlabel), so the machine's noise falls
on both; each side's figure is its best round (the medians' ratio is printed too). After
the load the sink-down stack's retries are let run out (3 retries, 2.1 s), then its
h5serve_events_dropped_total must equal two events per answered inference: every event
lost is counted, none twice. One JSON line; exit 1 when a request failed, the count is
off, or the best p99 is over 1.2 times the events-off one's (the issue's bound).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from contextlib import ExitStack

import requests

from app.runtime.events import RETRIES
from bench.load import run_wrk
from bench.run import BUNDLED, FASHION_IMAGE, stack
from tests.servers import free_port

BOUND = 1.2  # sink-down p99 / events-off p99
_SAMPLE = re.compile(r"^(h5serve_\w+)\{([^}]*)\} (\S+)$", re.M)


def counted(base: str) -> tuple[int, int]:
    """(/predictlabel answers with 200, events dropped), summed over the workers."""
    text = requests.get(base + "/metrics", timeout=10).text
    answered = sum(float(value) for name, labels, value in _SAMPLE.findall(text)
                   if name == "h5serve_requests_total" and "predictlabel" in labels
                   and 'status="200"' in labels)
    dropped = sum(float(value) for value in re.findall(
        r"^h5serve_events_dropped_total(?:\{[^}]*\})? (\S+)$", text, re.M))
    return int(answered), int(dropped)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()
    closed = f"http://127.0.0.1:{free_port()}/"  # nothing listens: a stopped sink
    sides = {"events_off": {}, "sink_down": {"EVENTS_URL": closed, "EVENTS_SAMPLE": "1.0",
                                             "EVENTS_INCLUDE": "both"}}
    runs: dict[str, list[float]] = {side: [] for side in sides}
    answered = failures = 0
    with ExitStack() as stacks:
        servers = {side: stacks.enter_context(stack(BUNDLED, 2, **env))
                   for side, env in sides.items()}
        for _ in range(args.rounds):
            for side, server in servers.items():
                url = f"{server['app']}/predictlabel"
                run_wrk(url, FASHION_IMAGE, args.connections, 2, "warm-up")
                result = run_wrk(url, FASHION_IMAGE, args.connections, args.seconds, side,
                                 server["master"])  # type: ignore[arg-type]
                runs[side].append(result.p99_ms)
                failures += result.failures
                answered += result.ok if side == "sink_down" else 0
        time.sleep(sum(RETRIES) + 1)  # the last retries run out, then what waits is dropped
        served, dropped = counted(str(servers["sink_down"]["app"]))
    off, down = min(runs["events_off"]), min(runs["sink_down"])
    report = {"p99_ms_events_off": off, "p99_ms_sink_down": down,
              "ratio": round(down / off, 2), "bound": BOUND, "runs_p99_ms": runs,
              "median_ratio": round(statistics.median(runs["sink_down"])
                                    / statistics.median(runs["events_off"]), 2),
              "failures": failures, "sink_down_measured_requests": answered,
              "sink_down_answered_by_server": served, "events_expected": 2 * served,
              "events_dropped": dropped}
    print(json.dumps(report))
    return 0 if failures == 0 and dropped == 2 * served and down <= BOUND * off else 1


if __name__ == "__main__":
    sys.exit(main())
