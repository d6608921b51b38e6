"""Drift in the server: the bundled model's reference from real Fashion-MNIST test images,
then the next test images (no drift) and the same images inverted (drift), as gauges and in
GET /models/<name>; and the alert rule, by promtool."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from servers import ROOT

from app.config import DEFAULT_MODEL_PATH
from app.runtime.drift import DRIFT, NO_DRIFT, psi
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
    _serve(client, images[:1000])
    assert client.get("/models/fashion_mnist").get_json()["drift"]["psi"] == {}
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
