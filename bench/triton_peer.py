"""h5serve against NVIDIA Triton's core on Open Inference Protocol v2 JSON, same model, same
client, one run.

    make bench-triton        (or: .venv/bin/python -m bench.triton_peer [--seconds 8])

Triton (through PyTriton, bench/triton_server.py, in its own venv made by
`scripts/bootstrap.sh triton`) serves the bundled model on plain HTTP on loopback; h5serve
is measured both direct to gunicorn (the same plain HTTP) and through nginx TLS (how it is
deployed). wrk sends each the same V2 FP32 request at the same concurrency, the servers
taken in turns over `--rounds` rounds (this machine's speed drifts within a run). CPU per
request is every process of a server's tree (Triton: the PyTriton process, tritonserver and
its stubs; h5serve: the gunicorn workers) over the requests answered.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from bench.endpoints import bodies
from bench.load import LoadResult, run_wrk, worker_pids
from bench.run import BUNDLED, ROOT, stack
from tests.servers import free_port

TOOL_PYTHON = ROOT / ".venv-tools" / "pytriton" / "bin" / "python"


def process_tree(pid: int) -> list[int]:
    """`pid` and every descendant (Triton's server and stubs are children's children)."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        children = Path(f"/proc/{current}/task/{current}/children")
        if children.exists():
            queue += [int(child) for child in children.read_text().split()]
    return found


@contextmanager
def triton(input_name: str) -> Iterator[dict[str, object]]:
    """The Triton peer up on loopback, then stopped (its whole process group)."""
    if not TOOL_PYTHON.exists():
        sys.exit("no PyTriton venv: run `make bench-triton` (scripts/bootstrap.sh triton)")
    port = free_port()
    libdir = subprocess.run([str(TOOL_PYTHON), "-c", "import sysconfig; print(sysconfig."
                             "get_config_var('LIBDIR'))"], capture_output=True, text=True,
                            check=True).stdout.strip()
    # The Python backend stub links libpython: the interpreter's own must come first.
    env = {**os.environ, "LD_LIBRARY_PATH": ":".join(filter(None, [
        libdir, os.environ.get("LD_LIBRARY_PATH")]))}
    log = Path(tempfile.mkdtemp(prefix="h5serve-triton.")) / "triton.log"
    with log.open("wb") as output:
        process = subprocess.Popen([str(TOOL_PYTHON), str(ROOT / "bench" / "triton_server.py"),
                                    str(BUNDLED), input_name, str(port)], env=env,
                                   stdout=output, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"the Triton peer did not start; its log: {log}")
            try:
                if requests.get(url + "/v2/models/fashion_mnist/ready", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            time.sleep(1)
        yield {"url": url, "pid": process.pid}
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def measure(name: str, url: str, pids: list[int], body: Path, concurrency: int,
            seconds: float) -> LoadResult:
    """One wrk run of the V2 FP32 request, with the CPU of `pids` over it."""
    run_wrk(url, body, 8, 1, "warm-up", content_type="application/json")
    result = run_wrk(url, body, concurrency, seconds, name, content_type="application/json",
                     pids=pids)
    print(f"  {name:24s} {result.rps:7.0f} req/s  p99 {result.p99_ms:6.1f} ms  CPU "
          f"{result.cpu_per_request_ms} ms/req  failures {result.failures}", flush=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description="h5serve vs Triton on V2 JSON")
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("-c", "--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="h5serve-triton-bodies."))
    runs: dict[str, list[LoadResult]] = {}
    with stack(BUNDLED, 2, MAX_REQUESTS="0") as h5serve:
        meta = requests.get(f"{h5serve['url']}/v2/models/fashion_mnist", verify=False,
                            timeout=10).json()
        input_name = meta["inputs"][0]["name"]
        body = bodies(folder, input_name)["v2-fp32"][1]
        path = "/v2/models/fashion_mnist/infer"
        with triton(input_name) as peer:
            workers = worker_pids(int(h5serve["master"]))  # type: ignore[call-overload]
            servers = {"triton (HTTP)": (str(peer["url"]) + path,
                                         process_tree(int(peer["pid"]))),  # type: ignore[call-overload]
                       "h5serve (HTTP)": (str(h5serve["app"]) + path, workers),
                       "h5serve (nginx TLS)": (str(h5serve["url"]) + path, workers)}
            for turn in range(args.rounds):
                order = list(servers.items())
                for name, (url, pids) in order[::-1] if turn % 2 else order:
                    runs.setdefault(name, []).append(
                        measure(name, url, pids, body, args.concurrency, args.seconds))
    print(f"\n| V2 FP32 JSON, c={args.concurrency} | req/s | p99 ms | CPU ms/req | failures "
          "| req/s vs Triton |")
    print("|---|---:|---:|---:|---:|---:|")
    triton_rps = sum(r.rps for r in runs["triton (HTTP)"]) / args.rounds
    for name, results in runs.items():
        rps = sum(r.rps for r in results) / len(results)
        p99 = max(r.p99_ms for r in results)
        cpu = sum(r.worker_cpu_s for r in results) / max(1, sum(r.requests for r in results))
        failures = sum(r.failures for r in results)
        print(f"| {name} | {rps:.0f} | {p99:.1f} | {1000 * cpu:.2f} | {failures} | "
              f"{rps / triton_rps:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
