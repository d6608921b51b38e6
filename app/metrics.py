"""Prometheus metrics at /metrics, aggregated over all gunicorn workers.

gunicorn.conf.py points PROMETHEUS_MULTIPROC_DIR at a fresh directory before any worker
starts; prometheus_client then keeps each worker's values in files there and /metrics
(answered by any worker) sums them. Without that variable (tests, `flask run`) the
process's own registry is used. No Flask here: the runtime's batcher reports through
`observe_batch`, and the app factory's request hooks through `record_request`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
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

_MODEL = ["model", "version"]
REQUESTS = Counter("h5serve_requests_total",
                   "Requests by endpoint (for gRPC the method's full name), method (grpc for "
                   "gRPC), status (for gRPC the HTTP status the same answer gets over HTTP), "
                   "protocol (http or grpc), and the model and version that answered (empty "
                   "when none did: health, metrics, an unknown model)",
                   ["endpoint", "method", "status", "protocol", *_MODEL])
REQUEST_SECONDS = Histogram("h5serve_request_duration_seconds",
                            "Time to answer a request, by endpoint and by the model and version "
                            "that answered", ["endpoint", "protocol", *_MODEL],
                            buckets=_LATENCY_BUCKETS)
_RUNTIME = [*_MODEL, "runtime"]  # the runtime serving the version (app.runtime.engines)
BATCH_SIZE = Histogram("h5serve_batch_size", "Rows per forward pass of the model, by the "
                       "runtime that ran it", _RUNTIME,
                       buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024))
QUEUE_WAIT_SECONDS = Histogram("h5serve_queue_wait_seconds",
                               "Time a request waited for the model", _MODEL,
                               buckets=_LATENCY_BUCKETS)
INFERENCE_SECONDS = Histogram("h5serve_inference_seconds", "Forward pass time per batch, "
                              "by the runtime that ran it", _RUNTIME, buckets=_LATENCY_BUCKETS)
MODEL_LOAD_SECONDS = Gauge("h5serve_model_load_seconds",
                           "Time each worker took to load and warm up the version", _MODEL,
                           multiprocess_mode="liveall")
MODEL_INFO = Gauge("h5serve_model_info",
                   "Model versions: 1 while served, 0 once unloaded",
                   ["model", "version", "file", "keras", "tensorflow", "runtime"],
                   multiprocess_mode="livemax")
MODEL_LOAD_FAILURES = Counter("h5serve_model_load_failures_total",
                              "Model versions refused: unreadable, wrong shape, failed "
                              "self-check or no room (MAX_MODELS)", _MODEL)
WORKER_STARTS = Counter("h5serve_worker_starts_total",
                        "Worker processes that started the app (dead workers' counts stay)")
PREDICTION_CONFIDENCE = Histogram("h5serve_prediction_confidence",
                                  "Top-1 probability of each prediction", _MODEL,
                                  buckets=(.1, .2, .3, .4, .5, .6, .7, .8, .9, .95, .99, 1))
PREDICTED_LABELS = Counter("h5serve_predicted_label_total", "Predictions by top-1 label",
                           [*_MODEL, "label"])
LOW_CONFIDENCE = Counter("h5serve_low_confidence_total",
                         "Predictions whose top-1 probability is under the card's "
                         "low_confidence", _MODEL)
PREDICTION_LOG_DROPPED = Counter("h5serve_prediction_log_dropped_total",
                                 "Prediction log lines dropped: the writer fell behind")
TRACE_SPANS_DROPPED = Counter("h5serve_trace_spans_dropped_total",
                              "Trace spans not exported: the queue was full (a slow or absent "
                              "collector) or the collector refused them")
EVENTS_DROPPED = Counter("h5serve_events_dropped_total",
                         "Inference events not delivered: the queue was full or the sink "
                         "did not take them after retries")
DRIFT_PSI = Gauge("h5serve_drift_psi", "Population stability index of a statistic of a "
                  "model version's recent rows against its reference (app.runtime.drift)",
                  [*_MODEL, "statistic"], multiprocess_mode="livemax")
_INFO_LABELS: dict[tuple[str, str], tuple[str, ...]] = {}
_REQUEST_SERIES: dict[tuple[object, ...], tuple[Any, Any]] = {}
# (model, version) -> its confidence histogram, label counters by label, unsure counter
_PREDICTION_SERIES: dict[tuple[str, str], tuple[Any, dict[str, Any], Any]] = {}


def batch_observer(model: str, version: int,
                   runtime: str) -> Callable[[int, list[float], float], None]:
    """What one version's micro-batcher calls after each forward pass."""
    labels = (model, str(version))
    batch, inference, queue = (BATCH_SIZE.labels(*labels, runtime),
                               INFERENCE_SECONDS.labels(*labels, runtime),
                               QUEUE_WAIT_SECONDS.labels(*labels))

    def observe(rows: int, waits: list[float], seconds: float) -> None:
        batch.observe(rows)
        inference.observe(seconds)
        for wait in waits:
            queue.observe(wait)

    return observe


def record_model(info: dict[str, Any], load_seconds: float) -> None:
    """Record, once per worker and version, what it serves and how long loading took."""
    key = (info["name"], str(info["version"]))
    MODEL_LOAD_SECONDS.labels(*key).set(load_seconds)
    _INFO_LABELS[key] = (*key, info["file"], info["versions"]["keras_library"],
                         info["versions"]["tensorflow"], info["runtime"]["name"])
    MODEL_INFO.labels(*_INFO_LABELS[key]).set(1)
    # Every series at 0 from the start: rate() and ratios need a point before traffic.
    PREDICTION_CONFIDENCE.labels(*key)
    LOW_CONFIDENCE.labels(*key)
    for label in info["labels"]:
        PREDICTED_LABELS.labels(*key, label)


def record_predictions(model: str, version: int, labels: tuple[str, ...],
                       probabilities: Any, low_confidence: float) -> None:
    """Every answered row: its confidence, its label, and whether it was unsure."""
    key = (model, str(version))
    series = _PREDICTION_SERIES.get(key)
    if series is None:  # labels() per row was a third of this function's time
        series = _PREDICTION_SERIES[key] = (PREDICTION_CONFIDENCE.labels(*key), {},
                                            LOW_CONFIDENCE.labels(*key))
    confidence, by_label, low = series
    unsure = 0
    for row in probabilities:
        top = int(row.argmax())
        score = float(row[top])
        confidence.observe(score)
        counter = by_label.get(labels[top])
        if counter is None:
            counter = by_label[labels[top]] = PREDICTED_LABELS.labels(*key, labels[top])
        counter.inc()
        unsure += score < low_confidence
    if unsure:
        low.inc(unsure)


def record_unload(model: str, version: int) -> None:
    labels = _INFO_LABELS.pop((model, str(version)), None)
    if labels is not None:
        MODEL_INFO.labels(*labels).set(0)


def record_load_failure(model: str, version: int) -> None:
    MODEL_LOAD_FAILURES.labels(model, str(version)).inc()


def record_request(endpoint: str, method: str, status: int, seconds: float | None,
                   protocol: str = "http", model: str = "", version: int | None = None) -> None:
    """Count one answered request; `seconds` is None when its start was not seen. `model`
    is a served one or "" (never a name from the URL), so the series are bounded by the
    endpoints, statuses and the versions a worker has served (a roll-out adds series;
    Prometheus keeps old ones until the worker restarts)."""
    key = (endpoint, method, status, protocol, model, version)
    series = _REQUEST_SERIES.get(key)
    if series is None:  # labels() costs ~2 us a call; a request path runs this every time
        served = (model, "" if version is None else str(version))
        series = _REQUEST_SERIES[key] = (
            REQUESTS.labels(endpoint, method, str(status), protocol, *served),
            REQUEST_SECONDS.labels(endpoint, protocol, *served))
    series[0].inc()
    if seconds is not None:
        series[1].observe(seconds)


def exposition() -> tuple[bytes, str]:
    """The Prometheus text exposition and its content type, summed over workers."""
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return generate_latest(registry), CONTENT_TYPE_LATEST
