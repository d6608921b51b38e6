"""Drive a running server with wrk and measure what its worker processes did meanwhile.

Loopback only; every run is bounded by its duration.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class LoadResult:
    """One wrk run: throughput, latency percentiles (ms), failures, per-worker CPU."""

    scenario: str
    concurrency: int
    requests: int
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    statuses: dict[str, int]
    socket_errors: int
    timeouts: int
    worker_cpu: list[float] = field(default_factory=list)  # % of one core, per worker
    worker_cpu_s: float = 0.0  # CPU seconds all workers spent during the run

    @property
    def cpu_per_request_ms(self) -> float | None:
        """Worker CPU per answered request (all workers' CPU seconds / requests)."""
        return round(1000 * self.worker_cpu_s / self.requests, 2) if self.requests else None

    @property
    def ok(self) -> int:
        return sum(n for status, n in self.statuses.items() if status.startswith("2"))

    @property
    def failures(self) -> int:
        """Everything that is not a 2xx answer: other statuses, socket errors, timeouts."""
        return self.requests - self.ok + self.socket_errors + self.timeouts

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "failures": self.failures,
                "cpu_per_request_ms": self.cpu_per_request_ms}


def worker_pids(master_pid: int) -> list[int]:
    """gunicorn's worker processes: the master's children."""
    out = subprocess.run(["pgrep", "-P", str(master_pid)], capture_output=True, text=True)
    return sorted(int(pid) for pid in out.stdout.split())


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run_wrk(url: str, image: Path, concurrency: int, seconds: float, scenario: str,
            master_pid: int | None = None, timeout_s: int = 30,
            content_type: str | None = None, header: str | None = None,
            pids: list[int] | None = None) -> LoadResult:
    """POST `image` to `url` (multipart, or the file as the body when `content_type` is
    given) from `concurrency` keep-alive connections for `seconds`. The CPU measured is
    that of `pids`, else of gunicorn `master_pid`'s workers."""
    if pids is None:
        pids = worker_pids(master_pid) if master_pid else []
    before = {pid: cpu_seconds(pid) for pid in pids}
    started = time.monotonic()
    out = subprocess.run(
        ["wrk", f"-t{min(2, concurrency)}", f"-c{concurrency}", f"-d{seconds:g}s",
         f"--timeout={timeout_s}s", "-s", str(BENCH_DIR / "post.lua"), url, "--",
         str(image), *([content_type] if content_type else []), *([header] if header else [])],
        capture_output=True, text=True, timeout=seconds + timeout_s + 30, check=True)
    elapsed = time.monotonic() - started
    spent = [cpu_seconds(pid) - before[pid] for pid in pids]
    cpu = [round(100 * seconds_used / elapsed, 1) for seconds_used in spent]
    line = next(x for x in out.stdout.splitlines() if x.startswith("JSON "))
    data = json.loads(line[5:])
    errors = data["errors"]
    latency = data["latency_us"]
    return LoadResult(
        scenario=scenario, concurrency=concurrency, requests=data["requests"],
        rps=round(data["requests"] / (data["duration_us"] / 1e6), 1),
        p50_ms=latency["p50"] / 1000, p90_ms=latency["p90"] / 1000,
        p99_ms=latency["p99"] / 1000, max_ms=latency["max"] / 1000,
        statuses=data["statuses"],
        socket_errors=errors["connect"] + errors["read"] + errors["write"],
        timeouts=errors["timeout"], worker_cpu=cpu, worker_cpu_s=round(sum(spent), 3))
