"""gRPC in the gunicorn workers: tritonclient.grpc and TF Serving's PredictionServiceStub
with their defaults, the same answers as HTTP, errors as status codes, health, keys."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
import requests
import tensorflow as tf
import tritonclient.grpc as triton
from grpc_health.v1 import health_pb2, health_pb2_grpc
from helpers import encode
from servers import free_port, gunicorn
from tensorflow_serving.apis import (
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)
from tritonclient.utils import InferenceServerException

from app.config import DEFAULT_MODEL_PATH

KEY = "grpc-test-key-0123456789abcdef"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    folder = tmp_path_factory.mktemp("grpc")
    grpc_bind = f"127.0.0.1:{free_port()}"
    with gunicorn(DEFAULT_MODEL_PATH, folder / "gunicorn.log", workers=2,
                  GRPC_BIND=grpc_bind) as (url, _):
        yield url, grpc_bind


@pytest.fixture(scope="module")
def client(served: tuple[str, str]) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(url=served[1])


def _fp32(images: np.ndarray) -> np.ndarray:
    return (images[:, :, :, None] / 255.0).astype(np.float32)


def test_tritonclient_grpc_health_metadata_and_infer(client, served, fashion_test_set) -> None:
    images, labels = fashion_test_set
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("fashion_mnist")
    meta = client.get_model_metadata("fashion_mnist", as_json=True)
    assert meta["inputs"][0]["name"] == "image" and meta["platform"] == "keras_h5"
    assert "binary_tensor_data" in client.get_server_metadata(as_json=True)["extensions"]
    batch = _fp32(images[:1])
    tensor = triton.InferInput("image", list(batch.shape), "FP32")
    tensor.set_data_from_numpy(batch)  # raw_input_contents: the client's default
    by_grpc = client.infer("fashion_mnist", [tensor]).as_numpy("probabilities")
    body = {"inputs": [{"name": "image", "shape": [1, 28, 28, 1], "datatype": "FP32",
                        "data": batch.ravel().tolist()}]}
    by_http = requests.post(served[0] + "/v2/models/fashion_mnist/infer", json=body,
                            timeout=30).json()["outputs"][0]["data"]
    np.testing.assert_array_equal(by_grpc.ravel(), np.asarray(by_http, np.float32))
    assert by_grpc.argmax() == labels[0]


def test_tritonclient_grpc_images_and_classification(client, fashion_test_set) -> None:
    images, labels = fashion_test_set
    files = np.array([encode(im) for im in images[:3]], dtype=np.object_)
    tensor = triton.InferInput("image", [3], "BYTES")
    tensor.set_data_from_numpy(files)
    top = triton.InferRequestedOutput("probabilities", class_count=2)
    answer = client.infer("fashion_mnist", [tensor], outputs=[top]).as_numpy("probabilities")
    assert answer.shape == (3, 2)
    assert [int(row[0].decode().split(":")[1]) for row in answer] == list(labels[:3])


@pytest.mark.parametrize(("build", "code", "fragment"), [
    (lambda: ("nope", triton.InferInput("image", [1, 28, 28, 1], "FP32"),
              np.zeros((1, 28, 28, 1), np.float32)), "NOT_FOUND", "unknown model"),
    (lambda: ("fashion_mnist", triton.InferInput("image", [1, 27, 28, 1], "FP32"),
              np.zeros((1, 27, 28, 1), np.float32)), "INVALID_ARGUMENT", "shape"),
    (lambda: ("fashion_mnist", triton.InferInput("pixels", [1, 28, 28, 1], "FP32"),
              np.zeros((1, 28, 28, 1), np.float32)), "INVALID_ARGUMENT", "unexpected input"),
    (lambda: ("fashion_mnist", triton.InferInput("image", [1], "BYTES"),
              np.array([b"not an image"], dtype=np.object_)), "INVALID_ARGUMENT", "image"),
])
def test_grpc_errors_are_status_codes_and_the_worker_stays_ready(client, build, code,
                                                                 fragment) -> None:
    model, tensor, data = build()
    tensor.set_data_from_numpy(data)
    with pytest.raises(InferenceServerException) as raised:
        client.infer(model, [tensor])
    assert code in raised.value.status() and fragment in raised.value.message()
    assert client.is_server_ready()


def test_raw_contents_that_disagree_with_the_shape_are_invalid(served) -> None:
    from tritonclient.grpc import service_pb2, service_pb2_grpc

    with grpc.insecure_channel(served[1]) as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        request = service_pb2.ModelInferRequest(model_name="fashion_mnist", inputs=[
            service_pb2.ModelInferRequest.InferInputTensor(name="image", datatype="FP32",
                                                           shape=[1, 28, 28, 1])],
            raw_input_contents=[b"\0" * 100])
        with pytest.raises(grpc.RpcError) as raised:
            stub.ModelInfer(request, timeout=10)
        assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "needs 3136" in raised.value.details()


def test_tf_serving_predict_and_model_status(served, fashion_test_set) -> None:
    images, labels = fashion_test_set
    with grpc.insecure_channel(served[1]) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "fashion_mnist"
        request.model_spec.signature_name = "serving_default"
        request.inputs["image"].CopyFrom(tf.make_tensor_proto(_fp32(images[:4])))
        reply = stub.Predict(request, timeout=30)
        probabilities = tf.make_ndarray(reply.outputs["probabilities"])
        assert list(probabilities.argmax(1)) == list(labels[:4])
        assert reply.model_spec.version.value == 1
        request.inputs["image"].CopyFrom(tf.make_tensor_proto([encode(images[0])]))
        from_file = tf.make_ndarray(stub.Predict(request, timeout=30).outputs["probabilities"])
        assert from_file.argmax() == labels[0]
        status = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(
            get_model_status_pb2.GetModelStatusRequest(model_spec={"name": "fashion_mnist"}),
            timeout=10)
        assert [(s.version, s.state) for s in status.model_version_status] == [
            (1, get_model_status_pb2.ModelVersionStatus.AVAILABLE)]
        request.model_spec.name = "nope"
        with pytest.raises(grpc.RpcError) as raised:
            stub.Predict(request, timeout=10)
        assert raised.value.code() is grpc.StatusCode.NOT_FOUND


def test_standard_health_checking_answers_like_readyz(served) -> None:
    with grpc.insecure_channel(served[1]) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        answer = health.Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.RpcError) as raised:
            health.Check(health_pb2.HealthCheckRequest(service="nope"), timeout=10)
        assert raised.value.code() is grpc.StatusCode.NOT_FOUND


def test_grpc_calls_are_counted_with_their_protocol_and_model(served, client) -> None:
    client.is_server_ready()
    client.is_model_ready("fashion_mnist")
    text = requests.get(served[0] + "/metrics", timeout=10).text
    assert 'endpoint="/inference.GRPCInferenceService/ServerReady",method="grpc",model="",' \
           'protocol="grpc",status="200",version=""' in text  # multiprocess mode sorts labels
    assert 'endpoint="/inference.GRPCInferenceService/ModelReady",method="grpc",' \
           'model="fashion_mnist",protocol="grpc",status="200",version="1"' in text


def test_with_keys_grpc_wants_the_same_key_as_metadata(tmp_path: Path) -> None:
    keys = tmp_path / "api-keys"
    keys.write_text(f"grpc-client {KEY}\n")
    grpc_bind = f"127.0.0.1:{free_port()}"
    with gunicorn(DEFAULT_MODEL_PATH, tmp_path / "gunicorn.log", GRPC_BIND=grpc_bind,
                  AUTH="keys", API_KEYS_FILE=str(keys), CORS_ORIGINS=""):
        client = triton.InferenceServerClient(url=grpc_bind)
        assert client.is_server_ready(), "readiness stays open"
        with pytest.raises(InferenceServerException) as raised:
            client.get_model_metadata("fashion_mnist")
        assert "UNAUTHENTICATED" in raised.value.status()
        assert KEY not in raised.value.message()
        meta = client.get_model_metadata("fashion_mnist", headers={
            "authorization": f"Bearer {KEY}"}, as_json=True)
        assert meta["name"] == "fashion_mnist"
        log = (tmp_path / "gunicorn.log").read_text()
        assert KEY not in log and json.dumps(KEY) not in log


def test_mixed_load_over_every_door_has_no_failure(served) -> None:
    """c=40 for 5 s: HTTP JSON, HTTP binary and gRPC at once, into the same workers and
    micro-batchers; every answer right."""
    import time
    from concurrent.futures import ThreadPoolExecutor

    from tritonclient.grpc import service_pb2_grpc

    from bench.grpc_load import infer_request

    url, target = served
    pixels = infer_request().raw_input_contents[0]
    as_json = {"inputs": [{"name": "image", "shape": [1, 28, 28, 1], "datatype": "FP32",
                           "data": np.frombuffer(pixels, "<f4").tolist()}]}
    header = json.dumps({"inputs": [{"name": "image", "shape": [1, 28, 28, 1],
                                     "datatype": "FP32",
                                     "parameters": {"binary_data_size": len(pixels)}}],
                         "parameters": {"binary_data_output": True}}).encode()
    deadline = time.monotonic() + 5

    def http(binary: bool) -> list[str]:
        wrong, session = [], requests.Session()
        while time.monotonic() < deadline:
            if binary:
                answer = session.post(url + "/v2/models/fashion_mnist/infer", data=header + pixels,
                                      headers={"Inference-Header-Content-Length": str(len(header))},
                                      timeout=30)
                size = int(answer.headers.get("Inference-Header-Content-Length", 0))
                top = int(np.frombuffer(answer.content[size:], "<f4").argmax())
            else:
                answer = session.post(url + "/v2/models/fashion_mnist/infer", json=as_json,
                                      timeout=30)
                top = int(np.argmax(answer.json()["outputs"][0]["data"]))
            if answer.status_code != 200 or top != 9:
                wrong.append(f"{answer.status_code} {top}")
        return wrong

    def over_grpc(_: int) -> list[str]:
        wrong = []
        with grpc.insecure_channel(target) as channel:
            stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
            while time.monotonic() < deadline:
                try:
                    reply = stub.ModelInfer(infer_request(), timeout=30)
                except grpc.RpcError as error:
                    wrong.append(str(error.code()))
                    continue
                if int(np.frombuffer(reply.raw_output_contents[0], "<f4").argmax()) != 9:
                    wrong.append("wrong answer")
        return wrong

    with ThreadPoolExecutor(40) as pool:
        jobs = [pool.submit(http, False) for _ in range(16)]
        jobs += [pool.submit(http, True) for _ in range(8)]
        jobs += [pool.submit(over_grpc, i) for i in range(16)]
        failures = [f for job in jobs for f in job.result()]
    assert failures == []


def test_a_call_lets_go_of_its_model_version_when_it_ends() -> None:
    """gRPC's pooled threads outlive their calls: a version leased by one is released
    when the call ends, exactly once (else it would never be freed after a roll-out)."""
    from app.protocols.grpc.calls import answer
    from app.runtime.dataplane import DataPlane

    released: list[object] = []

    class Models:
        def acquire(self, *_: object) -> object:
            return type("Service", (), {"name": "m", "version": 1})()

        def release(self, service: object) -> None:
            released.append(service)

    class Trials:  # no roll-out: the request's own version
        def route(self, *_: object) -> None:
            return None

    plane = DataPlane(Models(), type("Rollout", (), {"trials": Trials()})())  # type: ignore[arg-type]
    leased: list[object] = []
    answer(plane, "/test/Method", None, lambda call: leased.append(call.lease("m")))  # type: ignore[arg-type]
    assert released == leased and len(leased) == 1
