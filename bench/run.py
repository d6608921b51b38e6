"""h5serve benchmark: the real stack against the tutorial way, its own ceiling and limit.

    make bench            (or: .venv/bin/python -m bench.run [--seconds 10])

Starts scripts/stack.sh (nginx TLS -> gunicorn gevent) on loopback for each model and
drives it with wrk (multipart uploads, keep-alive). In the same run it measures the naive
tutorial service, the stack serving a trivial model (its ceiling), the in-process limit,
a 12-megapixel JPEG, and MobileNetV2. Prints a table, writes bench/results/latest.{md,json}.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import requests

from bench.inprocess import (
    decode_times_ms,
    in_process_limit,
    jpeg_bytes,
    mobilenet_v2,
    photo,
    trivial_model,
)
from bench.load import LoadResult, rss_mb, run_wrk, worker_pids
from bench.report import write_report
from tests.servers import free_port, stop

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = ROOT / "models" / "fashion_mnist.h5"
FASHION_IMAGE = ROOT / "static" / "examples" / "ankle_boot.png"
LEVELS = (1, 8, 32, 64)


@contextmanager
def stack(model: Path, workers: int, root: Path = ROOT,
          **extra_env: str) -> Iterator[dict[str, object]]:
    """scripts/stack.sh (of the tree at `root`) up ... down, with the rate limit lifted
    (all load is one address)."""
    directory = Path(tempfile.mkdtemp(prefix="h5serve-bench."))
    port = free_port()
    env = {**os.environ, "MODEL_PATH": str(model), "WORKERS": str(workers),
           "APP_PORT": str(free_port()), "HTTP_PORT": str(free_port()), "HTTPS_PORT": str(port),
           "STACK_DIR": str(directory), "STACK_STATE": str(directory / "state"),
           "VENV": sys.prefix, "RATE_LIMIT": "1000000r/s", "RATE_LIMIT_BURST": "1000000",
           "MAX_REQUESTS": "0",  # no worker recycled while measured (its CPU would vanish)
           **extra_env}
    script = str(root / "scripts" / "stack.sh")
    started = time.monotonic()
    subprocess.run([script, "up"], env=env, check=True, capture_output=True, timeout=300)
    ready_s = time.monotonic() - started
    try:
        yield {"url": f"https://127.0.0.1:{port}", "ready_s": round(ready_s, 1),
               "app": f"http://127.0.0.1:{env['APP_PORT']}",  # gunicorn itself, no nginx
               "master": int((directory / "gunicorn.pid").read_text()),
               "cert": directory / "certs" / "fullchain.pem",
               "grpc": f"127.0.0.1:{extra_env['GRPC_PORT']}" if "GRPC_PORT" in extra_env
               else None}
    finally:
        subprocess.run([script, "down"], env=env, capture_output=True, timeout=120)
        shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def naive_service(model: Path, workers: int) -> Iterator[dict[str, object]]:
    """The tutorial service under gunicorn sync workers, plain HTTP on loopback."""
    port = free_port()
    env = {**os.environ, "MODEL_PATH": str(model), "TF_CPP_MIN_LOG_LEVEL": "2"}
    log = open(tempfile.mktemp(prefix="h5serve-naive.", suffix=".log"), "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [str(Path(sys.prefix) / "bin" / "gunicorn"), "-w", str(workers), "-k", "sync",
         "-b", f"127.0.0.1:{port}", "--timeout", "120", "--no-control-socket",
         "--chdir", str(ROOT / "bench"), "naive_app:app"],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # no health endpoint: wait for a real answer
            try:
                with FASHION_IMAGE.open("rb") as f:
                    if requests.post(url + "/predictlabel", files={"image": f},
                                     timeout=30).ok:
                        break
            except requests.RequestException:
                time.sleep(0.5)
        yield {"url": url, "master": process.pid}
    finally:
        stop(process)
        log.close()


def sweep(name: str, server: dict[str, object], image: Path, levels: tuple[int, ...],
          seconds: float, path: str = "/predictlabel") -> list[LoadResult]:
    results = []
    for concurrency in levels:
        result = run_wrk(f"{server['url']}{path}", image, concurrency, seconds, name,
                         master_pid=server["master"])  # type: ignore[arg-type]
        print(f"  {name:12s} c={concurrency:<4d} {result.rps:8.1f} req/s  "
              f"p50 {result.p50_ms:7.1f}  p99 {result.p99_ms:7.1f} ms  "
              f"failures {result.failures}  cpu {result.worker_cpu}", flush=True)
        results.append(result)
    return results


def warm_explanations(server: dict[str, object]) -> None:
    """Explanations first, several at once so that every worker gets some: each traces
    its gradient graph once (about 1 s)."""
    image = FASHION_IMAGE.read_bytes()

    def explain(_: int) -> None:
        requests.post(f"{server['url']}/explain", files={"image": image}, verify=False,
                      timeout=60)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(explain, range(32)))


def main() -> int:
    parser = argparse.ArgumentParser(description="h5serve benchmark")
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("BENCH_SECONDS", 10)))
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WORKERS", 2)))
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk not found: apt-get install wrk (make bench installs it)")
    cache = ROOT / "bench" / "results" / "inputs"
    cache.mkdir(parents=True, exist_ok=True)
    trivial = trivial_model(cache / "trivial.h5")
    mobilenet = mobilenet_v2(cache / "mobilenet_v2.h5")
    big_jpeg = cache / "photo_12mp.jpg"
    big_jpeg.write_bytes(jpeg_bytes(photo(4000, 3000)))
    small_jpeg = cache / "photo_224.jpg"
    small_jpeg.write_bytes(jpeg_bytes(photo(224, 224, seed=1)))
    report: dict[str, object] = {"seconds": args.seconds, "workers": args.workers,
                                 "cpus": os.cpu_count()}

    print("in-process limits (decode + preprocess + batched forward, batch 32)", flush=True)
    report["limit_bundled"] = round(in_process_limit(BUNDLED, FASHION_IMAGE.read_bytes()), 1)
    report["limit_mobilenet"] = round(in_process_limit(mobilenet, small_jpeg.read_bytes()), 1)
    report["decode_12mp"] = decode_times_ms(BUNDLED, big_jpeg.read_bytes())
    print(f"  bundled {report['limit_bundled']} img/s, MobileNetV2 "
          f"{report['limit_mobilenet']} img/s, 12 MP decode {report['decode_12mp']}", flush=True)

    runs: list[LoadResult] = []
    with stack(BUNDLED, args.workers) as server:
        report["ready_s"] = server["ready_s"]
        runs += sweep("service", server, FASHION_IMAGE, LEVELS, args.seconds)
        runs += sweep("burst", server, FASHION_IMAGE, (512,), args.seconds)
        runs += sweep("recovery", server, FASHION_IMAGE, (1,), 3)
        runs += sweep("12mp-jpeg", server, big_jpeg, (1,), args.seconds)
        warm_explanations(server)
        runs += sweep("explain", server, FASHION_IMAGE, (1, 8), args.seconds, path="/explain")
        report["worker_rss_mb"] = [round(rss_mb(pid), 1)
                                   for pid in worker_pids(server["master"])]  # type: ignore[arg-type]
    with stack(trivial, args.workers) as server:
        runs += sweep("ceiling", server, FASHION_IMAGE, LEVELS, args.seconds)
    with stack(mobilenet, args.workers) as server:
        runs += sweep("mobilenet", server, small_jpeg, (1, 8, 32), args.seconds)
        report["mobilenet_rss_mb"] = [round(rss_mb(pid), 1)
                                      for pid in worker_pids(server["master"])]  # type: ignore[arg-type]
    with naive_service(BUNDLED, args.workers) as server:
        runs += sweep("naive", server, FASHION_IMAGE, LEVELS, args.seconds)

    report["runs"] = [run.to_dict() for run in runs]
    markdown = write_report(report, runs, ROOT / "bench" / "results")
    print()
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
