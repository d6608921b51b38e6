"""OpenTelemetry traces of every request, off unless OTEL_EXPORTER_OTLP_ENDPOINT is set.

A door's Call (app.runtime.dataplane.calls) opens one RequestTrace per request,
continuing a W3C `traceparent` the client (or nginx) sent. Its stages are child spans cut
one after the other on the request's own clock: `read` (the door reads and parses the
body), `decode` (decode and preprocess), `queue wait`, `batch` (linked to the batch run
that served it, which links back to every request in it) with the `model call` inside,
and `answer` (building the reply). Spans are stamped with times taken where the work
happened, so the model thread never touches a request's span, and contexts are passed
explicitly rather than through thread-locals the micro-batcher's threads do not share.

Exporting never blocks a request: the SDK's BatchSpanProcessor sends from its own thread,
and a span that finds OTEL_BSP_MAX_QUEUE_SIZE spans waiting (a slow or absent collector)
is dropped and counted in h5serve_trace_spans_dropped_total, as is a batch the exporter
could not send. The SDK reads the other standard variables itself (service name,
sampler, resource attributes, queue sizes). With tracing off, a Call costs one check.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from app import metrics

_tracer: Any = None  # an opentelemetry Tracer while tracing is on


def configure(endpoint: str) -> None:
    """Trace to the OTLP/HTTP collector at `endpoint` (nothing when it is empty)."""
    global _tracer
    if not endpoint:
        return
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    named = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": "h5serve"}
    provider = TracerProvider(resource=Resource.create(named))
    exporter = _CountingExporter(OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces"))
    limit = int(os.environ.get("OTEL_BSP_MAX_QUEUE_SIZE") or 2048)  # the SDK's default
    provider.add_span_processor(_Bounded(BatchSpanProcessor(exporter, max_queue_size=limit),
                                         exporter, limit))
    _tracer = provider.get_tracer("h5serve")


def enabled() -> bool:
    return _tracer is not None


class RequestTrace:
    """One request's span and its stages, cut one after the other."""

    def __init__(self, name: str, carrier: Mapping[str, Any], kind: str = "SERVER") -> None:
        from opentelemetry import context, trace
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        parent = TraceContextTextMapPropagator().extract(carrier)
        self.span = _tracer.start_span(name, context=parent, kind=trace.SpanKind[kind])
        self.context = trace.set_span_in_context(self.span)
        self._token = context.attach(self.context)  # log lines of this request name it
        self._mark = time.time_ns()
        self.open = True
        self.runtime = ""

    @property
    def trace_id(self) -> str:
        return format(self.span.get_span_context().trace_id, "032x")

    def describe(self, model: str, version: int, runtime: str) -> None:
        """Name the model version that answers, on the request span."""
        self.runtime = runtime
        self.span.set_attributes({"h5serve.model.name": model, "h5serve.model.version": version,
                                  "h5serve.model.runtime": runtime})

    def stage(self, name: str, **attributes: Any) -> None:
        """A child span from the end of the last stage to now."""
        now = time.time_ns()
        self._child(name, self._mark, now, attributes)
        self._mark = now

    def batch(self, run: BatchRun) -> None:
        """The request's wait for the model since the last stage, and the batch run that
        served it, with the forward pass inside."""
        self._child("queue wait", self._mark, run.started_ns, {})
        batch = self._child("batch", run.started_ns, run.ended_ns,
                            {"h5serve.batch.size": run.rows}, links=[run.context])
        self._child("model call", run.started_ns, run.ended_ns,
                    {"h5serve.model.runtime": self.runtime}, parent=batch)
        self._mark = run.ended_ns

    def end(self, status: int) -> None:
        """The `answer` stage, the request's status, and the end of its span."""
        from opentelemetry import context, trace

        if not self.open:
            return
        self.open = False
        self.stage("answer")
        self.span.set_attribute("http.response.status_code", status)
        if status >= 500:
            self.span.set_status(trace.StatusCode.ERROR)
        self.span.end(self._mark)
        context.detach(self._token)

    def _child(self, name: str, start: int, end_ns: int, attributes: Mapping[str, Any],
               links: Sequence[Any] = (), parent: Any = None) -> Any:
        from opentelemetry import trace
        from opentelemetry.trace import Link

        span = _tracer.start_span(name, context=trace.set_span_in_context(parent or self.span),
                                  attributes=attributes, links=[Link(c) for c in links],
                                  start_time=start)
        span.end(end_ns)
        return span


class BatchRun:
    """One forward pass that served several traced requests: its own root span linking to
    each of them (OpenTelemetry's convention for a batch), and in each request's trace its
    wait, its batch (linking back) and the model call. Recorded by the model's loop after
    the pass and before the requests get their rows, so their next stage starts after it."""

    def __init__(self, traces: Sequence[RequestTrace], started_ns: int, ended_ns: int,
                 rows: int) -> None:
        from opentelemetry import context
        from opentelemetry.trace import Link

        self.started_ns, self.ended_ns, self.rows = started_ns, ended_ns, rows
        span = _tracer.start_span("batch run", context=context.Context(), start_time=started_ns,
                                  links=[Link(t.span.get_span_context()) for t in traces],
                                  attributes={"h5serve.batch.size": rows,
                                              "h5serve.batch.requests": len(traces)})
        span.end(ended_ns)
        self.context = span.get_span_context()
        for trace in traces:
            trace.batch(self)


def current_trace_id() -> str:
    """The trace of the request this code runs for ("" when none, or tracing is off)."""
    if _tracer is None:
        return ""
    from opentelemetry import trace

    found = trace.get_current_span().get_span_context()
    return format(found.trace_id, "032x") if found.is_valid else ""


class _CountingExporter:
    """The OTLP exporter, counting the spans of every batch it failed to send."""

    def __init__(self, exporter: Any) -> None:
        self._exporter = exporter
        self.pending = 0
        self.lock = threading.Lock()

    def export(self, spans: Sequence[Any]) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        with self.lock:
            self.pending -= len(spans)
        result = self._exporter.export(spans)
        if result is not SpanExportResult.SUCCESS:
            metrics.TRACE_SPANS_DROPPED.inc(len(spans))
        return result

    def __getattr__(self, name: str) -> Any:  # shutdown, force_flush
        return getattr(self._exporter, name)


class _Bounded:
    """The batch processor behind a count of spans waiting: past its queue size, a span
    is dropped here and counted, not silently pushed out of the SDK's queue."""

    def __init__(self, processor: Any, exporter: _CountingExporter, limit: int) -> None:
        self._processor = processor
        self._waiting = exporter
        self._limit = limit

    def on_end(self, span: Any) -> None:
        with self._waiting.lock:
            full = self._waiting.pending >= self._limit
            if not full:
                self._waiting.pending += 1
        if full:
            metrics.TRACE_SPANS_DROPPED.inc()
        else:
            self._processor.on_end(span)

    def __getattr__(self, name: str) -> Any:  # on_start, shutdown, force_flush, ...
        return getattr(self._processor, name)
