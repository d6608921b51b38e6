"""The real server: gunicorn + gevent with gunicorn.conf.py, driven over loopback HTTP."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import requests
from helpers import encode
from PIL import Image
from servers import gunicorn

pytestmark = [pytest.mark.slow]


def _convolutions(path: Path, side: int) -> Path:
    """Five 3x3 convolutions at full resolution: slow on purpose."""
    import keras
    from keras import layers

    inputs = keras.Input((side, side, 3))
    x = inputs
    for filters in (32, 64, 64, 64, 64):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
    outputs = layers.Dense(2, activation="softmax")(layers.GlobalAveragePooling2D()(x))
    keras.Model(inputs, outputs).save(path)
    return path


@pytest.fixture(scope="module")
def slow_model(models_dir: Path) -> Path:
    """At 1024x1024: a forward pass takes about 3 s on 2 cores (TensorFlow)."""
    return _convolutions(models_dir / "slow.h5", 1024)


@pytest.fixture(scope="module")
def busy_model(models_dir: Path) -> Path:
    """At 768x768: about 1.5 s a forward pass, 1 s or so converted; quicker to gate."""
    return _convolutions(models_dir / "busy.h5", 768)


def _png(value: int, mode: str = "L") -> bytes:
    return encode(Image.new(mode, (28, 28), value))


def test_gevent_worker_serves_the_model(bright_model: Path, tmp_path: Path) -> None:
    with gunicorn(bright_model, tmp_path / "gunicorn.log") as (base, _):
        response = requests.post(base + "/predictlabel", files={"image": ("a.png", _png(240))})
        assert response.status_code == 200
        assert response.json()["most_probable_label"] == "bright"
    log = (tmp_path / "gunicorn.log").read_text()
    assert "Using worker: gevent" in log
    assert '"POST /predictlabel HTTP/1.1" 200' in log, "access log goes to stdout"


def test_64_concurrent_requests_on_one_gevent_worker_all_right(bright_model: Path,
                                                               tmp_path: Path) -> None:
    """The tutorials' model.predict fails here; every answer must be right."""
    values = [int(v) for v in np.random.default_rng(1).integers(0, 256, 64) if abs(v - 128) > 8]
    with gunicorn(bright_model, tmp_path / "gunicorn.log") as (base, _):
        def ask(value: int) -> str:
            response = requests.post(base + "/predictlabel",
                                     files={"image": ("a.png", _png(value))}, timeout=60)
            response.raise_for_status()
            return response.json()["most_probable_label"]

        barrier_pool = ThreadPoolExecutor(64)
        answers = list(barrier_pool.map(ask, values * 2))
        barrier_pool.shutdown()
    assert answers == ["bright" if v > 128 else "dark" for v in values * 2]


@pytest.mark.parametrize("runtime", ["tensorflow", "onnxruntime", "openvino"])
def test_inference_does_not_freeze_the_hub(busy_model: Path, tmp_path: Path,
                                           runtime: str) -> None:
    """Health answers while a slow batch computes, on every runtime (each must let go of
    the GIL while it computes): ordered events, not timing thresholds."""
    events: list[str] = []
    lock = threading.Lock()

    def record(event: str) -> None:
        with lock:
            events.append(event)

    with gunicorn(busy_model, tmp_path / "gunicorn.log", RUNTIME=runtime) as (base, _):
        image = encode(Image.new("RGB", (1024, 1024), "white"))

        def infer() -> None:
            record("infer sent")
            response = requests.post(base + "/predictlabel", files={"image": ("a.png", image)},
                                     timeout=120)
            record(f"infer done {response.status_code}")

        worker = threading.Thread(target=infer)
        worker.start()
        while "infer sent" not in events:
            time.sleep(0.01)
        time.sleep(0.5)  # let the worker read the upload and start the forward pass
        for _ in range(3):
            response = requests.get(base + "/healthz", timeout=60)
            record(f"health {response.status_code}")
        worker.join(120)
    assert events[-1] == "infer done 200", events
    assert events[1:4] == ["health 200"] * 3, f"health waited for inference: {events}"


def test_sigterm_lets_in_flight_requests_finish(slow_model: Path, tmp_path: Path) -> None:
    """SIGTERM while three slow inferences are in flight: all complete, then the server exits.
    (TensorFlow: gunicorn's shutdown is the subject, and the model is slow to gate.)"""
    events: list[str] = []
    with gunicorn(slow_model, tmp_path / "gunicorn.log", GRACEFUL_TIMEOUT="60",
                  RUNTIME="tensorflow") as (base, process):
        image = encode(Image.new("RGB", (1024, 1024), "white"))

        def infer() -> int:
            response = requests.post(base + "/predictlabel", files={"image": ("a.png", image)},
                                     timeout=120)
            events.append("infer done")
            return response.status_code

        with ThreadPoolExecutor(3) as pool:
            futures = [pool.submit(infer) for _ in range(3)]
            time.sleep(1.0)  # all three uploads are read; the first batch is computing
            process.terminate()
            events.append("sigterm sent")
            statuses = [f.result(180) for f in futures]
        process.wait(120)
        events.append("server exited")
    assert statuses == [200] * 3
    assert events == ["sigterm sent"] + ["infer done"] * 3 + ["server exited"]


def test_a_stopped_server_leaves_no_folders_behind(bright_model: Path, tmp_path: Path) -> None:
    """The metrics and shared-state folders gunicorn.conf.py makes go with the master."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    made = ("h5serve-metrics.", "h5serve-state.")
    with gunicorn(bright_model, tmp_path / "gunicorn.log", TMPDIR=str(scratch)):
        assert sorted(p.name[:p.name.index(".") + 1] for p in scratch.iterdir()
                      if p.name.startswith(made)) == sorted(made)
    assert not [p for p in scratch.iterdir() if p.name.startswith(made)]
