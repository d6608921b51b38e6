"""CPU runtimes per model: TensorFlow, ONNX Runtime and OpenVINO, in process and end to end.

    make bench-runtimes     (or: .venv/bin/python -m bench.runtimes [--seconds 10])

Four models, built with random weights (nothing downloaded): the bundled one, MobileNetV2
and EfficientNetB0 at 224 px, and a Teachable Machine export. Part A, in a child process
(bench/runtimes_inprocess.py): each runtime forced, images/s of `Classifier.predict` at
batch 1 and 16, parity with Keras, and what RUNTIME=auto picks. Part B, end to end:
scripts/stack.sh (nginx TLS -> gunicorn gevent, 2 workers) with RUNTIME=tensorflow and
RUNTIME=auto up side by side and taken in turns, each with its own conversion cache
(auto's filled by a cold start first, whose start-up time is reported); the workers'
mean batch comes from /metrics. Prints the tables, writes bench/results/runtimes.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import requests

from app.config import RUNTIMES
from bench.endpoints import bodies
from bench.inprocess import jpeg_bytes, photo
from bench.load import rss_mb, run_wrk, worker_pids
from bench.run import FASHION_IMAGE, ROOT, stack
from bench.runtimes_inprocess import MODELS, in_process, model_files

WORKERS = 2
SIDE_BY_SIDE = ("tensorflow", "auto")
MULTIPART = ("predictlabel", "/predictlabel", None)


def _metric_totals(app_url: str) -> dict[str, float]:
    """Sums over every worker and label set of the batcher's Prometheus series."""
    names = ("h5serve_batch_size_sum", "h5serve_batch_size_count", "h5serve_inference_seconds_sum")
    totals = dict.fromkeys(names, 0.0)
    for line in requests.get(f"{app_url}/metrics", timeout=10).text.splitlines():
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name in totals:
            totals[name] += float(line.rsplit(" ", 1)[1])
    return totals


def _problems(server: dict[str, object]) -> list[str]:
    """The app log's warnings and errors, read before the stack removes it."""
    log = Path(str(server["cert"])).parents[1] / "logs" / "app.log"
    wanted = (" WARNING ", " ERROR ", " CRITICAL ", "[WARNING]", "[ERROR]", "[CRITICAL]",
              "Traceback")
    return sorted({line.split("]: ", 1)[-1] for line in log.read_text(errors="replace")
                   .splitlines() if any(word in line for word in wanted)})


def _timed(server: dict[str, object], path: str, body: Path, content_type: str | None,
           concurrency: int, seconds: float, labels: dict[str, str]) -> dict[str, Any]:
    """One wrk run after a short warm-up, with the batches the workers formed meanwhile."""
    url, master = f"{server['url']}{path}", int(str(server["master"]))
    run_wrk(url, body, 8, 1, "warm-up", master, content_type=content_type)
    before = _metric_totals(str(server["app"]))
    result = run_wrk(url, body, concurrency, seconds, " ".join(labels.values()), master,
                     content_type=content_type)
    after = {k: v - before[k] for k, v in _metric_totals(str(server["app"])).items()}
    batches = after["h5serve_batch_size_count"] or 1
    run = {**result.to_dict(), **labels,
           "mean_batch": round(after["h5serve_batch_size_sum"] / batches, 1),
           "forward_ms": round(1000 * after["h5serve_inference_seconds_sum"] / batches, 1)}
    print(f"  {result.scenario:40s} c={concurrency:<3d} {result.rps:7.1f} req/s  p50 "
          f"{result.p50_ms:7.1f}  p99 {result.p99_ms:7.1f} ms  failures {result.failures}  "
          f"batch {run['mean_batch']} ({run['forward_ms']} ms)", flush=True)
    return run


def end_to_end(name: str, model: Path, image: Path, seconds: float,
               folder: Path) -> dict[str, Any]:
    """Part B for one model: a cold auto start, then TensorFlow and auto side by side."""
    caches = {runtime: tempfile.mkdtemp(prefix=f"cache-{runtime}.", dir=folder)
              for runtime in SIDE_BY_SIDE}
    env = {"MAX_REQUESTS": "0", "READY_TIMEOUT": "280"}
    out: dict[str, Any] = {"ready_s": {}, "problems": {}, "served": {}, "rss_mb": {}, "runs": []}
    with stack(model, WORKERS, RUNTIME="auto", RUNTIME_CACHE_DIR=caches["auto"], **env) as cold:
        out["ready_s"]["auto (cold)"] = cold["ready_s"]
        out["problems"]["auto (cold)"] = _problems(cold)
    kinds = [(*MULTIPART, image, 1), (*MULTIPART, image, 32)]
    with ExitStack() as stacks:
        servers = {runtime: stacks.enter_context(stack(
            model, WORKERS, RUNTIME=runtime, RUNTIME_CACHE_DIR=caches[runtime], **env))
            for runtime in SIDE_BY_SIDE}
        for runtime, server in servers.items():
            out["ready_s"][runtime] = server["ready_s"]
            described = requests.get(f"{server['app']}/model", timeout=10).json()["runtime"]
            out["served"][runtime] = {"runtime": described["name"], "why": described["why"],
                                      "candidates": described["candidates"]}
        if name == "fashion_mnist":
            meta = requests.get(f"{servers['auto']['app']}/v2/models/fashion_mnist",
                                timeout=10).json()
            path, body, content_type, _ = bodies(folder, meta["inputs"][0]["name"])["v2-fp32"]
            kinds.append(("v2-fp32", path, content_type, body, 32))
        for turn, (kind, path, content_type, body, concurrency) in enumerate(kinds):
            order = list(servers.items())
            for runtime, server in order[::-1] if turn % 2 else order:
                out["runs"].append(_timed(server, path, body, content_type, concurrency,
                                          seconds, {"model": name, "runtime": runtime,
                                                    "kind": kind}))
        for runtime, server in servers.items():
            master = int(str(server["master"]))
            out["rss_mb"][runtime] = [round(rss_mb(pid)) for pid in worker_pids(master)]
            out["problems"][runtime] = _problems(server)
    return out


def _run(model: dict[str, Any], runtime: str, kind: str, concurrency: int) -> dict[str, Any]:
    return next(r for r in model["runs"] if (r["runtime"], r["kind"], r["concurrency"])
                == (runtime, kind, concurrency))


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 2) if b else None


def ratios(report: dict[str, Any]) -> list[tuple[str, object, str]]:
    """The issue's acceptance figures: (figure, measured, target)."""
    rows: list[tuple[str, object, str]] = []
    load, inproc = report["end_to_end"], report["in_process"]
    if "mobilenet_v2" in load:
        m = load["mobilenet_v2"]
        rows.append(("MobileNetV2 /predictlabel c=32 req/s, auto/tensorflow", _ratio(
            _run(m, "auto", "predictlabel", 32)["rps"],
            _run(m, "tensorflow", "predictlabel", 32)["rps"]), ">= 2.0"))
        rows.append(("MobileNetV2 /predictlabel c=1 p50, auto/tensorflow", _ratio(
            _run(m, "auto", "predictlabel", 1)["p50_ms"],
            _run(m, "tensorflow", "predictlabel", 1)["p50_ms"]), "<= 0.4"))
    if "fashion_mnist" in load:
        f = load["fashion_mnist"]
        rows.append(("bundled V2 FP32 c=32 req/s, auto/tensorflow", _ratio(
            _run(f, "auto", "v2-fp32", 32)["rps"], _run(f, "tensorflow", "v2-fp32", 32)["rps"]),
            ">= 1.25"))
    if "efficientnet_b0" in inproc:
        e = inproc["efficientnet_b0"]
        measured = {n: r["images_per_s"] for n, r in e["runtimes"].items() if "images_per_s" in r}
        fastest = max(measured, key=lambda n: measured[n]["1"] * measured[n]["16"])
        served = load.get("efficientnet_b0", {}).get("served", {}).get("auto", {})
        rows.append(("EfficientNetB0 auto pick, in process / served (fastest in part A)",
                     f"{e['auto']['runtime']} / {served.get('runtime', '-')} ({fastest})",
                     "tensorflow if TF measures fastest"))
    return rows


def markdown(report: dict[str, Any]) -> str:
    """The tables and the acceptance figures, as bench/README.md shows them."""
    lines = [f"{report['cpus']} CPUs. Part A: `Classifier.predict`, {report['threads']} threads, "
             f"{report['timing_seconds']:g} s per runtime and batch size (best of 3 rounds "
             "in turns); decode = decode + preprocess of the request image.", "",
             "| model | runtime | batch 1 img/s | batch 16 img/s | b16 vs TF | parity with Keras |",
             "|---|---|---:|---:|---:|---|"]
    for name, model in report["in_process"].items():
        tf16 = model["runtimes"]["tensorflow"]["images_per_s"]["16"]
        for runtime in RUNTIMES:
            row = model["runtimes"][runtime]
            if "failure" in row:
                lines.append(f"| {name} | {runtime} | - | - | - | {row['failure'][:110]} |")
                continue
            rate = row["images_per_s"]
            lines.append(f"| {name} | {runtime} | {rate['1']:.0f} | {rate['16']:.0f} | "
                         f"{rate['16'] / tf16:.2f}x | {row['parity']} |")
        lines.append(f"| {name} | **auto picks {model['auto']['runtime']}** | | | | "
                     f"{model['auto']['why']}; decode {model['decode_ms']} ms |")
    lines += ["", f"Part B: nginx TLS -> gunicorn gevent, {WORKERS} workers, "
              f"{report['seconds']:g} s per run, TensorFlow and auto taken in turns.", "",
              "| model | request | c | TF req/s | auto req/s | auto/TF | TF p50 / p99 ms | "
              "auto p50 / p99 ms | failures TF / auto | mean batch TF / auto |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, model in report["end_to_end"].items():
        for run in (r for r in model["runs"] if r["runtime"] == "tensorflow"):
            auto = _run(model, "auto", run["kind"], run["concurrency"])
            lines.append(f"| {name} | {run['kind']} | {run['concurrency']} | {run['rps']:.0f} | "
                         f"{auto['rps']:.0f} | {_ratio(auto['rps'], run['rps'])}x | "
                         f"{run['p50_ms']:.1f} / {run['p99_ms']:.1f} | {auto['p50_ms']:.1f} / "
                         f"{auto['p99_ms']:.1f} | {run['failures']} / {auto['failures']} | "
                         f"{run['mean_batch']} / {auto['mean_batch']} |")
    lines += ["", "| model | auto serves | start to ready s: auto cold / warm / TF | "
              "worker RSS MB: TF | auto |", "|---|---|---:|---:|---:|"]
    for name, model in report["end_to_end"].items():
        ready = model["ready_s"]
        lines.append(f"| {name} | {model['served']['auto']['runtime']} | {ready['auto (cold)']} / "
                     f"{ready['auto']} / {ready['tensorflow']} | "
                     f"{' / '.join(map(str, model['rss_mb']['tensorflow']))} | "
                     f"{' / '.join(map(str, model['rss_mb']['auto']))} |")
    lines += ["", "| figure | measured | target |", "|---|---:|---|",
              *(f"| {figure} | {value} | {target} |" for figure, value, target in ratios(report))]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description="CPU runtimes per model, in process and "
                                     "end to end")
    parser.add_argument("--seconds", type=float, default=10, help="per wrk run (part B)")
    parser.add_argument("--timing-seconds", type=float, default=2,
                        help="per runtime and batch size (part A)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="intra-op threads in part A (default: every core)")
    parser.add_argument("--models", nargs="*", choices=MODELS, default=list(MODELS))
    parser.add_argument("--skip-load", action="store_true", help="part A only")
    args = parser.parse_args()
    if not shutil.which("wrk") and not args.skip_load:
        sys.exit("wrk not found: apt-get install wrk (make bench-runtimes installs it)")
    folder = Path(tempfile.mkdtemp(prefix="h5serve-runtimes."))
    try:
        report = measure_all(args, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    text = markdown(report)
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "runtimes.md").write_text(text + "\n")
    (out / "runtimes.json").write_text(json.dumps(report, indent=1, default=str) + "\n")
    print("\n" + text)
    for name, model in report["end_to_end"].items():
        for where, lines in model["problems"].items():
            for line in lines:
                print(f"log {name} {where}: {line[:300]}")
    return 0


def measure_all(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    """Part A in a child process, then part B model by model; models and caches in folder."""
    files = {name: path for name, path in model_files(folder).items() if name in args.models}
    web_photo = folder / "photo_640x480.jpg"
    web_photo.write_bytes(jpeg_bytes(photo(640, 480)))
    images = {name: FASHION_IMAGE if name == "fashion_mnist" else web_photo for name in files}
    report: dict[str, Any] = {"cpus": os.cpu_count(), "threads": args.threads,
                              "timing_seconds": args.timing_seconds, "seconds": args.seconds}
    print(f"part A: in process, {args.threads} threads (models in {folder})", flush=True)
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as child:
        report["in_process"] = child.submit(in_process, files, images, args.timing_seconds,
                                            args.threads, folder / "inprocess-cache").result()
    report["end_to_end"] = {}
    for name, path in files.items() if not args.skip_load else ():
        print(f"part B: {name}", flush=True)
        report["end_to_end"][name] = end_to_end(name, path, images[name], args.seconds, folder)
    return report


if __name__ == "__main__":
    sys.exit(main())
