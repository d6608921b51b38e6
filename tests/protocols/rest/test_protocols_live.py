"""Protocols against a live gunicorn with two gevent workers: the official Triton client,
Prometheus metrics summed over workers, and schemathesis on /openapi.json."""

from __future__ import annotations

import base64
import re
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import requests
import tritonclient.http as triton
from helpers import encode
from servers import VENV_BIN, gunicorn

from app.config import DEFAULT_MODEL_PATH

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    log = tmp_path_factory.mktemp("protocols") / "gunicorn.log"
    with gunicorn(DEFAULT_MODEL_PATH, log, workers=2) as (url, _):
        yield url, log


@pytest.fixture(scope="module")
def client(server: tuple[str, Path]) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(url=server[0].removeprefix("http://"))


def test_tritonclient_health_and_metadata(client: triton.InferenceServerClient) -> None:
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("fashion_mnist")
    meta = client.get_model_metadata("fashion_mnist")
    assert meta["inputs"] == [{"name": "image", "datatype": "FP32", "shape": [-1, 28, 28, 1]}]
    assert meta["outputs"][0]["name"] == "probabilities"
    assert client.get_server_metadata()["name"] == "h5serve"


def test_tritonclient_infer_fp32_tensor(client, fashion_test_set) -> None:
    images, labels = fashion_test_set
    batch = (images[:8, :, :, None] / 255.0).astype(np.float32)
    tensor = triton.InferInput("image", list(batch.shape), "FP32")
    tensor.set_data_from_numpy(batch, binary_data=False)
    output = triton.InferRequestedOutput("probabilities", binary_data=False)
    result = client.infer("fashion_mnist", [tensor], outputs=[output])
    probabilities = result.as_numpy("probabilities")
    assert probabilities.shape == (8, 10)
    assert (probabilities.argmax(1) == labels[:8]).mean() >= 0.75
    assert probabilities[0].argmax() == labels[0]


def test_tritonclient_infer_bytes_images(client, fashion_test_set) -> None:
    """Encoded PNG files as a BYTES tensor (base64 text: JSON cannot carry raw bytes)."""
    images, labels = fashion_test_set
    files = np.array([base64.b64encode(encode(im)).decode() for im in images[:4]], dtype=object)
    tensor = triton.InferInput("image", [4], "BYTES")
    tensor.set_data_from_numpy(files, binary_data=False)
    result = client.infer("fashion_mnist", [tensor])  # names no output: client asks binary
    probabilities = result.as_numpy("probabilities")
    assert list(probabilities.argmax(1)) == list(labels[:4])


def test_metrics_sum_the_counts_of_both_workers(server: tuple[str, Path]) -> None:
    url, log = server
    image = encode(np.zeros((28, 28), np.uint8))

    def ask(_: int) -> int:
        with requests.Session() as session:  # a new connection each: both workers accept
            return session.post(url + "/predictlabel", files={"image": ("a.png", image)},
                                timeout=30).status_code

    with ThreadPoolExecutor(16) as pool:
        assert set(pool.map(ask, range(200))) == {200}
    pids = set(re.findall(r'"POST /predictlabel HTTP/1.1" 200 .*<(\d+)>', log.read_text()))
    assert len(pids) == 2, "both workers served uploads"
    text = requests.get(url + "/metrics", timeout=10).text
    count = re.search(r'h5serve_requests_total\{endpoint="/predictlabel",method="POST",'
                      r'model="fashion_mnist",protocol="http",status="200",version="1"\} '
                      r'(\d+(\.\d+)?)', text)
    assert count and float(count.group(1)) >= 200, "the counts of both workers are summed"
    loads = re.findall(r'h5serve_model_load_seconds\{model="fashion_mnist",pid="(\d+)",'
                       r'version="1"\}', text)
    assert set(loads) == pids
    for name in ("h5serve_request_duration_seconds_bucket", "h5serve_batch_size_bucket",
                 "h5serve_queue_wait_seconds_bucket", "h5serve_inference_seconds_bucket",
                 "h5serve_model_info{"):
        assert name in text


def test_schemathesis_finds_no_server_errors_or_schema_violations(
        server: tuple[str, Path]) -> None:
    url, _ = server
    result = subprocess.run(
        [str(VENV_BIN / "schemathesis"), "run", url + "/openapi.json",
         "--checks", "not_a_server_error,response_schema_conformance",
         "--max-examples", "15", "--seed", "1", "--request-timeout", "30",
         "--exclude-path", "/metrics"],
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    tested = re.search(r"Tested: (\d+)", result.stdout)
    assert tested and int(tested.group(1)) >= 19, result.stdout[-3000:]
    assert re.search(r"\d+ generated, \d+ passed", result.stdout), result.stdout[-3000:]
