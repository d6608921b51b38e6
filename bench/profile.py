"""Where a worker's time goes under load: py-spy on one gunicorn worker of the real stack.

    make profile            (or: .venv/bin/python -m bench.profile [--seconds 10] [-c 32])

Starts scripts/stack.sh, drives it with wrk, and samples one worker with py-spy (only
while a thread holds the GIL: the Python work that bounds throughput). Prints per-thread
shares and the functions with the largest inclusive share; the raw samples are kept in
bench/results/profile.txt (py-spy's "raw" format, for flame graph tools).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

from bench.load import run_wrk, worker_pids
from bench.run import BUNDLED, FASHION_IMAGE, ROOT, stack

RATE_HZ = 200


def aggregate(raw: str) -> tuple[Counter[str], Counter[str], int]:
    """py-spy raw lines -> (samples per thread, inclusive samples per function, total)."""
    threads: Counter[str] = Counter()
    functions: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack_text, _, count_text = line.rpartition(" ")
        if not stack_text:
            continue
        count = int(count_text)
        thread, *frames = stack_text.split(";")
        threads[thread] += count
        total += count
        # One count per function per sample, whatever the recursion; line numbers dropped.
        for function in {re.sub(r":\d+\)$", ")", frame) for frame in frames}:
            functions[function] += count
    return threads, functions, total


def main() -> int:
    parser = argparse.ArgumentParser(description="py-spy profile of one loaded worker")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("-c", "--concurrency", type=int, default=32)
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    py_spy = Path(sys.prefix) / "bin" / "py-spy"
    out = ROOT / "bench" / "results" / "profile.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    with stack(BUNDLED, 2) as server:
        url = f"{server['url']}/predictlabel"
        master = int(server["master"])  # type: ignore[call-overload]
        run_wrk(url, FASHION_IMAGE, 16, 2, "warm-up", master)
        worker = worker_pids(master)[0]
        spy = subprocess.Popen(
            [str(py_spy), "record", "--pid", str(worker), "--duration", f"{args.seconds:g}",
             "--rate", str(RATE_HZ), "--format", "raw", "--output", str(out), "--threads",
             "--gil", "--nonblocking"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        load = run_wrk(url, FASHION_IMAGE, args.concurrency, args.seconds + 1, "load", master)
        _, error = spy.communicate(timeout=args.seconds + 60)
        if spy.returncode != 0:
            sys.exit(f"py-spy failed: {error.strip()}")
    threads, functions, total = aggregate(out.read_text())
    possible = args.seconds * RATE_HZ
    print(f"c={args.concurrency}: {load.rps:.0f} req/s, p99 {load.p99_ms:.0f} ms; worker "
          f"{worker} held the GIL in {100 * total / possible:.0f} % of {possible:.0f} samples")
    for thread, count in threads.most_common():
        print(f"  {thread}: {100 * count / possible:.1f} % of the time")
    print(f"\nshare of GIL-held samples, inclusive (top {args.top}):")
    for function, count in functions.most_common(args.top):
        print(f"  {100 * count / total:5.1f} %  {function}")
    print(f"\nraw samples: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
