"""Inference events: each sampled request and its answer as CloudEvents to an HTTP sink
(EVENTS_URL), the way KServe's logger sends them, so its consumers work unchanged.

Types `org.kubeflow.serving.inference.request` / `.response`, `id` the request's ID, the
model as the `inferenceservicename`, `modelname` and `modelversion` extensions; data in the
Open Inference Protocol's JSON shapes. An upload is sent as its sha256, size and what it
decoded to, unless EVENTS_INCLUDE_IMAGES (then base64).

A request only appends to a bounded queue per worker (the sampling and the appending: no
encoding, no I/O); one sender, a greenlet under gevent (its socket waits yield to the hub)
or a thread, has each built in a real thread and posts them, retrying with backoff. A
sink that stays down or slow never slows answers: what does not fit the queue, and what
is still waiting when the retries give up, is dropped and counted in
h5serve_events_dropped_total; the log says so once a minute, not per event.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import random
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from typing import Any

from app import metrics
from app.config import Settings
from app.runtime.dataplane import Call
from app.runtime.dataplane.types import InferRequest, InferResponse
from app.runtime.offload import ThreadRunner

log = logging.getLogger(__name__)
CAPACITY = 1000  # events waiting per worker; beyond this they are dropped
# What waiting events may keep alive per worker (uploads, model-input batches, pixels):
# a thousand 15 MiB uploads behind a sink that is down would otherwise take gigabytes.
HELD_BYTES = 64 * 2**20
RETRIES = (0.1, 0.4, 1.6)  # seconds before each retry of an event the sink refused
TYPE = "org.kubeflow.serving.inference."


class InferenceEvents:
    """Watches every answer (a DataPlane watcher) and sends a sample of them."""

    def __init__(self, settings: Settings, rng: random.Random | None = None) -> None:
        self.url = settings.EVENTS_URL
        self.sample = settings.EVENTS_SAMPLE
        self.kinds = ("request", "response") if settings.EVENTS_INCLUDE == "both" \
            else (settings.EVENTS_INCLUDE,)
        self.images = settings.EVENTS_INCLUDE_IMAGES
        self.structured = settings.EVENTS_MODE == "structured"
        self._rng = rng or random.Random()
        # (kind, request id, request, answer, bytes let go when this one leaves)
        self._queue: deque[tuple[str, str, InferRequest, InferResponse, int]] = deque()
        self._held = 0  # bytes the queued events keep alive
        self._lost, self._told = 0, None  # dropped since the log last said so, and when
        # Under gevent the sender is a greenlet: an event with millions of values would
        # hold the hub while it is encoded. A real thread lets the hub run between GIL turns.
        self._build = ThreadRunner(1)
        threading.Thread(target=self._send_forever, name="inference-events",
                         daemon=True).start()

    def __call__(self, call: Call, request: InferRequest, answer: InferResponse) -> None:
        """After an answer: queue its events if sampled, or count them lost."""
        if self._rng.random() >= self.sample:
            return
        weight = _weight(request, answer)
        if len(self._queue) + len(self.kinds) > CAPACITY or self._held + weight > HELD_BYTES:
            self._drop(len(self.kinds))
            return
        request_id = call.origin.request_id()
        self._held += weight  # let go with the request's last event (they leave in order)
        self._queue.extend((kind, request_id, request, answer,
                            weight if kind == self.kinds[-1] else 0) for kind in self.kinds)

    def _send_forever(self) -> None:
        while True:
            if not self._queue:
                time.sleep(0.02)
                continue
            kind, request_id, request, answer, weight = self._queue.popleft()
            self._held -= weight
            try:
                message = self._build(self._message, kind, request_id, request, answer)
            except Exception:  # one event that cannot be built must not end the sender
                log.exception("inference event %s of request %s could not be built",
                              kind, request_id)
                self._drop(1)
                continue
            finally:
                del request, answer  # the message holds what the sink needs
            for pause in (*RETRIES, None):
                if self._post(message):
                    break
                if pause is None:  # the sink is down: what waits would only wait longer
                    self._drop(1 + self._drain())
                else:
                    time.sleep(pause)

    def _message(self, kind: str, request_id: str, request: InferRequest,
                 answer: InferResponse) -> Any:
        from cloudevents.core.bindings.http import to_binary_event, to_structured_event
        from cloudevents.core.v1.event import CloudEvent

        attributes = {"type": TYPE + kind, "id": request_id,
                      "source": f"/h5serve/models/{answer.model_name}",
                      "datacontenttype": "application/json",
                      "inferenceservicename": answer.model_name, "component": "predictor",
                      "endpoint": "default", "modelname": answer.model_name,
                      "modelversion": str(answer.model_version)}
        data = self._request(request_id, request, answer) if kind == "request" \
            else _response(request_id, answer)
        event = CloudEvent(attributes, data)
        return to_structured_event(event) if self.structured else to_binary_event(event)

    def _request(self, request_id: str, request: InferRequest, answer: InferResponse
                 ) -> dict[str, Any]:
        """The request as V2 JSON: numeric rows as sent, uploads as their digest and what
        they decoded to (or their bytes, base64, with EVENTS_INCLUDE_IMAGES)."""
        inputs, row = [], 0
        for block in request.inputs:
            rows = len(block.data)
            tensor: dict[str, Any] = {"name": block.name or "input", "datatype": block.datatype,
                                      "shape": list(block.shape)}
            if isinstance(block.data, list):
                decoded = answer.images[row:row + rows]
                tensor["data"] = [base64.b64encode(b).decode() for b in block.data] \
                    if self.images else [{"sha256": hashlib.sha256(b).hexdigest(),
                                          "size": len(b), **(d.facts if d else {})}
                                         for b, d in zip(block.data, decoded, strict=True)]
            else:
                tensor["data"] = block.data.ravel().tolist()
            inputs.append(tensor)
            row += rows
        batch = answer.batch
        return {"id": request_id, "inputs": inputs, "parameters": {
            "model_input": {"shape": list(batch.shape), "mean": round(float(batch.mean()), 6),
                            "std": round(float(batch.std()), 6)}}}

    def _post(self, message: Any) -> bool:
        request = urllib.request.Request(self.url, message.body, message.headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=5) as reply:
                return 200 <= reply.status < 300
        except (OSError, urllib.error.URLError):
            return False

    def _drain(self) -> int:
        dropped = 0
        while self._queue:
            self._held -= self._queue.popleft()[-1]
            dropped += 1
        return dropped

    def _drop(self, count: int) -> None:
        """Count lost events; say so in the log at most once a minute."""
        metrics.EVENTS_DROPPED.inc(count)
        self._lost += count
        if self._told is None or time.monotonic() - self._told >= 60:
            log.warning("inference events: %d dropped since the last report (sink %s down, "
                        "slow, or the queue of %d full)", self._lost, self.url, CAPACITY)
            self._lost, self._told = 0, time.monotonic()


def _weight(request: InferRequest, answer: InferResponse) -> int:
    """The bytes a request's waiting events keep alive: what was sent (upload bytes or
    rows), the model-input batch and the decoded pixels."""
    sent = sum(sum(map(len, block.data)) if isinstance(block.data, list)
               else block.data.nbytes for block in request.inputs)
    pixels = sum(image.pixels.nbytes for image in answer.images if image is not None)
    return sent + answer.batch.nbytes + pixels


def _response(request_id: str, answer: InferResponse) -> dict[str, Any]:
    """The answer as V2 JSON: the outputs the client asked for."""
    return {"model_name": answer.model_name, "model_version": str(answer.model_version),
            "id": request_id, "outputs": [
                {"name": out.name, "datatype": out.datatype, "shape": list(out.shape),
                 "data": out.data.ravel().tolist() if hasattr(out.data, "ravel")
                 else list(out.data)} for out in answer.outputs]}
