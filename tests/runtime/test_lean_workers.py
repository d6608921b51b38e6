"""Lean workers: a model prepared once per host in a separate process, served without
TensorFlow (app.runtime.prepared, app.http.prepare).

The workers are real gunicorn workers; whether one holds TensorFlow is read from its
memory map (TensorFlow's shared libraries are there once it is imported, and nothing
unloads them), which is what `sys.modules` would say, from outside the process.
"""

from __future__ import annotations

import io
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from helpers import bundled_model_copy, fashion_examples
from servers import ROOT, VENV_BIN, free_port, gunicorn

from app.config import DEFAULT_MODEL_PATH, Settings
from app.runtime.classifier import Classifier
from app.runtime.prepared import Prepared

pytestmark = [pytest.mark.slow]

BOOT = ROOT / "static" / "examples" / "ankle_boot.png"


def worker_pids(master: subprocess.Popen) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(master.pid)], capture_output=True, text=True)
    return sorted(int(pid) for pid in found.stdout.split())


def holds_tensorflow(pid: int) -> bool:
    return "libtensorflow" in Path(f"/proc/{pid}/maps").read_text()


def upload(base: str, path: str = "/predictlabel") -> requests.Response:
    return requests.post(base + path, files={"image": ("boot.png", io.BytesIO(
        BOOT.read_bytes()), "image/png")}, timeout=60)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("lean-cache")


@pytest.fixture(scope="module")
def lean(cache: Path, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[tuple[str, subprocess.Popen, Path]]:
    """Two workers on ONNX Runtime (forced: which runtime is fastest is the benchmark's
    business), from an empty cache, with the gRPC door open (TF Serving's messages)."""
    log = tmp_path_factory.mktemp("lean-log") / "gunicorn.log"
    with gunicorn(DEFAULT_MODEL_PATH, log, workers=2, RUNTIME="onnxruntime",
                  RUNTIME_CACHE_DIR=str(cache), GRPC_BIND=f"127.0.0.1:{free_port()}"
                  ) as (base, process):
        yield base, process, log


def test_a_lean_worker_serves_without_tensorflow(lean) -> None:
    base, process, log = lean
    pids = worker_pids(process)
    assert len(pids) == 2 and not any(holds_tensorflow(pid) for pid in pids)
    answer = upload(base)
    assert answer.status_code == 200 and answer.json()["most_probable_label"] == "Ankle boot"
    text = log.read_text()
    assert text.count("preparing it in a separate process") == 1
    assert text.count("prepared earlier on this host") == 1  # the second worker waited


def test_model_describes_the_prepared_model_as_a_read_one(lean, cache: Path) -> None:
    base, _, _ = lean
    described = requests.get(base + "/model", timeout=10).json()
    reference = Classifier(DEFAULT_MODEL_PATH, Settings(RUNTIME="tensorflow"))
    reference.load()
    expected = reference.describe()
    assert set(described) == set(expected)
    for field in ("labels", "output", "output_why", "preprocessing", "labels_from", "input",
                  "versions", "calibration", "description", "low_confidence"):
        assert described[field] == expected[field], field
    assert described["runtime"]["name"] == "onnxruntime"
    [stored] = cache.glob("*/prepared/prepared.json")
    assert described["runtime"]["max_batch_size"] == Prepared.from_json(
        stored.read_text()).batch_limit


def test_the_first_explanation_reads_keras_then_answers_as_before(lean) -> None:
    base, process, _ = lean
    first = upload(base, "/explain")
    assert first.status_code == 200, first.text[:300]
    body = first.json()
    assert body["most_probable_label"] == "Ankle boot"
    assert body["explanation"]["label"] == "Ankle boot" and body["explanation"]["heatmap"]
    assert any(holds_tensorflow(pid) for pid in worker_pids(process))


def test_a_restart_finds_the_prepared_model(cache: Path, tmp_path: Path) -> None:
    log = tmp_path / "gunicorn.log"
    with gunicorn(DEFAULT_MODEL_PATH, log, workers=2, RUNTIME="onnxruntime",
                  RUNTIME_CACHE_DIR=str(cache), EXPLAIN="off") as (base, process):
        assert upload(base).status_code == 200
        refused = upload(base, "/explain")
        assert refused.status_code == 404
        assert refused.json()["error"]["code"] == "explanations_off"
        assert not any(holds_tensorflow(pid) for pid in worker_pids(process))
    text = log.read_text()
    assert "preparing it in a separate process" not in text
    assert text.count("prepared earlier on this host") == 2


def test_a_prepared_description_survives_its_json(cache: Path) -> None:
    [stored] = cache.glob("*/prepared/prepared.json")
    prepared = Prepared.from_json(stored.read_text())
    assert Prepared.from_json(prepared.to_json()) == prepared
    assert prepared.runtime == "onnxruntime" and Path(prepared.artefact).is_dir()
    # the bundled model gains from every doubling: it was timed up to MAX_BATCH_SIZE
    assert 8 <= prepared.batch_limit <= Settings().MAX_BATCH_SIZE
    assert str(prepared.batch_limit) in prepared.batch_rates


def test_inspect_shows_how_this_host_prepared_the_model(cache: Path) -> None:
    env = {**os.environ, "RUNTIME": "onnxruntime", "RUNTIME_CACHE_DIR": str(cache)}
    command = [str(VENV_BIN / "flask"), "--app", "app", "inspect", str(DEFAULT_MODEL_PATH)]
    shown = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=300)
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert "runtime  onnxruntime on this host (RUNTIME=onnxruntime; prepared in" in shown.stdout
    elsewhere = subprocess.run(command, cwd=ROOT, env={**env, "RUNTIME": "openvino"},
                               capture_output=True, text=True, timeout=300)
    assert "runtime  not prepared on this host yet" in elsewhere.stdout


def test_a_lean_worker_takes_its_drift_reference_from_the_examples(tmp_path: Path) -> None:
    """Through the prepared runtime's predict: the worker still holds no TensorFlow."""
    model = bundled_model_copy(tmp_path)
    fashion_examples(model, per_label=10)
    with gunicorn(model, tmp_path / "gunicorn.log", RUNTIME="onnxruntime",
                  RUNTIME_CACHE_DIR=str(tmp_path / "cache"), DRIFT_REFERENCE="1000",
                  EXPLAIN="off") as (base, process):
        figures = requests.get(base + "/model", timeout=10).json()["drift"]
        assert not any(holds_tensorflow(pid) for pid in worker_pids(process))
    assert figures["reference_source"] == "examples", figures
    assert figures["reference_rows"] == 10 + 100  # the card's, and the folder's
