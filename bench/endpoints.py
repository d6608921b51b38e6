"""Per-endpoint cost through the real stack: req/s, p99 and worker CPU per request.

    make bench-endpoints     (or: .venv/bin/python -m bench.endpoints [--against COMMIT])

For each request kind people send (a multipart PNG to /predictlabel, pixel rows to
/predict, TF Serving :predict with a b64 image, Open Inference Protocol v2 infer with an
FP32 tensor, a BYTES image, and a binary FP32 tensor with a binary answer; and gRPC
ModelInfer, bench/grpc_load.py) it drives
scripts/stack.sh (nginx TLS -> gunicorn gevent, 2 workers) with wrk at one concurrency and
reads the workers' CPU seconds from /proc: CPU ms per request = all workers' CPU seconds
/ requests answered. With `--against COMMIT` the same run also measures that commit (a
git worktree), both stacks up at once and taken in turns, so every change is an A/B in
one run on the same machine.
"""

from __future__ import annotations

import argparse
import base64
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import numpy as np
import requests
from PIL import Image

from bench.grpc_load import run_grpc
from bench.inprocess import trivial_model
from bench.load import LoadResult, run_wrk
from bench.run import BUNDLED, FASHION_IMAGE, ROOT, stack
from tests.servers import free_port

JSON = "application/json"


Body = tuple[str, Path, str | None, str | None]


def _grpc_ports(root: Path) -> dict[str, str]:
    """gRPC through the stack's nginx, for trees that have the gRPC door."""
    if not (root / "nginx" / "grpc" / "grpc.conf.template").exists():
        return {}
    return {"GRPC_PORT": str(free_port()), "APP_GRPC_PORT": str(free_port())}


def bodies(folder: Path, input_name: str) -> dict[str, Body]:
    """Endpoint kind -> (path, body file, content type (None: a multipart upload), one more
    header)."""
    pixels = np.asarray(Image.open(FASHION_IMAGE).convert("L"))
    image = base64.b64encode(FASHION_IMAGE.read_bytes()).decode()
    unit = (pixels / 255).astype(np.float32).reshape(1, 28, 28, 1)
    documents = {
        "predict": ("/predict", {"input": [pixels.ravel().tolist()]}),
        "tfserving-b64": ("/v1/models/fashion_mnist:predict", {"instances": [{"b64": image}]}),
        "v2-fp32": ("/v2/models/fashion_mnist/infer", {"inputs": [{
            "name": input_name, "shape": list(unit.shape), "datatype": "FP32",
            "data": [float(x) for x in unit.ravel()]}]}),
        "v2-bytes": ("/v2/models/fashion_mnist/infer", {"inputs": [{
            "name": input_name, "shape": [1], "datatype": "BYTES", "data": [image]}]}),
    }
    kinds: dict[str, Body] = {"predictlabel": ("/predictlabel", FASHION_IMAGE, None, None)}
    for kind, (path, document) in documents.items():
        file = folder / f"{kind}.json"
        file.write_text(json.dumps(document))
        kinds[kind] = (path, file, JSON, None)
    header = json.dumps({"inputs": [{
        "name": input_name, "shape": list(unit.shape), "datatype": "FP32",
        "parameters": {"binary_data_size": unit.nbytes}}],
        "parameters": {"binary_data_output": True}}).encode()
    (folder / "v2-binary.bin").write_bytes(header + unit.astype("<f4").tobytes())
    kinds["v2-binary"] = ("/v2/models/fashion_mnist/infer", folder / "v2-binary.bin",
                          "application/octet-stream",
                          f"Inference-Header-Content-Length: {len(header)}")
    return kinds


@contextmanager
def worktree(commit: str) -> Iterator[Path]:
    """A checkout of `commit` beside this one, removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="h5serve-baseline.")) / "tree"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(folder), commit],
                   check=True, capture_output=True)
    try:
        yield folder
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(folder)],
                       capture_output=True)
        shutil.rmtree(folder.parent, ignore_errors=True)


def measure(trees: dict[str, Path], folder: Path, seconds: float, concurrency: int,
            model: Path | None = None, kinds: tuple[str, ...] = (), rounds: int = 1
            ) -> list[LoadResult]:
    """Every endpoint kind against the stack of every tree, all up at once and taken in
    turns (the order flipped from one kind to the next), so that drift in the machine's
    speed falls on both sides of an A/B alike; `rounds` times over, each tree's best round
    kept (another process on the machine only ever slows a round down: runs of the same
    code 8 s each differed by up to 10 %). Each tree serves its own bundled model and card
    unless `model` is given; workers are not recycled (MAX_REQUESTS=0) while measured."""
    best: dict[str, LoadResult] = {}
    with ExitStack() as stacks:
        servers = {label: stacks.enter_context(
            stack(model or root / BUNDLED.relative_to(ROOT), 2, root=root, MAX_REQUESTS="0",
                  **_grpc_ports(root)))
            for label, root in trees.items()}
        first = str(next(iter(servers.values()))["url"])
        meta = requests.get(first + "/v2/models/fashion_mnist", verify=False, timeout=10).json()
        input_name = meta.get("inputs", [{"name": "input"}])[0]["name"]  # trivial: no matter
        chosen = [(kind, how) for kind, how in bodies(folder, input_name).items()
                  if not kinds or kind in kinds]
        if not kinds or "grpc" in kinds:
            chosen.append(("grpc", ("", Path(), None, None)))
        turns = [(r, *kind) for r in range(rounds) for kind in chosen]
        for turn, (round_, kind, (path, body, content_type, header)) in enumerate(turns):
            order = list(servers.items())
            for label, server in order[::-1] if turn % 2 else order:
                url, master = str(server["url"]), int(server["master"])  # type: ignore[call-overload]
                if kind == "grpc":
                    if server["grpc"] is None:
                        continue  # a tree from before the gRPC door
                    run_grpc(str(server["grpc"]), 8, 1, "warm-up", tls=server["cert"])  # type: ignore[arg-type]
                    result = run_grpc(str(server["grpc"]), concurrency, seconds,
                                      f"{label} {kind}", master, tls=server["cert"])  # type: ignore[arg-type]
                else:
                    run_wrk(url + path, body, 8, 1, "warm-up", master,
                            content_type=content_type, header=header)
                    result = run_wrk(url + path, body, concurrency, seconds,
                                     f"{label} {kind}", master, content_type=content_type,
                                     header=header)
                print(f"  {round_ + 1}/{rounds} {result.scenario:28s} {result.rps:7.0f} req/s"
                      f"  p99 {result.p99_ms:6.1f} ms  CPU {result.cpu_per_request_ms} "
                      f"ms/req  failures {result.failures}", flush=True)
                kept = best.get(result.scenario)
                if kept is None or result.rps > kept.rps:
                    best[result.scenario] = result
    return list(best.values())


def main() -> int:
    parser = argparse.ArgumentParser(description="per-endpoint cost of h5serve")
    parser.add_argument("--seconds", type=float, default=4)
    parser.add_argument("-c", "--concurrency", type=int, default=32)
    parser.add_argument("--against", help="a commit to measure in the same run (A/B)")
    parser.add_argument("--kinds", nargs="*", help="only these endpoint kinds")
    parser.add_argument("--rounds", type=int, default=3,
                        help="turns per kind and tree, the best kept")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="h5serve-bodies."))
    trivial = trivial_model(ROOT / "bench" / "results" / "inputs" / "trivial.h5")
    with ExitStack() as opened:
        trees = {"now": ROOT}
        if args.against:
            trees = {"before": opened.enter_context(worktree(args.against)), **trees}
        runs = measure(trees, folder, args.seconds, args.concurrency,
                       kinds=tuple(args.kinds or ()), rounds=args.rounds)
        runs += measure({f"{label} ceiling": root for label, root in trees.items()}, folder,
                        args.seconds, args.concurrency, trivial, ("predictlabel",),
                        args.rounds)
    print(f"\n| endpoint (c={args.concurrency}) | req/s | p99 ms | CPU ms/req | failures |"
          + (" req/s vs before | CPU vs before |" if args.against else ""))
    print("|---|---:|---:|---:|---:|" + ("---:|---:|" if args.against else ""))
    before = {r.scenario.split(" ", 1)[1]: r for r in runs if r.scenario.startswith("before")}
    for result in (r for r in runs if r.scenario.startswith("now")):
        name = result.scenario.split(" ", 1)[1]
        row = (f"| {name} | {result.rps:.0f} | {result.p99_ms:.1f} | "
               f"{result.cpu_per_request_ms} | {result.failures} |")
        if name in before and before[name].rps:
            old = before[name]
            row += (f" {result.rps / old.rps:.2f}x ({old.rps:.0f}) | "
                    f"{old.cpu_per_request_ms} -> {result.cpu_per_request_ms} |")
        print(row)
    shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
