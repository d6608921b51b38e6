"""Following requests and watching answers: request IDs, JSON logs, the prediction log,
model-quality metrics."""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import re
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import requests
from flask import Flask
from helpers import served
from servers import ROOT, VENV_BIN, free_port, stop, wait_ready

from app import create_app
from app.config import DEFAULT_MODEL_PATH
from app.runtime import prediction_log as prediction_log_module
from app.runtime.imaging import open_image
from app.runtime.prediction_log import PredictionLog
from app.runtime.spec import ImageSpec

EXAMPLE = ROOT / "static" / "examples" / "bag.png"
LABELS = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
          "Sneaker", "Bag", "Ankle boot")


def _upload() -> dict[str, tuple[io.BytesIO, str]]:
    return {"image": (io.BytesIO(EXAMPLE.read_bytes()), "bag.png")}


@pytest.mark.parametrize(("offered", "kept"), [("ticket-4711.a:b_c", True), ("bad id!", False),
                                               ("x" * 129, False), ("", False)])
def test_a_request_id_is_kept_or_made_and_echoed(fashion_app: Flask, offered: str,
                                                 kept: bool) -> None:
    response = fashion_app.test_client().post("/predictlabel", data=_upload(),
                                              headers={"X-Request-ID": offered})
    rid = response.headers["X-Request-ID"]
    assert rid == offered if kept else re.fullmatch(r"[0-9a-f]{32}", rid)


def test_error_bodies_carry_the_request_id(fashion_app: Flask) -> None:
    client = fashion_app.test_client()
    seed = client.post("/predictlabel", data={"image": (io.BytesIO(b"no"), "x.png")},
                       headers={"X-Request-ID": "r-1"})
    assert seed.get_json()["error"]["request_id"] == "r-1"
    v2 = client.post("/v2/models/nope/infer", json={}, headers={"X-Request-ID": "r-2"})
    assert v2.get_json()["request_id"] == "r-2"


def test_json_logs_name_the_request(monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    app = create_app({"MODEL_PATH": DEFAULT_MODEL_PATH, "LOG_FORMAT": "json"})
    try:
        def explode(*_: object, **__: object) -> None:
            raise RuntimeError("boom")

        monkeypatch.setattr(served(app), "classify", explode)
        response = app.test_client().post("/predictlabel", data=_upload(),
                                          headers={"X-Request-ID": "trace-me"})
        assert response.status_code == 500
        out = capsys.readouterr().out.splitlines()
        entries = [json.loads(line) for line in out if line.strip()]  # every line parses
        failure = [e for e in entries if e["message"].startswith("unhandled error")]
        assert failure and failure[0]["request_id"] == "trace-me"
        assert failure[0]["level"] == "ERROR" and "RuntimeError: boom" in failure[0]["exception"]
        assert any(e["logger"] == "app.runtime.classifier" for e in entries)
    finally:
        create_app({"MODEL_PATH": DEFAULT_MODEL_PATH})  # text logs again for the others


@pytest.mark.slow  # a live gunicorn
def test_gunicorn_with_json_logs_writes_only_json_to_stdout(tmp_path: Path) -> None:
    """The access log and the app's log as JSON lines on stdout; TensorFlow's C++ lines
    and gunicorn's own on stderr."""
    port = free_port()
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    env = {**os.environ, "BIND": f"127.0.0.1:{port}", "WORKERS": "1", "LOG_FORMAT": "json",
           "MODEL_PATH": str(DEFAULT_MODEL_PATH), "GRACEFUL_TIMEOUT": "5"}
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen([str(VENV_BIN / "gunicorn"), "-c", "gunicorn.conf.py",
                                    "app:create_app()"], cwd=ROOT, env=env, stdout=stdout,
                                   stderr=stderr)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url + "/readyz", process=process)
        answer = requests.post(url + "/predictlabel", files={"image": EXAMPLE.read_bytes()},
                               headers={"X-Request-ID": "json-1", "User-Agent": 'q"uote'},
                               timeout=30)
        assert answer.status_code == 200
        time.sleep(0.3)
    finally:
        stop(process)
    entries = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    access = [e for e in entries if e.get("logger") == "access" and e["path"] == "/predictlabel"]
    assert access, entries
    assert {k: access[0][k] for k in ("request_id", "method", "status", "model", "version",
                                      "user_agent", "key")} == {
        "request_id": "json-1", "method": "POST", "status": 200, "model": "fashion_mnist",
        "version": "1", "user_agent": 'q"uote', "key": None}
    assert access[0]["duration_ms"] > 0 and access[0]["client"] == "127.0.0.1"
    assert any(e.get("logger") == "app.runtime.classifier" for e in entries)
    assert "oneDNN" not in out.read_text() and "Booting worker" in err.read_text()


def _rows(n: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    rows = rng.random((n, 10))
    return (rows / rows.sum(axis=1, keepdims=True)).astype(np.float32)


def _wait_for_lines(path: Path, count: int) -> list[dict[str, object]]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lines = path.read_text().splitlines() if path.exists() else []
        if len(lines) >= count:
            break
        time.sleep(0.05)
    return [json.loads(line) for line in lines]


def test_the_prediction_log_samples_at_its_rate(tmp_path: Path) -> None:
    path = tmp_path / "predictions.jsonl"
    log = PredictionLog(str(path), 0.3, request_id=lambda: "rid-7", rng=random.Random(5))
    for row in _rows(400):
        log.record("m", 2, LABELS, row[None], 0.6, input_shape=(1, 28, 28, 1))
    replay = random.Random(5)
    expected = sum(replay.random() < 0.3 for _ in range(400))
    lines = _wait_for_lines(path, expected)
    assert len(lines) == expected and 60 < expected < 180  # binomial(400, 0.3): 120 +- 9
    line = lines[0]
    assert set(line) == {"time", "request_id", "model", "version", "label", "probability",
                         "top3", "input", "sha256"}
    assert (line["request_id"], line["model"], line["version"]) == ("rid-7", "m", 2)
    assert line["top3"][0]["label"] == line["label"]
    assert line["input"] == {"tensor_shape": [1, 28, 28, 1]}


def test_an_upload_is_described_and_hashed_never_copied(tmp_path: Path) -> None:
    path = tmp_path / "predictions.jsonl"
    data = EXAMPLE.read_bytes()
    PredictionLog(str(path), 1.0, request_id=lambda: "r").record(
        "m", 1, LABELS, _rows(1), 0.6,
        image=open_image(data, ImageSpec(28, 28, 1, "hwc"), max_pixels=10_000))
    line = _wait_for_lines(path, 1)[0]
    assert line["input"] == {"width": 28, "height": 28, "format": "PNG", "mode": "L",
                             "bytes": len(data)}
    assert line["sha256"] == hashlib.sha256(data).hexdigest()
    assert len(path.read_bytes()) < 1000, "no image bytes in the log"


def test_off_writes_nothing_and_a_full_buffer_drops_and_counts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from app import metrics

    PredictionLog("off", 1.0, request_id=lambda: "r").record("m", 1, LABELS, _rows(5), 0.6)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(prediction_log_module, "CAPACITY", 0)  # the writer never keeps up
    before = metrics.PREDICTION_LOG_DROPPED._value.get()
    PredictionLog(str(tmp_path / "p"), 1.0, request_id=lambda: "r").record(
        "m", 1, LABELS, _rows(7), 0.6)
    assert metrics.PREDICTION_LOG_DROPPED._value.get() - before == 7


def test_quality_metrics_count_labels_confidence_and_unsure_answers(
        make_app, tmp_path: Path) -> None:
    model = tmp_path / "fashion_mnist.h5"
    shutil.copy(DEFAULT_MODEL_PATH, model)
    card = json.loads(DEFAULT_MODEL_PATH.with_suffix(".json").read_text())
    model.with_suffix(".json").write_text(json.dumps({**card, "low_confidence": 1.0}))
    app = make_app(model, PREDICTION_LOG=str(tmp_path / "p.jsonl"))  # every answer "unsure"
    client = app.test_client()
    assert client.post("/predictlabel", data=_upload()).status_code == 200
    noise = np.random.default_rng(1).integers(0, 255, (1, 784)).tolist()
    client.post("/predict", json={"input": noise})
    text = client.get("/metrics").get_data(as_text=True)
    labels = 'model="fashion_mnist",version="1"'
    assert re.search(r'h5serve_predicted_label_total\{label="Bag",' + labels + r'\} [1-9]', text)
    assert f"h5serve_prediction_confidence_count{{{labels}}}" in text
    assert re.search(rf"h5serve_low_confidence_total\{{{labels}\}} [1-9]", text)
    lines = _wait_for_lines(tmp_path / "p.jsonl", 2)
    assert lines[0]["label"] == "Bag"
