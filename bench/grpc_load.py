"""gRPC load: KServe V2 ModelInfer (raw FP32 contents, as tritonclient.grpc sends them)
from `concurrency` calls in flight for `seconds`, with grpc.aio (wrk speaks no gRPC).

    .venv/bin/python -m bench.grpc_load TARGET [--seconds 8] [-c 32] [--tls CERT]

Bounded in time; loopback only. Reports like bench.load.run_wrk: requests, req/s, p50 and
p99, failures (any status but OK), and with `master_pid` the workers' CPU per request.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

import numpy as np

from bench.load import LoadResult, cpu_seconds, worker_pids


def infer_request(model: str = "fashion_mnist", input_name: str = "image") -> object:
    """One ModelInfer request for one 28x28 image (the ankle boot example, unit scaled)."""
    from PIL import Image
    from tritonclient.grpc import service_pb2

    image = Path(__file__).resolve().parent.parent / "static" / "examples" / "ankle_boot.png"
    pixels = (np.asarray(Image.open(image).convert("L"), np.float32) / 255)[None, :, :, None]
    return service_pb2.ModelInferRequest(model_name=model, inputs=[
        service_pb2.ModelInferRequest.InferInputTensor(name=input_name, datatype="FP32",
                                                       shape=list(pixels.shape))],
        raw_input_contents=[pixels.astype("<f4").tobytes()])


async def _drive(target: str, concurrency: int, seconds: float, tls: Path | None
                 ) -> tuple[list[float], int]:
    import grpc
    from tritonclient.grpc import service_pb2_grpc

    request = infer_request()
    latencies: list[float] = []
    failures = 0
    credentials = grpc.ssl_channel_credentials(tls.read_bytes()) if tls else None
    async with (grpc.aio.secure_channel(target, credentials) if credentials
                else grpc.aio.insecure_channel(target)) as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        deadline = time.monotonic() + seconds

        async def caller() -> None:
            nonlocal failures
            while time.monotonic() < deadline:
                started = time.perf_counter()
                try:
                    await stub.ModelInfer(request, timeout=30)
                    latencies.append(time.perf_counter() - started)
                except grpc.aio.AioRpcError:
                    failures += 1

        await asyncio.gather(*(caller() for _ in range(concurrency)))
    return latencies, failures


def run_grpc(target: str, concurrency: int, seconds: float, scenario: str,
             master_pid: int | None = None, tls: Path | None = None) -> LoadResult:
    """ModelInfer calls against `target` (host:port) for `seconds`; a LoadResult."""
    pids = worker_pids(master_pid) if master_pid else []
    before = {pid: cpu_seconds(pid) for pid in pids}
    started = time.monotonic()
    latencies, failures = asyncio.run(_drive(target, concurrency, seconds, tls))
    elapsed = time.monotonic() - started
    spent = [cpu_seconds(pid) - before[pid] for pid in pids]
    ms = np.array(latencies or [0.0]) * 1000
    return LoadResult(
        scenario=scenario, concurrency=concurrency, requests=len(latencies) + failures,
        rps=round(len(latencies) / elapsed, 1), p50_ms=float(np.percentile(ms, 50)),
        p90_ms=float(np.percentile(ms, 90)), p99_ms=float(np.percentile(ms, 99)),
        max_ms=float(ms.max()), statuses={"200": len(latencies), "error": failures},
        socket_errors=0, timeouts=0,
        worker_cpu=[round(100 * s / elapsed, 1) for s in spent], worker_cpu_s=round(sum(spent), 3))


def main() -> int:
    parser = argparse.ArgumentParser(description="gRPC ModelInfer load")
    parser.add_argument("target")
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("-c", "--concurrency", type=int, default=32)
    parser.add_argument("--tls", type=Path, help="CA certificate for a TLS target")
    args = parser.parse_args()
    result = run_grpc(args.target, args.concurrency, args.seconds, "grpc", tls=args.tls)
    print(f"{result.rps:.0f} req/s  p50 {result.p50_ms:.1f}  p99 {result.p99_ms:.1f} ms  "
          f"failures {result.failures}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
