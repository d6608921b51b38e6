"""Every model on the fastest runtime that gives Keras' answers (app.runtime.engines).

The gate, the cache and the choice are tested with real conversions; which runtime is
fastest is the benchmark's business (bench/runtimes.py), not a test's.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from flask import Flask
from servers import ROOT, gunicorn
from toy_models import write_card

from app.config import DEFAULT_MODEL_PATH, Settings
from app.runtime.classifier import Classifier
from app.runtime.engines import Engine, onnx_engine, openvino_engine
from app.runtime.engines.choice import Candidate, fastest
from app.runtime.engines.parity import F32_TOLERANCE, compare
from app.runtime.engines.timing import batch_sizes
from app.runtime.loading import ModelLoadError
from scripts.idx import DATASET_DIR, load_idx

pytestmark = [pytest.mark.slow]

CONVERTED = ("onnxruntime", "openvino")


def load(path: Path, cache: Path | None, **settings: object) -> Classifier:
    classifier = Classifier(path, Settings.load({"RUNTIME_CACHE_DIR": cache, **settings}))
    classifier.load()
    return classifier


@pytest.fixture(scope="module")
def refused_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Discretization layer (TensorFlow's Bucketize op): tf2onnx writes a graph ONNX
    Runtime calls invalid, and OpenVINO's TensorFlow frontend has no translator for it."""
    keras.utils.set_random_seed(3)
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Discretization(bin_boundaries=[0.25, 0.5, 0.75])(inputs)
    outputs = keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(x))
    path = tmp_path_factory.mktemp("refused") / "buckets.h5"
    keras.Model(inputs, outputs).save(path)
    write_card(path, labels=["low", "high"], scale="unit")
    return path


@pytest.fixture(scope="module")
def fashion_test_images() -> tuple[np.ndarray, np.ndarray]:
    """All 10,000 Fashion-MNIST test images and labels."""
    return (load_idx(DATASET_DIR / "t10k-images-idx3-ubyte.gz"),
            load_idx(DATASET_DIR / "t10k-labels-idx1-ubyte.gz"))


@pytest.mark.parametrize("runtime", CONVERTED)
def test_the_bundled_model_keeps_its_accuracy_on_every_runtime(
        runtime: str, fashion_test_images: tuple[np.ndarray, np.ndarray]) -> None:
    images, labels = fashion_test_images
    keras_model = load(DEFAULT_MODEL_PATH, None, RUNTIME="tensorflow")
    converted = load(DEFAULT_MODEL_PATH, None, RUNTIME=runtime)
    assert converted.runtime and converted.runtime.engine.name == runtime
    batch = converted.image_spec.to_model_input(images[..., None])  # type: ignore[union-attr]
    want = np.concatenate([keras_model.predict(b) for b in np.array_split(batch, 40)])
    got = np.concatenate([converted.predict(b) for b in np.array_split(batch, 40)])
    accuracy = [float((p.argmax(1) == labels).mean()) for p in (want, got)]
    assert abs(accuracy[0] - accuracy[1]) <= 0.001, accuracy
    assert accuracy[0] > 0.85
    assert np.abs(got - want).max() <= F32_TOLERANCE


def test_auto_says_which_runtime_serves_why_and_what_each_measured(fashion_app: Flask) -> None:
    described = fashion_app.test_client().get("/model").get_json()["runtime"]
    assert described["name"] in ("tensorflow", *CONVERTED) and described["why"]
    assert described["precision"] == "f32"
    candidates = {c["runtime"]: c for c in described["candidates"]}
    assert set(candidates) == {"tensorflow", *CONVERTED}
    for candidate in candidates.values():
        assert candidate["usable"] and candidate["parity"]["passed"]
        assert candidate["parity"]["max_probability_difference"] <= F32_TOLERANCE
        sizes = sorted(map(int, candidate["images_per_s"]))  # app.runtime.engines.timing
        assert sizes[0] == 1 and sizes[-1] <= 32, sizes
        assert min(candidate["images_per_s"].values()) > 0
        assert candidate["description"]


def test_a_model_the_converters_refuse_is_served_by_tensorflow(
        refused_model: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        classifier = load(refused_model, tmp_path)
        # OpenVINO's failed convert_model left the root logger at ERROR: nothing logged after
        assert logging.getLogger().level == logging.INFO
    assert classifier.runtime and classifier.runtime.engine.name == "tensorflow"
    assert classifier.runtime.reason == "no other runtime gives the same answers"
    refusals = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(refusals) == 2, refusals  # one line per runtime, naming why
    assert all("conversion failed" in line and "buckets.h5" in line for line in refusals)
    assert "onnxruntime" in refusals[0] and "openvino" in refusals[1]
    x = np.full((1, 8, 8, 1), 0.9, np.float32)
    assert classifier.predict(x).shape == (1, 2)


def test_a_failed_conversion_is_remembered_and_a_forced_runtime_refused(
        refused_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    load(refused_model, tmp_path)

    def never(*_: object) -> None:
        raise AssertionError("converted again")

    monkeypatch.setattr(onnx_engine, "convert", never)
    monkeypatch.setattr(openvino_engine, "convert", never)
    again = load(refused_model, tmp_path)
    assert again.runtime and again.runtime.engine.name == "tensorflow"
    for runtime in CONVERTED:
        with pytest.raises(ModelLoadError, match=f"RUNTIME={runtime}: conversion failed"):
            load(refused_model, tmp_path, RUNTIME=runtime)


@pytest.fixture()
def slightly_wrong_onnx(monkeypatch: pytest.MonkeyPatch) -> None:
    """ONNX Runtime's answers moved by 3e-4 (probabilities still summing to one)."""
    real = onnx_engine.load

    def wrong(folder: Path, precision: str) -> Engine:
        engine = real(folder, precision)

        def forward(batch: np.ndarray) -> np.ndarray:
            out = engine.forward(batch).copy()
            out[:, 0] += 3e-4
            out[:, 1] -= 3e-4
            return out

        return Engine(engine.name, engine.description, forward)

    monkeypatch.setattr(onnx_engine, "load", wrong)


@pytest.mark.usefixtures("slightly_wrong_onnx")
def test_a_runtime_with_slightly_wrong_numbers_is_not_used(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        auto = load(DEFAULT_MODEL_PATH, tmp_path)
    assert auto.runtime and auto.runtime.engine.name != "onnxruntime"
    onnx = next(c for c in auto.runtime.candidates if c.name == "onnxruntime")
    assert onnx.failure.startswith("misses parity: ") and "> 1e-04" in onnx.failure
    assert onnx.parity and 2.9e-4 < onnx.parity.max_difference < 3.1e-4
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        f"runtime onnxruntime for fashion_mnist.h5: {onnx.failure}"]
    with pytest.raises(ModelLoadError, match="RUNTIME=onnxruntime: misses parity.*"
                       r"\(RUNTIME_PARITY=warn serves it anyway\)"):
        load(DEFAULT_MODEL_PATH, tmp_path, RUNTIME="onnxruntime")
    warned = load(DEFAULT_MODEL_PATH, tmp_path, RUNTIME="onnxruntime", RUNTIME_PARITY="warn")
    assert warned.runtime and warned.runtime.engine.name == "onnxruntime"
    assert "RUNTIME_PARITY=warn" in warned.runtime.reason


def test_the_gate_ignores_keras_own_near_ties_but_not_real_disagreements() -> None:
    reference = np.array([[0.50002, 0.49998], [0.9, 0.1]], np.float32)
    flipped_tie = np.array([[0.49998, 0.50002], [0.9, 0.1]], np.float32)
    assert compare(reference, flipped_tie).passed
    flipped = np.array([[0.50002, 0.49998], [0.1, 0.9]], np.float32)
    assert compare(reference, flipped).disagreements == 1
    assert not compare(reference, flipped).passed
    assert not compare(reference, reference + 2e-4).passed
    assert compare(reference, reference + 2e-4, "bf16").passed  # bf16: top-1 only
    assert not compare(reference, np.full_like(reference, np.nan)).passed


def _candidate(name: str) -> Candidate:
    return Candidate(name, Engine(name, name, lambda batch: batch))


@pytest.mark.parametrize(("timings", "served"), [
    # EfficientNetB0 as measured: OpenVINO faster alone, slower at batch 16.
    ({"tensorflow": {1: 42, 32: 85}, "openvino": {1: 53, 32: 48}}, "tensorflow"),
    ({"tensorflow": {1: 58, 32: 121}, "openvino": {1: 210, 32: 209},
      "onnxruntime": {1: 234, 32: 244}}, "onnxruntime"),
    ({"tensorflow": {1: 100, 32: 100}, "openvino": {1: 103, 32: 103}}, "tensorflow"),
    # EfficientNetB0 in a 2-thread process: OpenVINO 1.52x alone, 0.74x at batch 8.
    ({"tensorflow": {1: 31, 8: 64}, "openvino": {1: 47, 8: 47}}, "tensorflow"),
])
def test_the_fastest_runtime_serves_only_when_clearly_faster(
        timings: dict[str, dict[int, float]], served: str) -> None:
    usable = [_candidate(name) for name in timings]
    chosen = fastest(usable, usable, timings, cached=False)
    assert chosen.engine.name == served
    assert ("TensorFlow measured fastest" in chosen.reason) == (served == "tensorflow")


@pytest.mark.parametrize(("max_batch", "per_image", "sizes"), [
    (32, 0.001, [1, 8]), (32, 0.018, [1, 8]), (4, 0.001, [1, 4]), (32, 0.1, [1, 3]),
    (32, 3.0, [1])])
def test_auto_times_a_lone_request_and_a_busy_servers_batch_if_a_call_fits(
        max_batch: int, per_image: float, sizes: list[int]) -> None:
    assert batch_sizes(max_batch, 1.0, per_image) == sizes


def test_an_unwritable_cache_converts_in_a_temporary_folder(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    with caplog.at_level(logging.WARNING):
        classifier = load(DEFAULT_MODEL_PATH, blocked / "cache", RUNTIME="openvino")
    assert classifier.runtime and classifier.runtime.engine.name == "openvino"
    assert any("is not writable" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(("name", "value"), [("RUNTIME", "tensorrt"),
                                             ("RUNTIME_PRECISION", "fp16"),
                                             ("RUNTIME_PARITY", "ignore"),
                                             ("RUNTIME_TIMING_SECONDS", "0")])
def test_runtime_settings_are_checked_at_start(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=name):
        Settings.load(environ={name: value})


def test_two_workers_convert_once_and_a_restart_converts_nothing(tmp_path: Path) -> None:
    """One process prepares the model (converts, gates, times) while the second worker
    waits, then reads it; after a restart each worker reads what was prepared then. The
    log says which."""
    log = tmp_path / "gunicorn.log"
    env = {"RUNTIME_CACHE_DIR": str(tmp_path / "cache"), "MODEL_POLL_SECONDS": "0"}
    with gunicorn(DEFAULT_MODEL_PATH, log, workers=2, **env):
        pass
    first = log.read_text()
    for runtime in CONVERTED:
        assert first.count(f"runtime {runtime} for fashion_mnist.h5: converted in") == 1
    assert first.count("preparing it in a separate process") == 1
    assert first.count("prepared earlier on this host") == 1
    with gunicorn(DEFAULT_MODEL_PATH, log, workers=2, **env):
        pass
    second = log.read_text()[len(first):]
    assert "converted in" not in second and "measured now" not in second
    assert "preparing it" not in second and second.count("prepared earlier on this host") == 2


def test_converting_and_serving_leave_no_telemetry_behind(tmp_path: Path) -> None:
    """ONNX Runtime's Linux telemetry would write a device id and an event store under
    ~/.cache/Microsoft (and upload them); OpenVINO's converter, with openvino-telemetry
    installed, a client id under ~/intel. A server keeps neither."""
    code = ("import sys; from pathlib import Path; from app.config import Settings; "
            "from app.runtime.classifier import Classifier; "
            "c = Classifier(Path(sys.argv[1]), Settings.load({'RUNTIME_CACHE_DIR': ''})); "
            "c.load(); print(sorted(x.name for x in c.runtime.candidates if not x.failure))")
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "RUNTIME_TIMING_SECONDS": "0.05"}
    env.pop("XDG_CACHE_HOME", None)
    result = subprocess.run([sys.executable, "-c", code, str(DEFAULT_MODEL_PATH)], env=env,
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "'onnxruntime', 'openvino'" in result.stdout
    assert not (home / ".cache" / "Microsoft").exists()
    assert not (home / "intel").exists()
    assert importlib.util.find_spec("openvino_telemetry") is None


def test_a_decision_made_on_this_host_loads_only_the_runtime_it_names(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = load(DEFAULT_MODEL_PATH, tmp_path)
    assert first.runtime is not None
    chosen = first.runtime.engine.name
    modules = {"onnxruntime": onnx_engine, "openvino": openvino_engine}
    for name, module in modules.items():
        if name != chosen:
            monkeypatch.setattr(module, "load", lambda *_: pytest.fail("loaded a loser"))
    again = load(DEFAULT_MODEL_PATH, tmp_path)
    assert again.runtime and again.runtime.engine.name == chosen
    described, before = again.runtime.describe(), first.runtime.describe()
    assert described["candidates"] == before["candidates"]
    assert described["why"] == before["why"].replace("measured now",
                                                     "measured earlier on this host")
