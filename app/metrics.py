"""Prometheus metrics at /metrics, aggregated over all gunicorn workers.

gunicorn.conf.py points PROMETHEUS_MULTIPROC_DIR at a fresh directory before any worker
starts; prometheus_client then keeps each worker's values in files there and /metrics
(answered by any worker) sums them. Without that variable (tests, `flask run`) the
process's own registry is used.
"""

from __future__ import annotations

import os
import time

from flask import Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from app.classifier import Classifier

_LATENCY_BUCKETS = (.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10)

REQUESTS = Counter("h5serve_requests_total", "HTTP requests by endpoint, method and status",
                   ["endpoint", "method", "status"])
REQUEST_SECONDS = Histogram("h5serve_request_duration_seconds",
                            "Time to answer a request, by endpoint", ["endpoint"],
                            buckets=_LATENCY_BUCKETS)
BATCH_SIZE = Histogram("h5serve_batch_size", "Rows per forward pass of the model",
                       buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024))
QUEUE_WAIT_SECONDS = Histogram("h5serve_queue_wait_seconds",
                               "Time a request waited for the model", buckets=_LATENCY_BUCKETS)
INFERENCE_SECONDS = Histogram("h5serve_inference_seconds", "Forward pass time per batch",
                              buckets=_LATENCY_BUCKETS)
MODEL_LOAD_SECONDS = Gauge("h5serve_model_load_seconds",
                           "Time each worker took to load and warm up the model",
                           multiprocess_mode="liveall")
MODEL_INFO = Gauge("h5serve_model_info", "The model being served (value is always 1)",
                   ["name", "file", "keras", "tensorflow"], multiprocess_mode="livemax")


def observe_batch(rows: int, waits: list[float], seconds: float) -> None:
    """Called by the micro-batcher after each forward pass."""
    BATCH_SIZE.observe(rows)
    INFERENCE_SECONDS.observe(seconds)
    for wait in waits:
        QUEUE_WAIT_SECONDS.observe(wait)


def init_metrics(app: Flask, classifier: Classifier) -> None:
    """Record the model once, and every request's endpoint, status and duration."""
    info = classifier.describe()
    MODEL_LOAD_SECONDS.set(classifier.load_seconds or 0.0)
    MODEL_INFO.labels(info["name"], info["file"], info["versions"]["keras_library"],
                      info["versions"]["tensorflow"]).set(1)

    @app.before_request
    def _start_timer() -> None:
        g.metrics_started = time.perf_counter()

    @app.after_request
    def _record(response: Response) -> Response:
        endpoint = request.url_rule.rule if request.url_rule else "unmatched"
        REQUESTS.labels(endpoint, request.method, str(response.status_code)).inc()
        started = g.get("metrics_started")
        if started is not None:
            REQUEST_SECONDS.labels(endpoint).observe(time.perf_counter() - started)
        return response


def metrics_response() -> Response:
    """The Prometheus text exposition, summed over workers in multiprocess mode."""
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
