"""Drift in the server: the bundled model's reference from real Fashion-MNIST test images,
then the next test images (no drift) and the same images inverted (drift), as gauges and in
GET /models/<name>; a reference from a labelled examples folder, and from a file shipped
beside the model (which comes first), both from the first request; and the alert rule, by
promtool."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import weakref
from pathlib import Path

import numpy as np
import pytest
from helpers import bundled_model_copy, fashion_examples
from servers import ROOT

from app.config import DEFAULT_MODEL_PATH
from app.runtime.dataplane.types import InferResponse
from app.runtime.drift import DRIFT, NO_DRIFT, DriftMonitor, psi
from app.runtime.drift_reference import Reference, read_reference_file, reference_file
from app.runtime.loading import ModelLoadError
from scripts.idx import DATASET_DIR, load_idx

pytestmark = [pytest.mark.slow]

INPUT = ("brightness",)  # inverting keeps contrast and the clipped share as they were
PREDICTION = ("predicted_class", "confidence")


def _serve(client, images: np.ndarray) -> None:
    for start in range(0, len(images), 100):
        rows = images[start:start + 100]
        reply = client.post("/v2/models/fashion_mnist/infer", json={"inputs": [
            {"name": "image", "datatype": "UINT8", "shape": [len(rows), 28, 28, 1],
             "data": rows.ravel().tolist()}]})
        assert reply.status_code == 200, reply.get_json()


def _drift(client) -> dict:
    return client.get("/models/fashion_mnist").get_json()["drift"]


def _gauges(client) -> dict[str, float]:
    text = client.get("/metrics").get_data(as_text=True)
    return {m[0]: float(m[1]) for m in re.findall(
        r'^h5serve_drift_psi\{model="fashion_mnist",statistic="(\w+)",version="1"\} (\S+)$',
        text, re.M)} or {m[0]: float(m[1]) for m in re.findall(
        r'^h5serve_drift_psi\{[^}]*statistic="(\w+)"[^}]*\} (\S+)$', text, re.M)}


def test_test_images_stay_under_the_threshold_and_inverted_ones_go_over(make_app) -> None:
    images = load_idx(DATASET_DIR / "t10k-images-idx3-ubyte.gz")[:2000]
    client = make_app(DEFAULT_MODEL_PATH, DRIFT_REFERENCE=1000, DRIFT_WINDOW=500,
                      RUNTIME="tensorflow").test_client()
    assert _drift(client)["reference_source"] == "requests"  # ten card examples are too few
    unfinished = client.get("/models/fashion_mnist/drift_reference")
    assert unfinished.status_code == 503 and "0 of 1000 rows" in unfinished.get_data(True)
    _serve(client, images[:1000])
    assert _drift(client)["psi"] == {}
    shipped = client.get("/models/fashion_mnist/drift_reference").get_json()
    assert shipped["rows"] == 1000 and shipped["h5serve_drift_reference"] == 1
    _serve(client, images[1000:1500])
    steady = _gauges(client)
    assert set(steady) >= {*INPUT, *PREDICTION, "contrast", "clipped"}, steady
    assert max(steady.values()) < NO_DRIFT, steady
    _serve(client, 255 - images[1500:2000])
    shifted = _gauges(client)
    assert all(shifted[name] > DRIFT for name in (*INPUT, *PREDICTION)), shifted
    figures = client.get("/models/fashion_mnist").get_json()["drift"]
    assert figures["psi"] == shifted and figures["window_rows"] == 500
    assert figures["thresholds"] == {"no_drift_below": NO_DRIFT, "drift_above": DRIFT}


def test_a_labelled_examples_folder_is_the_reference_from_the_first_request(
        make_app, tmp_path: Path) -> None:
    images = load_idx(DATASET_DIR / "t10k-images-idx3-ubyte.gz")[:1000]
    model = bundled_model_copy(tmp_path)
    folder = fashion_examples(model, per_label=100)
    client = make_app(model, DRIFT_REFERENCE=1000, DRIFT_WINDOW=500,
                      RUNTIME="tensorflow").test_client()
    figures = _drift(client)
    assert figures["reference_source"] == "examples", figures
    assert figures["reference_rows"] == figures["reference_size"] == 1010  # + the card's 10
    assert str(folder) in figures["reference_from"]
    _serve(client, images[:500])
    steady = _drift(client)["psi"]
    assert set(steady) >= {*INPUT, *PREDICTION, "contrast", "clipped"}, steady
    assert max(steady.values()) < NO_DRIFT, steady
    _serve(client, 255 - images[500:1000])
    shifted = _drift(client)["psi"]
    assert all(shifted[name] > DRIFT for name in (*INPUT, *PREDICTION)), shifted


def test_a_shipped_reference_file_comes_before_the_examples(make_app, tmp_path: Path) -> None:
    images = load_idx(DATASET_DIR / "t10k-images-idx3-ubyte.gz")[:1500]
    taken = make_app(DEFAULT_MODEL_PATH, DRIFT_REFERENCE=1000,
                     RUNTIME="tensorflow").test_client()
    _serve(taken, images[:1000])
    model = bundled_model_copy(tmp_path)
    fashion_examples(model, per_label=20)
    file = reference_file(model)
    file.write_bytes(taken.get("/models/fashion_mnist/drift_reference").get_data())
    client = make_app(model, DRIFT_REFERENCE=1000, DRIFT_WINDOW=500,
                      RUNTIME="tensorflow").test_client()
    figures = _drift(client)
    assert (figures["reference_source"], figures["reference_from"]) == ("file", str(file))
    assert figures["reference_rows"] == 1000 and figures["window_rows"] == 0
    _serve(client, images[1000:1500])
    assert max(_drift(client)["psi"].values()) < NO_DRIFT
    assert client.get("/models/fashion_mnist/drift_reference").get_json() == \
        json.loads(file.read_text())  # a shipped file is shipped on as it came


@pytest.mark.parametrize("change, message", [
    (lambda r: {**r, "labels": r["labels"][::-1]}, "labels are not the model's"),
    (lambda r: {**r, "h5serve_drift_reference": 2}, '"h5serve_drift_reference": 1'),
    (lambda r: {**r, "statistics": {**r["statistics"], "brightness": {"shares": [1.0]}}},
     "statistic 'brightness'"),
    (lambda r: {**r, "statistics": {"predicted_class": {"shares": [0.5, 0.5]}}},
     "statistic 'predicted_class'"),
])
def test_an_unusable_reference_file_refuses_the_model_naming_it(
        make_app, tmp_path: Path, change, message: str) -> None:
    model = bundled_model_copy(tmp_path)
    rng = np.random.default_rng(0)
    good = Reference.of({"predicted_class": [0.0, 1.0] * 50, "confidence": list(
        rng.random(100))}, 10, "requests").to_json(tuple(json.loads(
            model.with_suffix(".json").read_text())["labels"]))
    reference_file(model).write_text(json.dumps(change(good)))
    with pytest.raises(ModelLoadError, match=re.escape(message)):
        make_app(model, DRIFT_REFERENCE=100, RUNTIME="tensorflow")


def test_a_reference_file_reads_back_as_it_was_written(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    columns = {"predicted_class": list(rng.integers(0, 3, 300).astype(float)),
               "confidence": list(rng.random(300)), "brightness": [0.5] * 300}
    reference = Reference.of(columns, 3, "requests")
    (file := tmp_path / "m.drift_reference.json").write_text(
        json.dumps(reference.to_json(("a", "b", "c"))))
    read = read_reference_file(file, ("a", "b", "c"))
    assert (read.source, read.rows, read.histograms) == ("file", 300, reference.histograms)
    recent = rng.random(100)
    assert read.histograms["confidence"].psi(recent) == \
        psi(np.array(columns["confidence"]), recent)


def test_psi_of_a_sample_against_itself_is_zero_and_grows_with_the_shift() -> None:
    rng = np.random.default_rng(0)
    reference = rng.normal(0, 1, 5000)
    assert psi(reference, reference) == pytest.approx(0, abs=1e-9)
    shifts = [psi(reference, rng.normal(shift, 1, 1000)) for shift in (0, 0.5, 1)]
    assert shifts[0] < NO_DRIFT < shifts[1] < shifts[2] and shifts[2] > DRIFT
    assert psi(np.array([0, 1, 2] * 100), np.array([0, 0, 1] * 100), classes=3) > DRIFT


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_the_drift_alert_fires_in_promtools_test() -> None:
    rules = ROOT / "deploy" / "prometheus"
    result = subprocess.run(["promtool", "test", "rules", str(rules / "alerts_drift_test.yml")],
                            cwd=rules, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr
    assert "H5serveDrift" in Path(rules / "alerts.yml").read_text()


class _Served:
    """A loaded version as the drift monitor sees it (InferenceService's one attribute)."""
    drift_reference = None


class _Call:
    def __init__(self, served: _Served) -> None:
        self.served = served


def _answer(rows: int, brightness: float) -> InferResponse:
    return InferResponse("m", 1, ("a", "b"), np.tile([[0.9, 0.1]], (rows, 1)), (),
                         np.full((rows, 4, 4, 1), brightness, np.float32), (None,) * rows)


def test_a_version_reloaded_under_the_same_number_gets_a_reference_of_its_own() -> None:
    """Its file replaced, version 1 is a new model: the old one's rows are no reference."""
    monitor, first = DriftMonitor(reference=20, window=10), _Served()
    monitor(_Call(first), None, _answer(20, 0.2))  # type: ignore[arg-type]
    assert monitor.reference("m", 1) is not None
    monitor(_Call(first), None, _answer(5, 0.8))  # type: ignore[arg-type]
    assert monitor.figures("m", 1, None)["reference_rows"] == 20  # the same load goes on
    reloaded = _Served()
    monitor(_Call(reloaded), None, _answer(5, 0.8))  # type: ignore[arg-type]
    figures = monitor.figures("m", 1, None)
    assert monitor.reference("m", 1) is None and figures["reference_rows"] == 5, figures
    monitor(_Call(reloaded), None, _answer(15, 0.8))  # type: ignore[arg-type]
    assert monitor.reference("m", 1) is not None
    retired = weakref.ref(first)
    del first
    assert retired() is None, "a profile must not keep a retired version alive"
