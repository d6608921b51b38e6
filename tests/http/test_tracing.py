"""OpenTelemetry traces through the real stack: nginx (TLS, HTTP and gRPC) in front of
gunicorn, tracing to an OTLP/HTTP receiver in this process (tests/otlp_receiver.py).

A request sent with a W3C `traceparent` must come back as one trace with that trace ID:
the request span (a child of the caller's span) and its stages, the batch linked to its
batch run, the model's name, version and runtime, and the trace ID in the response and
in the JSON access log line. Loopback only.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from otlp_receiver import Receiver, otlp_receiver
from servers import ROOT, free_port, stack_sh

pytestmark = [pytest.mark.slow]

EXAMPLE = ROOT / "static" / "examples" / "ankle_boot.png"
STAGES = ("read", "decode", "queue wait", "batch", "answer")


@dataclass
class TracedStack:
    dir: Path
    https: str
    grpc: str
    cert: str
    receiver: Receiver


@pytest.fixture(scope="module")
def traced() -> Iterator[TracedStack]:
    directory = Path(tempfile.mkdtemp(prefix="h5serve-tracing-test."))
    with otlp_receiver() as receiver:
        env = {**os.environ, "APP_PORT": str(free_port()), "HTTP_PORT": str(free_port()),
               "HTTPS_PORT": str(https := free_port()), "GRPC_PORT": str(grpc := free_port()),
               "APP_GRPC_PORT": str(free_port()), "STACK_DIR": str(directory),
               "STACK_STATE": str(directory / "state"), "VENV": sys.prefix, "WORKERS": "1",
               "GRACEFUL_TIMEOUT": "5", "LOG_FORMAT": "json", "RUNTIME": "tensorflow",
               "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "OTEL_BSP_SCHEDULE_DELAY": "50",
               "OTEL_SERVICE_NAME": "h5serve-test"}

        try:
            with stack_sh(env):
                yield TracedStack(directory, f"https://127.0.0.1:{https}",
                                  f"127.0.0.1:{grpc}", str(directory / "certs" / "fullchain.pem"),
                                  receiver)
        finally:  # after down: it reads its state there
            shutil.rmtree(directory, ignore_errors=True)


def _traceparent() -> tuple[str, str, str]:
    trace_id, parent = secrets.token_hex(16), secrets.token_hex(8)
    return f"00-{trace_id}-{parent}-01", trace_id, parent


def _one_trace(receiver: Receiver, trace_id: str) -> dict[str, Any]:
    """The spans of one trace by name (each name once), and the batch runs it links to."""
    wanted = bytes.fromhex(trace_id)

    def complete(spans: list[Any]) -> bool:
        ours = [s for s in spans if s.trace_id == wanted]
        batch = next((s for s in ours if s.name == "batch"), None)
        return ({s.name for s in ours} >= {*STAGES, "model call"} and batch is not None
                and any(s.span_id == batch.links[0].span_id for s in spans))

    spans = receiver.wait_for(complete)
    ours = [s for s in spans if s.trace_id == wanted]
    by_name = {s.name: s for s in ours}
    assert len(by_name) == len(ours), [s.name for s in ours]
    by_name["batch run"] = next(s for s in spans if s.span_id == by_name["batch"].links[0].span_id)
    return by_name


def _attributes(span: Any) -> dict[str, Any]:
    return {a.key: getattr(a.value, a.value.WhichOneof("value")) for a in span.attributes}


def _check_trace(spans: dict[str, Any], parent: str, request_name: str) -> None:
    request = spans[request_name]
    assert request.parent_span_id == bytes.fromhex(parent)
    assert request.kind == request.SPAN_KIND_SERVER
    for stage in STAGES:
        assert spans[stage].parent_span_id == request.span_id, stage
    assert spans["model call"].parent_span_id == spans["batch"].span_id
    started = [spans[stage].start_time_unix_nano for stage in STAGES]
    assert started == sorted(started), "stages run one after the other"
    assert request.start_time_unix_nano <= started[0]
    assert spans["answer"].end_time_unix_nano <= request.end_time_unix_nano
    described = _attributes(request)
    assert described["h5serve.model.name"] == "fashion_mnist"
    assert described["h5serve.model.version"] == 1
    assert described["h5serve.model.runtime"] == "tensorflow"
    assert _attributes(spans["batch"])["h5serve.batch.size"] == 1
    run = spans["batch run"]
    assert run.trace_id != request.trace_id and _attributes(run)["h5serve.batch.size"] == 1
    assert [link.span_id for link in run.links] == [request.span_id]


def test_an_upload_through_nginx_is_one_trace_continuing_the_callers(
        traced: TracedStack) -> None:
    traceparent, trace_id, parent = _traceparent()
    with EXAMPLE.open("rb") as image:
        response = requests.post(traced.https + "/predictlabel", files={"image": image},
                                 headers={"traceparent": traceparent}, verify=traced.cert,
                                 timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["X-Trace-ID"] == trace_id
    spans = _one_trace(traced.receiver, trace_id)
    _check_trace(spans, parent, "POST /predictlabel")
    assert _attributes(spans["POST /predictlabel"])["http.response.status_code"] == 200
    log = (traced.dir / "logs" / "app.log").read_text().splitlines()
    lines = [json.loads(line) for line in log if trace_id in line]
    assert any(line.get("logger") == "access" and line["trace_id"] == trace_id
               and line["path"] == "/predictlabel" for line in lines), lines


def test_a_grpc_v2_call_through_nginx_continues_the_traceparent_metadata(
        traced: TracedStack) -> None:
    import grpc
    from tritonclient.grpc import service_pb2, service_pb2_grpc

    traceparent, trace_id, parent = _traceparent()
    credentials = grpc.ssl_channel_credentials(Path(traced.cert).read_bytes())
    request = service_pb2.ModelInferRequest(model_name="fashion_mnist", inputs=[
        service_pb2.ModelInferRequest.InferInputTensor(
            name="image", datatype="BYTES", shape=[1],
            contents=service_pb2.InferTensorContents(bytes_contents=[EXAMPLE.read_bytes()]))])
    with grpc.secure_channel(traced.grpc, credentials) as channel:
        reply = service_pb2_grpc.GRPCInferenceServiceStub(channel).ModelInfer(
            request, metadata=[("traceparent", traceparent)], timeout=30)
    assert reply.model_name == "fashion_mnist"
    spans = _one_trace(traced.receiver, trace_id)
    _check_trace(spans, parent, "/inference.GRPCInferenceService/ModelInfer")


def test_requests_without_a_traceparent_start_their_own_trace(traced: TracedStack) -> None:
    response = requests.get(traced.https + "/v2/models/fashion_mnist", verify=traced.cert,
                            timeout=10)
    trace_id = response.headers["X-Trace-ID"]
    spans = traced.receiver.wait_for(
        lambda spans: any(s.trace_id == bytes.fromhex(trace_id) for s in spans))
    roots = [s.name for s in spans if s.trace_id == bytes.fromhex(trace_id)
             and not s.parent_span_id]
    assert roots == ["GET /v2/models/<name>"]


DROPS = """
import time
from app import metrics
from app.runtime import tracing
tracing.configure("http://127.0.0.1:{port}")
started = time.perf_counter()
for _ in range(20):
    tracing.RequestTrace("GET /x", {{}}).end(200)
took = time.perf_counter() - started
print(metrics.TRACE_SPANS_DROPPED._value.get(), took)
"""


def test_an_absent_collector_costs_requests_nothing_and_spans_are_counted() -> None:
    """40 spans (a request and its answer, 20 times) for a queue of 4 and a collector that
    refuses connections: 36 are dropped at once, counted, and no request waits."""
    code = DROPS.format(port=free_port())
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=60,
                            env={**os.environ, "OTEL_BSP_MAX_QUEUE_SIZE": "4",
                                 "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "4",
                                 "OTEL_EXPORTER_OTLP_TIMEOUT": "1"})
    assert result.returncode == 0, result.stderr
    dropped, took = result.stdout.split()
    assert float(dropped) >= 36 and float(took) < 0.5, result.stdout
