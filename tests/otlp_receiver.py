"""An OTLP/HTTP trace receiver for tests: what a collector would get, decoded with the
opentelemetry-proto package, on a free loopback port."""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


class Receiver:
    """Spans received so far, as (span, service name) pairs."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.spans: list[tuple[Any, str]] = []

    def wait_for(self, found: Callable[[list[Any]], bool], timeout: float = 15) -> list[Any]:
        """The spans, once `found(spans)` holds."""
        deadline = time.monotonic() + timeout
        while not found(spans := [span for span, _ in self.spans]):
            assert time.monotonic() < deadline, [s.name for s in spans]
            time.sleep(0.05)
        return spans


@contextmanager
def otlp_receiver() -> Iterator[Receiver]:
    receiver = Receiver("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            message = ExportTraceServiceRequest.FromString(body)
            for resource in message.resource_spans:
                service = next((a.value.string_value for a in resource.resource.attributes
                                if a.key == "service.name"), "")
                receiver.spans += [(span, service) for scope in resource.scope_spans
                                   for span in scope.spans]
            reply = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
