"""The JSON API on the toy brightness model: shapes of answers and every error case."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from flask.testing import FlaskClient
from helpers import encode, served, upload
from PIL import Image

WHITE = encode(Image.new("L", (28, 28), 240))
BLACK = encode(Image.new("L", (28, 28), 10))


def test_predictlabel_answers_in_the_seed_format(client: FlaskClient) -> None:
    response = upload(client, WHITE)
    assert response.status_code == 200
    body = response.get_json()
    assert list(body) == ["success", "most_probable_label", "predictions"]
    assert body["success"] is True
    assert body["most_probable_label"] == "bright"
    assert [p["label"] for p in body["predictions"]] == ["dark", "bright"]
    assert all(isinstance(p["probability"], float) for p in body["predictions"])
    assert sum(p["probability"] for p in body["predictions"]) == pytest.approx(1, abs=1e-5)
    assert b'"probability":' in response.data  # numbers, not strings


@pytest.mark.parametrize("field", ["image", "file"])
def test_predictlabel_accepts_both_field_names(client: FlaskClient, field: str) -> None:
    response = upload(client, BLACK, field=field)
    assert response.status_code == 200
    assert response.get_json()["most_probable_label"] == "dark"


@pytest.mark.parametrize("row_shape", [(784,), (28, 28), (28, 28, 1)])
def test_predict_returns_one_probability_list_per_row(client: FlaskClient, row_shape) -> None:
    rows = [np.full(row_shape, v).tolist() for v in (0, 255, 200, 30)]
    response = client.post("/predict", json={"input": rows})
    assert response.status_code == 200
    body = response.get_json()
    assert isinstance(body, list) and len(body) == 4
    assert [int(np.argmax(p)) for p in body] == [0, 1, 1, 0]
    assert all(len(p) == 2 and sum(p) == pytest.approx(1, abs=1e-5) for p in body)


def test_health_ready_and_model_description(client: FlaskClient) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.get_json()["status"] == "ready"
    model = client.get("/model").get_json()
    assert model["name"] == "bright"
    assert model["labels"] == ["dark", "bright"]
    assert model["input"]["model_input_shape"] == [None, 28, 28, 1]
    assert model["input"]["scale"] == "unit"
    assert {"tensorflow", "keras_library", "numpy"} <= set(model["versions"])


def _error(response) -> tuple[int, str]:
    body = response.get_json()
    assert response.mimetype == "application/json", response.data[:200]
    assert body["success"] is False
    assert body["error"]["message"], "an error must say what to fix"
    assert "Traceback" not in response.get_data(as_text=True)
    return response.status_code, body["error"]["code"]


def _multipart(client: FlaskClient, fields: dict, **kwargs):
    return client.post("/predictlabel", data=fields, content_type="multipart/form-data", **kwargs)


@pytest.mark.parametrize(("send", "expected"), [
    (lambda c: _multipart(c, {"other": (io.BytesIO(WHITE), "a.png")}), (400, "missing_file")),
    (lambda c: _multipart(c, {"image": "not a file"}), (400, "missing_file")),
    (lambda c: _multipart(c, {"image": [(io.BytesIO(WHITE), "a.png"),
                                        (io.BytesIO(BLACK), "b.png")]}), (400, "too_many_files")),
    (lambda c: upload(c, b""), (400, "empty_file")),
    (lambda c: upload(c, b"hello, this is text"), (400, "invalid_image")),
    (lambda c: upload(c, WHITE[: len(WHITE) // 2]), (400, "invalid_image")),
    (lambda c: upload(c, b"%PDF-1.4\n%\xe2\xe3\n1 0 obj\n"), (400, "invalid_image")),
    (lambda c: upload(c, encode(Image.new("L", (2100, 2100)))), (400, "image_too_large")),
    (lambda c: upload(c, b"x" * 250_000), (413, "payload_too_large")),
    (lambda c: c.post("/predictlabel", data=WHITE, content_type="image/png"),
     (415, "unsupported_media_type")),
    (lambda c: c.post("/predictlabel", json={"image": "x"}), (415, "unsupported_media_type")),
    (lambda c: c.get("/predictlabel"), (405, "method_not_allowed")),
    (lambda c: c.post("/predict", data="{not json", content_type="application/json"),
     (400, "invalid_json")),
    (lambda c: c.post("/predict", data="[" * 100_000, content_type="application/json"),
     (400, "invalid_json")),
    (lambda c: c.post("/predict", data="a=1", content_type="application/x-www-form-urlencoded"),
     (415, "unsupported_media_type")),
    (lambda c: c.post("/predict", json=[[0] * 784]), (400, "missing_field")),
    (lambda c: c.post("/predict", json={"inputs": [[0] * 784]}), (400, "missing_field")),
    (lambda c: c.post("/predict", json={"input": []}), (422, "empty_batch")),
    (lambda c: c.post("/predict", json={"input": "pixels"}), (422, "invalid_shape")),
    (lambda c: c.post("/predict", json={"input": [[0] * 783]}), (422, "invalid_shape")),
    (lambda c: c.post("/predict", json={"input": [[0] * 784, [0] * 10]}), (422, "invalid_shape")),
    (lambda c: c.post("/predict", json={"input": [[]]}), (422, "invalid_shape")),  # schemathesis
    (lambda c: c.post("/predict", json={"input": [[[]]]}), (422, "invalid_shape")),
    (lambda c: c.post("/predict", json={"input": [["a"] * 784]}), (422, "invalid_value")),
    (lambda c: c.post("/predict", json={"input": [[True] * 784]}), (422, "invalid_value")),
    (lambda c: c.post("/predict", json={"input": [[None] * 784]}), (422, "invalid_value")),
    (lambda c: c.post("/predict", data='{"input": [[NaN' + ", 0" * 783 + "]]}",
                      content_type="application/json"), (422, "invalid_value")),
    (lambda c: c.post("/predict", data='{"input": [[Infinity' + ", 0" * 783 + "]]}",
                      content_type="application/json"), (422, "invalid_value")),
    (lambda c: c.post("/predict", data='{"input": [[1' + "0" * 400 + ", 0" * 783 + "]]}",
                      content_type="application/json"), (422, "invalid_value")),
    (lambda c: c.post("/predict", json={"input": [[300] * 784]}), (422, "invalid_value")),
    (lambda c: c.post("/predict", json={"input": [[-1] * 784]}), (422, "invalid_value")),
    (lambda c: c.post("/predict", json={"input": [[0] * 784] * 9}), (413, "too_many_rows")),
    (lambda c: c.get("/v1/nothing-here"), (404, "not_found")),
    (lambda c: c.delete("/model"), (405, "method_not_allowed")),
], ids=lambda v: v[1] if isinstance(v, tuple) else None)
def test_client_mistakes_get_json_errors(client: FlaskClient, send, expected) -> None:
    assert _error(send(client)) == expected
    assert upload(client, WHITE).status_code == 200, "the service keeps working afterwards"


def test_405_names_the_allowed_methods(client: FlaskClient) -> None:
    response = client.get("/predict")
    assert response.status_code == 405
    assert "POST" in response.headers["Allow"]


def test_unexpected_failures_are_500_json_without_traceback(
        app, client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    service = served(app)

    def explode(*_: object, **__: object) -> None:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(service, "classify", explode)
    response = upload(client, WHITE)
    assert _error(response) == (500, "internal_error")
    assert "secret internal detail" not in response.get_data(as_text=True)


def test_cors_headers_on_json_endpoints(client: FlaskClient) -> None:
    preflight = client.options("/predictlabel", headers={
        "Origin": "https://example.org", "Access-Control-Request-Method": "POST"})
    assert preflight.headers.get("Access-Control-Allow-Origin") == "*"
    response = upload(client, WHITE, headers={"Origin": "https://example.org"})
    assert response.headers.get("Access-Control-Allow-Origin") == "*"
    page = client.get("/", headers={"Origin": "https://example.org"})
    assert "Access-Control-Allow-Origin" not in page.headers
    for path in ("/v2", "/v2/models/bright", "/v1/models/bright", "/models"):  # bare /v2 too
        answer = client.get(path, headers={"Origin": "https://example.org"})
        assert answer.headers.get("Access-Control-Allow-Origin") == "*", path


def test_cors_restricted_to_configured_origins(make_app, bright_model) -> None:
    client = make_app(bright_model, CORS_ORIGINS="https://ok.example").test_client()
    allowed = upload(client, WHITE, headers={"Origin": "https://ok.example"})
    assert allowed.headers.get("Access-Control-Allow-Origin") == "https://ok.example"
    denied = upload(client, WHITE, headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in denied.headers


def test_proxy_fix_trusts_one_hop_only_when_configured(make_app, bright_model) -> None:
    headers = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https",
               "X-Forwarded-Host": "models.example"}
    trusted = make_app(bright_model, TRUST_PROXY=True)

    @trusted.get("/_probe")
    def probe():
        from flask import request, url_for
        return {"addr": request.remote_addr, "url": url_for("api.healthz", _external=True)}

    body = trusted.test_client().get("/_probe", headers=headers).get_json()
    assert body == {"addr": "203.0.113.9", "url": "https://models.example/healthz"}


def test_requests_never_write_to_disk(make_app, bright_model,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Werkzeug spools uploads over 500 kB to temporary files; ours stay in memory."""
    from werkzeug import formparser

    def no_disk(*args, **kwargs):
        raise AssertionError("a request body was spooled to disk")

    monkeypatch.setattr(formparser, "SpooledTemporaryFile", no_disk)
    monkeypatch.setattr(formparser, "TemporaryFile", no_disk, raising=False)
    big = encode(np.random.default_rng(0).integers(0, 255, (900, 900), dtype=np.uint8))
    assert len(big) > 600_000
    response = upload(make_app(bright_model).test_client(), big)
    assert response.status_code == 200, json.dumps(response.get_json())


def test_readyz_is_503_when_the_model_cannot_serve(app, client: FlaskClient,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    batcher = type(served(app).batcher)
    monkeypatch.setattr(batcher, "alive", property(lambda self: False))
    response = client.get("/readyz")
    assert _error(response) == (503, "not_ready")
    assert response.headers["Retry-After"] == "5"
    assert client.get("/healthz").status_code == 200, "alive, just not ready"


def test_a_full_queue_is_503_with_retry_after_on_every_door(
        app, client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """The runtime's Overloaded (no HTTP in it) becomes each protocol's own 503."""
    from app.runtime.errors import Overloaded

    def full(rows: np.ndarray, *_: object) -> np.ndarray:
        raise Overloaded("The server is at capacity; retry in a moment.", retry_after_s=1)

    monkeypatch.setattr(served(app).batcher, "submit", full)
    seed = upload(client, WHITE)
    assert _error(seed) == (503, "overloaded")
    assert seed.headers["Retry-After"] == "1"
    v2 = client.post("/v2/models/bright/infer", json={"inputs": [
        {"name": served(app).classifier.input_name, "datatype": "UINT8",
         "shape": [1, 28, 28, 1], "data": [0] * 784}]})
    assert (v2.status_code, v2.get_json()) == (
        503, {"error": "The server is at capacity; retry in a moment.",
              "request_id": v2.headers["X-Request-ID"]})
    assert v2.headers["Retry-After"] == "1"
    page = client.post("/", data={"image": (io.BytesIO(WHITE), "w.png")},
                       content_type="multipart/form-data")
    assert page.status_code == 503 and "at capacity" in page.get_data(as_text=True)


def test_sizes_are_written_in_mebibytes(make_app, bright_model) -> None:
    """One way to write the body limit: the app's 413 and the page say "15 MiB"."""
    client = make_app(bright_model).test_client()
    too_big = upload(client, b"x" * (15 * 1024 * 1024 + 1))
    assert too_big.get_json()["error"]["message"] == (
        "Request body is too large: the limit is 15 MiB.")
    page = client.get("/").get_data(as_text=True)
    assert "up to 15 MiB" in page and "15728640 bytes" not in page and "MB<" not in page


def test_metrics_name_their_charset_once(client: FlaskClient) -> None:
    content_type = client.get("/metrics").headers["Content-Type"]
    assert content_type.startswith("text/plain") and content_type.count("charset") == 1
