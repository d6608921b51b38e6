"""Inference events to a real HTTP sink (EVENTS_URL), from gunicorn on loopback (not
through nginx: the events leave the app, whatever door the request came in by).

Every sampled request gives exactly one request and one response CloudEvent that the
`cloudevents` package parses, with KServe's logger's types and the request's ID; with
the sink gone, requests still all succeed and every lost event is counted.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from cloudevents.core.bindings.http import HTTPMessage, from_http_event
from servers import ROOT, gunicorn

from app.config import DEFAULT_MODEL_PATH

pytestmark = [pytest.mark.slow]

EXAMPLE = (ROOT / "static" / "examples" / "ankle_boot.png").read_bytes()


class Sink:
    """An HTTP sink on a free loopback port, keeping each event it is sent."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                sink.events.append(from_http_event(HTTPMessage(dict(self.headers), body)))
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/events"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Sink]]:
    sink = Sink()
    log = tmp_path_factory.mktemp("events") / "gunicorn.log"
    try:
        with gunicorn(DEFAULT_MODEL_PATH, log, EVENTS_URL=sink.url, RUNTIME="tensorflow",
                      MAX_QUEUE_SIZE="256") as (url, _):
            yield url, sink
    finally:
        sink.stop()


def _wait(condition: Any, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.05)


def _dropped(url: str) -> float:
    found = re.search(r"^h5serve_events_dropped_total (\S+)$",
                      requests.get(url + "/metrics", timeout=10).text, re.M)
    return float(found.group(1)) if found else 0.0


def test_each_request_gives_one_request_and_one_response_event(served) -> None:
    url, sink = served
    ids = []
    for _ in range(3):
        reply = requests.post(url + "/predictlabel", files={"image": EXAMPLE}, timeout=30)
        ids.append(reply.headers["X-Request-ID"])
    reply = requests.post(url + "/v2/models/fashion_mnist/infer", timeout=30, json={
        "inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 28, 28, 1],
                    "data": [0.5] * 784}], "outputs": [{"name": "probabilities",
                                                        "parameters": {"classification": 2}}]})
    ids.append(reply.headers["X-Request-ID"])
    _wait(lambda: len(sink.events) >= 2 * len(ids))
    time.sleep(0.3)  # and no more
    assert sorted((e.get_id(), e.get_type()) for e in sink.events) == sorted(
        (i, f"org.kubeflow.serving.inference.{kind}") for i in ids
        for kind in ("request", "response"))
    first = {e.get_type().rsplit(".", 1)[1]: e for e in sink.events if e.get_id() == ids[0]}
    request, response = first["request"], first["response"]
    upload = request.get_data()["inputs"][0]
    assert upload["datatype"] == "BYTES" and upload["data"][0]["size"] == len(EXAMPLE)
    assert len(upload["data"][0]["sha256"]) == 64 and upload["data"][0]["format"] == "PNG"
    assert request.get_extension("modelname") == "fashion_mnist"
    assert request.get_extension("modelversion") == "1"
    assert response.get_data()["outputs"][0]["shape"] == [1, 10]
    tensor = next(e for e in sink.events if e.get_id() == ids[-1]
                  and e.get_type().endswith("request")).get_data()["inputs"][0]
    assert tensor["datatype"] == "FP32" and len(tensor["data"]) == 784
    ranked = next(e for e in sink.events if e.get_id() == ids[-1]
                  and e.get_type().endswith("response")).get_data()["outputs"][0]
    assert ranked["datatype"] == "BYTES" and ranked["shape"] == [1, 2]
    sink.events.clear()


def test_a_stopped_sink_slows_nothing_and_every_lost_event_is_counted(served) -> None:
    url, sink = served
    sink.stop()
    before = _dropped(url)

    def predict(_: int) -> int:
        with requests.Session() as session:
            return session.post(url + "/predictlabel", files={"image": EXAMPLE},
                                timeout=30).status_code

    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(predict, range(1000)))
    took = time.monotonic() - started
    assert statuses == [200] * 1000
    _wait(lambda: _dropped(url) - before == 2000 - len(sink.events))
    assert sink.events == [] and took < 60, took


def test_event_settings_are_checked_at_start() -> None:
    from app.config import Settings

    for wrong in ({"EVENTS_SAMPLE": "2"}, {"EVENTS_MODE": "json"}, {"EVENTS_INCLUDE": "all"}):
        with pytest.raises(ValueError, match=next(iter(wrong))):
            Settings.load(wrong, environ={})



def test_waiting_events_keep_at_most_held_bytes_alive(monkeypatch: pytest.MonkeyPatch) -> None:
    """Behind a sink that does not answer, big uploads are dropped (and counted) once the
    queued ones hold HELD_BYTES, not only when CAPACITY events wait."""
    import numpy as np

    from app import metrics
    from app.config import Settings
    from app.runtime import events
    from app.runtime.dataplane import Call
    from app.runtime.dataplane.calls import Origin
    from app.runtime.dataplane.types import InferInput, InferRequest, InferResponse

    stuck = threading.Event()
    monkeypatch.setattr(events.InferenceEvents, "_post", lambda self, message: stuck.wait())
    monkeypatch.setattr(events, "HELD_BYTES", 10 * 2**20)
    sender = events.InferenceEvents(Settings.load({"EVENTS_URL": "http://127.0.0.1:9/"},
                                                  environ={}))
    upload = InferRequest(inputs=(InferInput("BYTES", (1,), [bytes(3 * 2**20)]),))
    answer = InferResponse("m", 1, ("a", "b"), np.zeros((1, 2), np.float32), (),
                           np.zeros((1, 4), np.float32), (None,))
    dropped = metrics.EVENTS_DROPPED._value.get()
    for _ in range(5):  # 3 MiB each: three requests' events wait (9 MiB), two are dropped
        sender(Call(None, Origin(request_id=lambda: "r")), upload, answer)  # type: ignore[arg-type]
        time.sleep(0.05)
    try:
        assert len(sender._queue) == 5  # the first request event is with the stuck sender
        assert 9 * 2**20 < sender._held <= events.HELD_BYTES
        assert metrics.EVENTS_DROPPED._value.get() - dropped == 4
    finally:
        stuck.set()
