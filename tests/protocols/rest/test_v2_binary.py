"""Triton's binary tensor data extension: tritonclient.http with its defaults, and hostile
binary bodies (sizes that disagree with shapes, huge declared lengths, leftovers)."""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator

import numpy as np
import pytest
import tritonclient.http as triton
from helpers import encode
from servers import gunicorn

from app.config import DEFAULT_MODEL_PATH

INFER = "/v2/models/fashion_mnist/infer"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[triton.InferenceServerClient]:
    log = tmp_path_factory.mktemp("binary") / "gunicorn.log"
    with gunicorn(DEFAULT_MODEL_PATH, log) as (url, _):
        yield triton.InferenceServerClient(url=url.removeprefix("http://"))


def _fp32(images: np.ndarray) -> np.ndarray:
    return (images[:, :, :, None] / 255.0).astype(np.float32)


def test_tritonclient_defaults_are_binary_both_ways_and_bit_for_bit(client,
                                                                    fashion_test_set) -> None:
    images, labels = fashion_test_set
    batch = _fp32(images[:6])
    binary = triton.InferInput("image", list(batch.shape), "FP32")
    binary.set_data_from_numpy(batch)  # binary_data=True: the client's default
    result = client.infer("fashion_mnist", [binary])  # no outputs named: binary answer
    assert result.get_response()["outputs"][0]["parameters"] == {"binary_data_size": 6 * 10 * 4}
    as_binary = result.as_numpy("probabilities")
    as_json_input = triton.InferInput("image", list(batch.shape), "FP32")
    as_json_input.set_data_from_numpy(batch, binary_data=False)
    as_json = client.infer("fashion_mnist", [as_json_input], outputs=[
        triton.InferRequestedOutput("probabilities", binary_data=False)]).as_numpy(
        "probabilities")
    assert as_binary.dtype == np.float32 and as_binary.shape == (6, 10)
    np.testing.assert_array_equal(as_binary, as_json)  # each request served alone
    assert (as_binary.argmax(1) == labels[:6]).mean() >= 0.8


def test_uint8_pixels_and_raw_image_files_as_binary(client, fashion_test_set) -> None:
    images, labels = fashion_test_set
    pixels = images[:4, :, :, None].astype(np.uint8)
    tensor = triton.InferInput("image", list(pixels.shape), "UINT8")
    tensor.set_data_from_numpy(pixels)
    from_pixels = client.infer("fashion_mnist", [tensor]).as_numpy("probabilities")
    files = np.array([encode(im) for im in images[:4]], dtype=np.object_)  # raw PNG bytes
    tensor = triton.InferInput("image", [4], "BYTES")
    tensor.set_data_from_numpy(files)
    from_files = client.infer("fashion_mnist", [tensor]).as_numpy("probabilities")
    np.testing.assert_allclose(from_files, from_pixels, atol=1e-6)
    assert list(from_files.argmax(1)) == list(labels[:4])


def test_classification_output_comes_binary_as_bytes(client, fashion_test_set) -> None:
    images, labels = fashion_test_set
    tensor = triton.InferInput("image", [1, 28, 28, 1], "FP32")
    tensor.set_data_from_numpy(_fp32(images[:1]))
    top = triton.InferRequestedOutput("probabilities", class_count=3)  # binary by default
    answer = client.infer("fashion_mnist", [tensor], outputs=[top]).as_numpy("probabilities")
    assert answer.shape == (1, 3)
    score, index, _ = answer[0, 0].decode().split(":")
    assert int(index) == labels[0] and 0 < float(score) <= 1


def test_metadata_and_readiness_with_the_client_defaults(client) -> None:
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("fashion_mnist")
    assert "binary_tensor_data" in client.get_server_metadata()["extensions"]


def _body(header: dict[str, object], binary: bytes) -> tuple[bytes, dict[str, str]]:
    text = json.dumps(header).encode()
    return text + binary, {"Inference-Header-Content-Length": str(len(text))}


def _fp32_input(size: int | object, shape: list[int] | None = None) -> dict[str, object]:
    return {"inputs": [{"name": "image", "datatype": "FP32", "shape": shape or [1, 28, 28, 1],
                        "parameters": {"binary_data_size": size}}]}


PIXELS = np.zeros(784, "<f4").tobytes()
PNG = encode(np.zeros((28, 28), np.uint8))
HOSTILE = {
    "header length not a number": (json.dumps(_fp32_input(3136)).encode() + PIXELS,
                                   {"Inference-Header-Content-Length": "abc"},
                                   "Inference-Header-Content-Length"),
    "header length zero": (PIXELS, {"Inference-Header-Content-Length": "0"},
                           "Inference-Header-Content-Length"),
    "header length past the body": (PIXELS, {"Inference-Header-Content-Length": "999999"},
                                    "Inference-Header-Content-Length"),
    "header length mid-json": (json.dumps(_fp32_input(3136)).encode() + PIXELS,
                               {"Inference-Header-Content-Length": "10"}, "not valid JSON"),
    "size larger than the data": (*_body(_fp32_input(4000), PIXELS), "bytes of binary data"),
    "huge declared size": (*_body(_fp32_input(2**40), PIXELS), "bytes of binary data"),
    "negative size": (*_body(_fp32_input(-4), PIXELS), "non-negative integer"),
    "size not a number": (*_body(_fp32_input("3136"), PIXELS), "non-negative integer"),
    "size disagrees with shape": (*_body(_fp32_input(3132), PIXELS[:3132]), "needs 3136"),
    "leftover bytes": (*_body(_fp32_input(3136), PIXELS + b"\0" * 8), "belong to no input"),
    "binary size without binary data": (json.dumps(_fp32_input(3136)).encode(), {},
                                        "no binary data"),
    "truncated BYTES element": (*_body({"inputs": [{
        "name": "image", "datatype": "BYTES", "shape": [1],
        "parameters": {"binary_data_size": 4 + 10}}]}, struct.pack("<I", 5000) + PNG[:10]),
        "only 10 are left"),
    "BYTES count short of the shape": (*_body({"inputs": [{
        "name": "image", "datatype": "BYTES", "shape": [2],
        "parameters": {"binary_data_size": 4 + len(PNG)}}]},
        struct.pack("<I", len(PNG)) + PNG), "ends before element 1"),
    "BYTES junk after the elements": (*_body({"inputs": [{
        "name": "image", "datatype": "BYTES", "shape": [1],
        "parameters": {"binary_data_size": 4 + len(PNG) + 3}}]},
        struct.pack("<I", len(PNG)) + PNG + b"abc"), "after the 1 BYTES elements"),
    "binary_data_output not a boolean": (*_body({**_fp32_input(3136),
                                                 "parameters": {"binary_data_output": "yes"}},
                                                PIXELS), "true or false"),
    "shared memory": (json.dumps({"inputs": [{
        "name": "image", "datatype": "FP32", "shape": [1, 28, 28, 1],
        "parameters": {"shared_memory_region": "r", "shared_memory_byte_size": 3136}}]}).encode(),
        {}, "shared-memory extensions are not supported"),
    "NaN in binary FP32": (*_body(_fp32_input(3136), np.full(784, np.nan, "<f4").tobytes()),
                           "NaN"),
}


@pytest.mark.parametrize("case", HOSTILE, ids=list(HOSTILE))
def test_hostile_binary_bodies_get_a_400_naming_the_problem(fashion_app, case: str) -> None:
    body, headers, fragment = HOSTILE[case]
    client = fashion_app.test_client()
    answer = client.post(INFER, data=body, headers=headers)
    assert answer.status_code == 400, answer.get_data()[:300]
    assert fragment in answer.get_json()["error"]
    assert client.get("/v2/health/ready").status_code == 200


def test_a_binary_answer_is_framed_as_triton_frames_it(fashion_app) -> None:
    body, headers = _body({**_fp32_input(3136), "parameters": {"binary_data_output": True}},
                          PIXELS)
    answer = fashion_app.test_client().post(INFER, data=body, headers=headers)
    size = int(answer.headers["Inference-Header-Content-Length"])
    header, data = json.loads(answer.data[:size]), answer.data[size:]
    assert answer.headers["Content-Type"] == "application/octet-stream"
    assert header["outputs"][0]["parameters"]["binary_data_size"] == len(data) == 40
    assert "data" not in header["outputs"][0]
    assert np.frombuffer(data, "<f4").sum() == pytest.approx(1, abs=1e-5)
    per_output = {**_fp32_input(3136), "parameters": {"binary_data_output": True},
                  "outputs": [{"name": "probabilities", "parameters": {"binary_data": False}}]}
    body, headers = _body(per_output, PIXELS)
    plain = fashion_app.test_client().post(INFER, data=body, headers=headers)
    assert "Inference-Header-Content-Length" not in plain.headers, "the output's own say wins"
    assert len(plain.get_json()["outputs"][0]["data"]) == 10


def test_binary_answers_need_no_binary_request(fashion_app) -> None:
    """A JSON request may ask for a binary answer, as tritonclient does by default."""
    request = {"inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 28, 28, 1],
                           "data": [0.0] * 784}], "parameters": {"binary_data_output": True}}
    answer = fashion_app.test_client().post(INFER, json=request)
    assert int(answer.headers["Inference-Header-Content-Length"]) < len(answer.data)

