"""Prometheus metrics at /metrics, aggregated over all gunicorn workers.

gunicorn.conf.py points PROMETHEUS_MULTIPROC_DIR at a fresh directory before any worker
starts; prometheus_client then keeps each worker's values in files there and /metrics
(answered by any worker) sums them. Without that variable (tests, `flask run`) the
process's own registry is used. No Flask here: the runtime's batcher reports through
`observe_batch`, and the app factory's request hooks through `record_request`.
"""

from __future__ import annotations

import os
from typing import Any

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


def record_model(info: dict[str, Any], load_seconds: float) -> None:
    """Record, once per worker, which model it serves and how long loading it took."""
    MODEL_LOAD_SECONDS.set(load_seconds)
    MODEL_INFO.labels(info["name"], info["file"], info["versions"]["keras_library"],
                      info["versions"]["tensorflow"]).set(1)


def record_request(endpoint: str, method: str, status: int, seconds: float | None) -> None:
    """Count one answered request; `seconds` is None when its start was not seen."""
    REQUESTS.labels(endpoint, method, str(status)).inc()
    if seconds is not None:
        REQUEST_SECONDS.labels(endpoint).observe(seconds)


def exposition() -> tuple[bytes, str]:
    """The Prometheus text exposition and its content type, summed over workers."""
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return generate_latest(registry), CONTENT_TYPE_LATEST
