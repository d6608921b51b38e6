"""TF Serving REST and Open Inference Protocol answers, in the formats their docs give.

TF Serving's REST API documentation: status `{"model_version_status": [{"version",
"state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}`;
`{"instances": [...]}` -> `{"predictions": [...]}`, `{"inputs": ...}` -> `{"outputs": ...}`;
binary values as `{"b64": "..."}`; errors `{"error": "..."}`.
"""

from __future__ import annotations

import base64

import numpy as np
import pytest
from helpers import encode

LABELS = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
          "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
V1 = "/v1/models/fashion_mnist"


@pytest.fixture(scope="module")
def client(fashion_app):
    return fashion_app.test_client()


@pytest.fixture(scope="module")
def samples(fashion_test_set):
    images, labels = fashion_test_set
    return images[:20], labels[:20]


def _b64(image: np.ndarray) -> str:
    return base64.b64encode(encode(image)).decode()


def test_tfserving_status_and_metadata(client) -> None:
    assert client.get(V1).get_json() == {"model_version_status": [{
        "version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}
    meta = client.get(V1 + "/metadata").get_json()
    assert meta["model_spec"] == {"name": "fashion_mnist", "signature_name": "", "version": "1"}
    signature = meta["metadata"]["signature_def"]["signature_def"]["serving_default"]
    (name, spec), = signature["inputs"].items()
    assert name == "image" and spec["dtype"] == "DT_FLOAT"
    assert [d["size"] for d in spec["tensor_shape"]["dim"]] == ["-1", "28", "28", "1"]
    assert signature["outputs"]["probabilities"]["tensor_shape"]["dim"][1]["size"] == "10"
    assert signature["method_name"] == "tensorflow/serving/predict"


def test_tfserving_instances_as_tensors_and_b64_images(client, samples) -> None:
    images, labels = samples
    tensors = (images[..., None] / 255.0).tolist()  # the model's own input: scaled
    by_tensor = client.post(V1 + ":predict", json={"instances": tensors}).get_json()
    by_image = client.post(V1 + ":predict", json={
        "instances": [{"b64": _b64(im)} for im in images]}).get_json()
    named = client.post(V1 + ":predict", json={
        "instances": [{"image": {"b64": _b64(im)}} for im in images[:3]]}).get_json()
    a, b = np.array(by_tensor["predictions"]), np.array(by_image["predictions"])
    assert a.shape == (20, 10)
    np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(np.array(named["predictions"]), b[:3], atol=1e-5)
    assert (a.argmax(1) == labels).mean() >= 0.85


def test_tfserving_columnar_inputs(client, samples) -> None:
    images, _ = samples
    tensors = (images[:4, :, :, None] / 255.0).tolist()
    plain = client.post(V1 + ":predict", json={"inputs": tensors}).get_json()
    named = client.post(V1 + ":predict", json={"inputs": {"image": tensors}}).get_json()
    assert list(plain) == ["outputs"] and np.array(plain["outputs"]).shape == (4, 10)
    np.testing.assert_allclose(plain["outputs"], named["outputs"], atol=1e-6)


@pytest.mark.parametrize(("path", "body", "status", "fragment"), [
    ("/v1/models/other:predict", {"instances": [[0]]}, 404, "Servable not found"),
    (V1 + ":predict", {"instances": [[0, 1]]}, 400, "shape [28, 28, 1]"),
    (V1 + ":predict", {"instances": [[0]], "inputs": [[0]]}, 400, "either"),
    (V1 + ":predict", {"signature_name": "x"}, 400, "either"),
    (V1 + ":predict", {"instances": []}, 400, "non-empty"),
    (V1 + ":predict", {"instances": [{"b64": "%%%"}]}, 400, "not valid base64"),
    (V1 + ":predict", {"instances": [{"b64": base64.b64encode(b"text").decode()}]}, 400,
     "not an image"),
    (V1 + ":predict", {"inputs": {"pixels": [[0]]}}, 400, "named 'image'"),
])
def test_tfserving_errors(client, path, body, status, fragment) -> None:
    response = client.post(path, json=body)
    assert response.status_code == status
    assert list(response.get_json()) == ["error", "request_id"]
    assert fragment in response.get_json()["error"]


def test_v2_uint8_and_classification_extension(client, samples) -> None:
    images, labels = samples
    response = client.post("/v2/models/fashion_mnist/infer", json={
        "id": "42", "inputs": [{"name": "image", "datatype": "UINT8", "shape": [5, 28, 28, 1],
                                "data": images[:5].ravel().tolist()}],
        "outputs": [{"name": "probabilities", "parameters": {"classification": 3}}]})
    body = response.get_json()
    assert response.status_code == 200 and body["id"] == "42"
    (output,) = body["outputs"]
    assert output["datatype"] == "BYTES" and output["shape"] == [5, 3]
    top = [output["data"][3 * i].split(":") for i in range(5)]
    assert [int(index) for _, index, _ in top] == [int(y) for y in labels[:5]]
    assert all(label == LABELS[int(index)] for _, index, label in top)


@pytest.mark.parametrize(("tensor", "fragment"), [
    ({"name": "x", "datatype": "FP32", "shape": [1], "data": [0]}, "unexpected input"),
    ({"name": "image", "datatype": "INT64", "shape": [1, 28, 28, 1], "data": [0] * 784},
     "not supported"),
    ({"name": "image", "datatype": "FP32", "shape": [1, 28, 28, 1], "data": [0] * 10},
     "needs 784"),
    ({"name": "image", "datatype": "UINT8", "shape": [1, 28, 28, 1], "data": [300] * 784},
     "0-255"),
    ({"name": "image", "datatype": "BYTES", "shape": [1], "data": ["!!"]}, "base64"),
])
def test_v2_errors(client, tensor, fragment) -> None:
    response = client.post("/v2/models/fashion_mnist/infer", json={"inputs": [tensor]})
    assert response.status_code == 400
    assert fragment in response.get_json()["error"]
    unknown = client.get("/v2/models/other")
    assert unknown.status_code == 404 and "unknown model" in unknown.get_json()["error"]


def test_openapi_lists_exactly_the_json_routes(fashion_app, client) -> None:
    spec = client.get("/openapi.json").get_json()
    documented = {(path, method.upper()) for path, ops in spec["paths"].items() for method in ops}
    routed = set()
    for rule in fashion_app.url_map.iter_rules():
        if rule.endpoint.split(".")[0] not in {"api", "explain", "tfserving", "v2",
                                               "v2_repository"}:
            continue
        path = rule.rule.replace("<", "{").replace(">", "}")
        routed |= {(path, m) for m in rule.methods - {"HEAD", "OPTIONS"}}
    assert documented == routed
    page = client.get("/docs", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "/v2/models/{name}/infer" in page.get_data(as_text=True)


@pytest.mark.parametrize("path, body, what", [
    (V1 + ":predict", {"instances": [[0]] * 1025}, "instances"),
    (V1 + ":predict", {"inputs": [[0]] * 1025}, "inputs"),
    ("/v2/models/fashion_mnist/infer", {"inputs": [{
        "name": "image", "datatype": "FP32", "shape": [1025, 28, 28, 1], "data": []}]},
     "input 'image'"),
])
def test_protocols_refuse_more_rows_than_max_predict_rows(client, path, body, what) -> None:
    response = client.post(path, json=body)
    assert response.status_code == 413
    assert response.get_json() == {
        "error": f"{what} has 1025 rows; the limit is 1024 per request.",
        "request_id": response.headers["X-Request-ID"]}
