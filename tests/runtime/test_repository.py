"""The model repository: several models and versions side by side, and roll-outs.

The repository here holds the bundled model as a flat file and a toy brightness model in
TF Serving's layout, whose version 2 answers the opposite of version 1, so each answer
shows which version gave it.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from flask import Flask
from helpers import encode
from prometheus_client import REGISTRY
from toy_models import brightness_model

from app.config import DEFAULT_MODEL_PATH, Settings
from app.runtime.errors import UnknownModel
from app.runtime.repository import ModelRepository
from app.runtime.repository_layout import LayoutError, VersionPolicy, scan
from app.runtime.rollout import Rollout

WHITE = encode(np.full((28, 28), 255, np.uint8))


def _white() -> dict[str, tuple[io.BytesIO, str]]:
    return {"image": (io.BytesIO(WHITE), "white.png")}


def _bright_version(folder: Path, version: int) -> Path:
    """Version 1 says "bright" for a white image, version 2 "dark"."""
    target = folder / str(version)
    target.mkdir(parents=True)
    return brightness_model(target / "model.h5", (28, 28, 1), gain=20.0 if version == 1
                            else -20.0)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("repository")
    shutil.copy(DEFAULT_MODEL_PATH, root / "fashion.h5")
    shutil.copy(DEFAULT_MODEL_PATH.with_suffix(".json"), root / "fashion.json")
    for version in (1, 2):
        _bright_version(root / "bright", version)
    (root / "bright" / "bright.json").write_text(json.dumps({
        "labels": ["dark", "bright"], "versions": {"specific": [1, 2]},
        "version_labels": {"stable": 1, "canary": 2}}))
    return root


@pytest.fixture(scope="module")
def two_models(repo: Path) -> Flask:
    from app import create_app

    app = create_app({"MODEL_REPOSITORY": repo, "DEFAULT_MODEL": "fashion",
                      "MODEL_POLL_SECONDS": 0})
    app.testing = True
    return app


def test_the_layout_is_read_with_policies_and_labels(repo: Path) -> None:
    sources, problems = scan(repo)
    assert problems == [] and set(sources) == {"fashion", "bright"}
    assert list(sources["fashion"].wanted()) == [1]
    assert list(sources["bright"].wanted()) == [1, 2]
    assert sources["bright"].version_labels == {"stable": 1, "canary": 2}


@pytest.mark.parametrize(("value", "available", "served"), [
    (None, [1, 2, 3], [3]),
    ("latest", [3, 1], [3]),
    ({"latest": 2}, [1, 2, 3], [2, 3]),
    ("all", [2, 1], [1, 2]),
    ({"specific": [1, 3]}, [1, 2, 3], [1, 3]),
    ({"specific": [4]}, [1, 2], []),
])
def test_version_policies(value: object, available: list[int], served: list[int]) -> None:
    assert VersionPolicy.parse(value, "card").select(available) == served


@pytest.mark.parametrize("value", [{"latest": 0}, {"specific": []}, "newest", {"latest": True}])
def test_a_bad_policy_names_the_card(value: object) -> None:
    with pytest.raises(LayoutError, match='card: "versions" must be'):
        VersionPolicy.parse(value, "card")


def test_the_seed_routes_serve_the_default_model_unchanged(two_models: Flask) -> None:
    response = two_models.test_client().post("/predictlabel", data={"image": (
        (DEFAULT_MODEL_PATH.parent.parent / "static/examples/ankle_boot.png").open("rb"),
        "a.png")})
    assert response.status_code == 200
    assert list(response.get_json()) == ["success", "most_probable_label", "predictions"]
    assert response.get_json()["most_probable_label"] == "Ankle boot"
    assert (response.headers["X-Model-Name"], response.headers["X-Model-Version"]) == \
        ("fashion", "1")


@pytest.mark.parametrize(("path", "version", "label"), [
    ("/models/bright/predictlabel", "2", "dark"),  # latest
    ("/models/bright/versions/1/predictlabel", "1", "bright"),
    ("/models/bright/versions/2/predictlabel", "2", "dark"),
])
def test_each_model_and_version_by_its_own_route(two_models: Flask, path: str, version: str,
                                                 label: str) -> None:
    response = two_models.test_client().post(path, data=_white())
    assert response.status_code == 200, response.get_json()
    assert response.headers["X-Model-Version"] == version
    assert response.get_json()["most_probable_label"] == label


@pytest.mark.parametrize(("path", "version", "bright"), [
    ("/v1/models/bright:predict", "2", 0.0),
    ("/v1/models/bright/versions/1:predict", "1", 1.0),
    ("/v1/models/bright/labels/stable:predict", "1", 1.0),
    ("/v1/models/bright/labels/canary:predict", "2", 0.0),
])
def test_tf_serving_versions_and_labels(two_models: Flask, path: str, version: str,
                                        bright: float) -> None:
    response = two_models.test_client().post(path, json={"instances": [[[[1.0]] * 28] * 28]})
    assert response.status_code == 200, response.get_json()
    assert response.headers["X-Model-Version"] == version
    assert round(response.get_json()["predictions"][0][1]) == bright


def test_tf_serving_status_lists_every_version(two_models: Flask) -> None:
    client = two_models.test_client()
    status = client.get("/v1/models/bright").get_json()["model_version_status"]
    assert [(s["version"], s["state"]) for s in status] == [("2", "AVAILABLE"),
                                                            ("1", "AVAILABLE")]
    one = client.get("/v1/models/bright/labels/stable").get_json()["model_version_status"]
    assert [s["version"] for s in one] == ["1"]
    missing = client.get("/v1/models/bright/versions/7")
    assert missing.status_code == 404
    assert missing.get_json()["error"].startswith("Servable not found for request: ")


def test_v2_versions_metadata_and_the_repository_index(two_models: Flask) -> None:
    client = two_models.test_client()
    meta = client.get("/v2/models/bright").get_json()
    assert meta["versions"] == ["1", "2"]
    def white(version: str) -> dict[str, object]:
        name = client.get(f"/v2/models/bright/versions/{version}").get_json()["inputs"][0]
        return {"inputs": [{"name": name["name"], "datatype": "FP32",
                            "shape": [1, 28, 28, 1], "data": [1.0] * 784}]}

    answer = client.post("/v2/models/bright/versions/1/infer", json=white("1")).get_json()
    assert answer["model_version"] == "1" and round(answer["outputs"][0]["data"][1]) == 1
    latest = client.post("/v2/models/bright/infer", json=white("2")).get_json()
    assert latest["model_version"] == "2"
    assert client.get("/v2/models/fashion/versions/1/ready").status_code == 200
    assert client.get("/v2/models/fashion/versions/2/ready").status_code == 404
    index = client.post("/v2/repository/index").get_json()
    assert [(i["name"], i["version"], i["state"]) for i in index] == [
        ("bright", "1", "READY"), ("bright", "2", "READY"), ("fashion", "1", "READY")]


def test_the_second_model_answers_through_every_protocol(two_models: Flask) -> None:
    """Not the default model: each protocol must reach "bright" (latest: version 2, which
    says "dark" for a white image), and say so."""
    client = two_models.test_client()
    white_rows = [[255] * 784]
    white_tensor = [[[[1.0]] * 28] * 28]
    label = client.post("/models/bright/predictlabel", data=_white())
    rows = client.post("/models/bright/predict", json={"input": white_rows})
    tf_predict = client.post("/v1/models/bright:predict", json={"instances": white_tensor})
    tf_meta = client.get("/v1/models/bright/metadata")
    v2_meta = client.get("/v2/models/bright")
    v2_infer = client.post("/v2/models/bright/infer", json={"inputs": [{
        "name": v2_meta.get_json()["inputs"][0]["name"], "datatype": "FP32",
        "shape": [1, 28, 28, 1], "data": [1.0] * 784}]})
    for answer in (label, rows, tf_predict, tf_meta, v2_meta, v2_infer):
        assert answer.status_code == 200, (answer.request.path, answer.get_json())
        assert (answer.headers["X-Model-Name"], answer.headers["X-Model-Version"]) == \
            ("bright", "2"), answer.request.path
    assert label.get_json()["most_probable_label"] == "dark"
    assert round(rows.get_json()[0][0]) == 1
    assert round(tf_predict.get_json()["predictions"][0][0]) == 1
    spec = tf_meta.get_json()["model_spec"]
    signature = tf_meta.get_json()["metadata"]["signature_def"]["signature_def"]
    assert spec["name"] == "bright" and spec["version"] == "2"
    [tensor] = signature["serving_default"]["inputs"].values()
    assert [d["size"] for d in tensor["tensor_shape"]["dim"]] == ["-1", "28", "28", "1"]
    assert v2_meta.get_json()["name"] == "bright"
    body = v2_infer.get_json()
    assert (body["model_name"], body["model_version"]) == ("bright", "2")
    assert round(body["outputs"][0]["data"][0]) == 1


def test_the_upload_page_answers_from_the_chosen_model_without_javascript(
        two_models: Flask) -> None:
    """The page's model links carry ?model=, and its form posts back to that address."""
    client = two_models.test_client()
    page = client.get("/?model=bright").get_data(as_text=True)
    action = re.search(r'<form[^>]* action="([^"]+)"', page)
    assert action and action.group(1) == "/?model=bright"
    answer = client.post(action.group(1), data=_white())
    assert answer.status_code == 200 and answer.headers["X-Model-Name"] == "bright"
    text = answer.get_data(as_text=True)
    assert "Model <strong>bright</strong>" in text
    assert '<p class="top-label" id="top-label">dark</p>' in text


def test_unknown_models_are_404_in_each_protocols_shape(two_models: Flask) -> None:
    client = two_models.test_client()
    seed = client.post("/models/nope/predictlabel", data=_white())
    assert seed.status_code == 404 and seed.get_json()["error"]["code"] == "model_not_found"
    assert "served: " in seed.get_json()["error"]["message"]
    v2 = client.get("/v2/models/nope")
    assert v2.status_code == 404 and "unknown model 'nope'" in v2.get_json()["error"]
    label = client.post("/v1/models/bright/labels/beta:predict", json={"instances": [[0]]})
    assert label.status_code == 404 and "label 'beta'" in label.get_json()["error"]


def test_models_lists_what_is_served(two_models: Flask) -> None:
    listed = two_models.test_client().get("/models").get_json()
    assert listed["default"] == "fashion"
    assert {m["name"]: m["versions"] for m in listed["models"]} == {"bright": [1, 2],
                                                                    "fashion": [1]}
    page = two_models.test_client().get("/?model=bright").get_data(as_text=True)
    assert 'aria-current="page">bright<' in page and "/models/bright/predictlabel" in page


# Roll-outs, one look at the disk at a time (the watcher calls the same `reconcile`).

@pytest.fixture()
def rollout(tmp_path: Path) -> tuple[Rollout, ModelRepository, Path]:
    _bright_version(tmp_path / "bright", 1)
    (tmp_path / "bright" / "bright.json").write_text(json.dumps({"labels": ["dark", "bright"]}))
    settings = Settings.load({"MODEL_REPOSITORY": tmp_path, "MODEL_POLL_SECONDS": 0,
                              "MAX_MODELS": 3})
    models = ModelRepository(settings)
    watcher = Rollout(models, settings)
    watcher.start()
    return watcher, models, tmp_path


def _served(models: ModelRepository) -> dict[str, list[int]]:
    return {name: sorted(m.versions) for name, m in models.table.items()}


def test_a_new_version_is_loaded_once_it_stops_changing_then_the_old_one_drains(
        rollout) -> None:
    watcher, models, root = rollout
    old = models.acquire("bright")  # a request still running on version 1
    _bright_version(root / "bright", 2)
    watcher.reconcile()
    assert _served(models) == {"bright": [1]}, "first look: the file might still be copying"
    (root / "bright" / "2" / "model.h5").touch()  # still changing
    watcher.reconcile()
    assert _served(models) == {"bright": [1]}
    threading.Timer(0.5, models.release, [old]).start()  # that request ends in 0.5 s
    started = time.monotonic()
    watcher.reconcile()
    assert _served(models) == {"bright": [2]}
    assert time.monotonic() - started >= 0.5, "version 1 was closed only once drained"
    assert models.states[("bright", 1)].state == "END" and not old.batcher.alive
    assert models.acquire("bright").version == 2


def _not_a_model(folder: Path) -> None:
    (folder / "model.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 500)


def _five_channels(folder: Path) -> None:
    brightness_model(folder / "model.h5", (28, 28, 5))


def _fails_its_self_check(folder: Path) -> None:
    """Its own card's example is white and labelled "bright"; this version says "dark"."""
    brightness_model(folder / "model.h5", (28, 28, 1), gain=-20.0)
    (folder / "examples").mkdir()
    (folder / "examples" / "white.png").write_bytes(WHITE)
    (folder / "model.json").write_text(json.dumps({
        "labels": ["dark", "bright"], "examples": [{"file": "white.png", "label": "bright"}]}))


@pytest.mark.parametrize(("make", "reason"), [
    (_not_a_model, "bright/2/model.h5"),
    (_five_channels, "no 1- or 3-channel axis"),
    (_fails_its_self_check, "self-check failed on 1 of 1 examples (white.png: dark, "
                            "expected bright)"),
])
def test_a_broken_version_is_refused_and_the_old_one_keeps_serving(
        rollout, caplog: pytest.LogCaptureFixture, make, reason: str) -> None:
    watcher, models, root = rollout
    failures = ("h5serve_model_load_failures_total", {"model": "bright", "version": "2"})
    before = REGISTRY.get_sample_value(*failures) or 0.0
    (root / "bright" / "2").mkdir()
    make(root / "bright" / "2")
    watcher.reconcile()
    watcher.reconcile()
    assert _served(models) == {"bright": [1]}
    state = models.states[("bright", 2)]
    assert state.state == "END" and reason in state.error
    assert "model bright version 2 refused" in caplog.text
    assert "still serving version 1" in caplog.text
    assert REGISTRY.get_sample_value(*failures) == before + 1
    caplog.clear()
    watcher.reconcile()
    assert "refused" not in caplog.text, "an unchanged broken file is not retried"
    assert REGISTRY.get_sample_value(*failures) == before + 1


def test_a_removed_model_is_unloaded_and_then_unknown(rollout) -> None:
    watcher, models, root = rollout
    _bright_version(root / "other", 1)
    watcher.reconcile()
    watcher.reconcile()
    assert _served(models) == {"bright": [1], "other": [1]}
    shutil.rmtree(root / "other")
    watcher.reconcile()
    assert _served(models) == {"bright": [1]}
    with pytest.raises(UnknownModel):
        models.acquire("other")


def test_max_models_counts_what_is_served_so_a_new_version_still_replaces_an_old_one(
        rollout) -> None:
    watcher, models, root = rollout
    for name in ("a", "b", "c"):
        _bright_version(root / name, 1)
    watcher.reconcile()
    watcher.reconcile()
    assert sum(len(m.versions) for m in models.table.values()) == 3
    refused = [s.error for s in models.states.values() if s.state == "END"]
    assert refused == ["MAX_MODELS=3 versions are served already; raise MAX_MODELS if "
                       "memory allows"]
    _bright_version(root / "bright", 2)  # at the limit: a roll-out replaces version 1
    watcher.reconcile()
    watcher.reconcile()
    assert _served(models) == {"a": [1], "b": [1], "bright": [2]}
    assert models.states[("bright", 2)].state == "AVAILABLE"
    (root / "bright" / "bright.json").write_text(json.dumps({"versions": "all"}))
    watcher.reconcile()  # serving version 1 again beside 2 would be a fourth
    assert _served(models) == {"a": [1], "b": [1], "bright": [2]}
    assert models.states[("bright", 1)].error.startswith("MAX_MODELS=3 versions are served")


def _version_of(models: ModelRepository, **asked: object) -> int:
    service = models.acquire("bright", **asked)
    models.release(service)
    return service.version


def test_label_and_policy_changes_take_effect_at_the_next_look(rollout) -> None:
    watcher, models, root = rollout
    card = root / "bright" / "bright.json"

    def write_card(versions: object, labels: dict[str, int]) -> None:
        card.write_text(json.dumps({"labels": ["dark", "bright"], "versions": versions,
                                    "version_labels": labels}))

    _bright_version(root / "bright", 2)
    write_card({"specific": [1, 2]}, {"stable": 1, "canary": 2})
    watcher.reconcile()
    watcher.reconcile()
    assert _served(models) == {"bright": [1, 2]} and _version_of(models, label="stable") == 1
    write_card({"specific": [1, 2]}, {"stable": 2})  # version 2 promoted, canary gone
    watcher.reconcile()
    assert _version_of(models, label="stable") == 2
    with pytest.raises(UnknownModel, match="label 'canary'"):
        models.acquire("bright", label="canary")
    write_card("latest", {"stable": 2})
    watcher.reconcile()
    assert _served(models) == {"bright": [2]}
    write_card("all", {"stable": 1})
    watcher.reconcile()  # version 1 sat on disk unchanged: no second look needed
    assert _served(models) == {"bright": [1, 2]} and _version_of(models, label="stable") == 1


def test_deleting_the_newest_version_hands_over_to_the_previous_without_a_gap(
        rollout) -> None:
    """latest 1 serving version 2; `rm -r bright/2` rolls back to 1 with no 404 between."""
    watcher, models, root = rollout
    _bright_version(root / "bright", 2)
    watcher.reconcile()
    watcher.reconcile()
    assert _served(models) == {"bright": [2]}
    gaps: list[str] = []
    looking = threading.Event()

    def ask() -> None:
        while not looking.is_set():
            try:
                _version_of(models)
            except UnknownModel as exc:
                gaps.append(str(exc))

    asker = threading.Thread(target=ask)
    asker.start()
    try:
        shutil.rmtree(root / "bright" / "2")
        watcher.reconcile()
        assert _served(models) == {"bright": [1]}, "version 1 sat unchanged: loaded at once"
        _bright_version(root / "bright", 2)
        watcher.reconcile()
        watcher.reconcile()
        (root / "bright" / "1" / "model.h5").touch()  # version 1 changing as 2 goes
        shutil.rmtree(root / "bright" / "2")
        watcher.reconcile()
        assert _served(models) == {"bright": [2]}, "deleted, served from memory meanwhile"
        white = np.full((1, 28, 28, 1), 255, np.uint8)
        assert models.table["bright"].latest.classify_pixels(white).argmax() == 0  # "dark"
        watcher.reconcile()
        assert _served(models) == {"bright": [1]}
    finally:
        looking.set()
        asker.join(30)
    assert gaps == []


def test_a_versions_own_card_wins_over_the_models_card(rollout) -> None:
    watcher, models, root = rollout
    (root / "bright" / "bright.json").write_text(json.dumps({"labels": ["dark", "bright"],
                                                             "versions": "all"}))
    version_two = _bright_version(root / "bright", 2)
    version_two.with_suffix(".json").write_text(json.dumps({"labels": ["low", "high"]}))
    watcher.reconcile()
    watcher.reconcile()
    assert models.table["bright"].versions[1].labels == ("dark", "bright")
    assert models.table["bright"].versions[2].labels == ("low", "high")


def test_model_path_wins_over_the_repository(repo: Path) -> None:
    settings = Settings.load({"MODEL_PATH": repo / "bright" / "1" / "model.h5",
                              "MODEL_REPOSITORY": repo, "MODEL_POLL_SECONDS": 0})
    models = ModelRepository(settings)
    Rollout(models, settings).start()
    assert _served(models) == {"model": [1]}, "one file, named as today (its stem)"


def test_one_busy_model_does_not_starve_another(rollout) -> None:
    """Model "busy" stuck mid-batch with a full queue: it alone answers 503."""
    from app.runtime.errors import Overloaded

    watcher, models, root = rollout
    _bright_version(root / "busy", 1)
    watcher.reconcile()
    watcher.reconcile()
    busy, free = models.acquire("busy"), models.acquire("bright")
    release, running = threading.Event(), threading.Event()
    forward = busy.batcher._predict
    busy.batcher._predict = lambda rows: (running.set(), release.wait(30)) and forward(rows)
    white = np.full((1, 28, 28, 1), 255, np.uint8)
    stuck = [threading.Thread(target=busy.classify_pixels, args=(white,))
             for _ in range(busy.settings.MAX_QUEUE_SIZE + 1)]  # one running, the rest queued
    stuck[0].start()
    assert running.wait(30)  # the first alone in the model: the rest cannot join its batch
    for thread in stuck[1:]:
        thread.start()
    try:
        _wait_until(lambda: len(busy.batcher._jobs) == busy.settings.MAX_QUEUE_SIZE)
        with pytest.raises(Overloaded):
            busy.classify_pixels(white)
        assert free.classify_pixels(white).argmax() == 1  # "bright", at once
    finally:
        release.set()
        for thread in stuck:
            thread.join(30)


def test_loading_beside_other_models_running_batchers_keeps_every_answer_right(
        rollout, tmp_path: Path) -> None:
    """TensorFlow objects are not thread-safe, so check the one overlap a roll-out makes:
    a version loading (Keras reads the file, builds and traces the graph, warms up,
    self-checks) in one thread while other models' batcher threads run forward passes and
    explanations. Every answer must still be right, and every load succeed."""
    watcher, models, root = rollout
    _bright_version(root / "dim", 2)  # version 2 says "dark" for a white image
    watcher.reconcile()
    watcher.reconcile()
    bright, dim = models.acquire("bright"), models.acquire("dim")
    files = [_bright_version(tmp_path / "fresh", v) for v in range(1, 7)]
    white = np.full((8, 28, 28, 1), 255, np.uint8)
    answers: list[int] = []
    errors: list[str] = []
    stop = threading.Event()

    def classify(service, expected: int, rows: int) -> None:
        while not stop.is_set():
            try:
                got = service.classify_pixels(white[:rows]).argmax(axis=1)
                assert (got == expected).all(), got
                answers.append(rows)
            except Exception as exc:  # any failure is the finding
                errors.append(repr(exc))

    def explain() -> None:
        batch = bright.spec.to_model_input(white[:1])
        while not stop.is_set():
            try:
                [heatmap] = bright.explain_model_input(batch, np.array([[0.0, 1.0]]), [None])
                assert np.isfinite(heatmap.heatmap).all()
            except Exception as exc:  # any failure is the finding
                errors.append(repr(exc))

    clients = [threading.Thread(target=classify, args=(s, e, r)) for s, e, r in
               [(bright, 1, 1), (bright, 1, 5), (dim, 0, 1), (dim, 0, 8)]]
    clients.append(threading.Thread(target=explain))
    for client in clients:
        client.start()
    try:
        _wait_until(lambda: len(answers) > 20)
        for version, path in enumerate(files, 1):
            fresh = models.load("fresh", version, path, None)
            assert fresh.classify_pixels(white[:1]).argmax() == (version == 1)
            fresh.close()
        served = len(answers)
        _wait_until(lambda: len(answers) > served + 20)  # still answering after the loads
    finally:
        stop.set()
        for client in clients:
            client.join(30)
        models.release(bright)
        models.release(dim)
    assert errors == []


def _wait_until(predicate, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_metrics_carry_model_and_version(two_models: Flask) -> None:
    client = two_models.test_client()
    client.post("/models/bright/versions/1/predictlabel", data=_white())
    text = client.get("/metrics").get_data(as_text=True)
    assert re.search(r'h5serve_batch_size_count\{model="bright",'
                     r'runtime="(tensorflow|onnxruntime|openvino)",version="1"\}', text)
    assert 'h5serve_model_info{file="model.h5",keras=' in text and 'model="bright"' in text


def _requests(endpoint: str, status: str, model: str = "", version: str = "") -> float:
    labels = {"endpoint": endpoint, "method": "POST", "status": status, "protocol": "http",
              "model": model, "version": version}
    return REGISTRY.get_sample_value("h5serve_requests_total", labels) or 0.0


def test_request_metrics_tell_one_models_503s_from_anothers(
        two_models: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    from app.runtime.errors import Overloaded

    def overloaded(*_: object, **__: object) -> None:
        raise Overloaded("The server is at capacity; retry in a moment.", retry_after_s=1)

    models = two_models.extensions["h5serve"].models
    monkeypatch.setattr(models.table["bright"].versions[2], "classify", overloaded)
    route = "/models/<name>/predictlabel"
    before = {(m, v, s): _requests(route, s, m, v)
              for m, v, s in [("bright", "2", "503"), ("fashion", "1", "200"), ("", "", "404")]}
    client = two_models.test_client()
    assert client.post("/models/bright/predictlabel", data=_white()).status_code == 503
    assert client.post("/models/fashion/predictlabel", data=_white()).status_code == 200
    assert client.post("/models/nope/predictlabel", data=_white()).status_code == 404
    assert {k: _requests(route, k[2], k[0], k[1]) - n for k, n in before.items()} == {
        ("bright", "2", "503"): 1, ("fashion", "1", "200"): 1, ("", "", "404"): 1}
    seconds = REGISTRY.get_sample_value("h5serve_request_duration_seconds_count", {
        "endpoint": route, "protocol": "http", "model": "bright", "version": "2"})
    assert seconds and seconds >= 1
    client.get("/healthz")
    assert REGISTRY.get_sample_value("h5serve_requests_total", {
        "endpoint": "/healthz", "method": "GET", "status": "200", "protocol": "http",
        "model": "", "version": ""}) >= 1


ADMIN, USER = "ops-key-0123456789abcdef", "alice-key-0123456789abcdef"


@pytest.fixture()
def admin_app(tmp_path: Path) -> Flask:
    from app import create_app

    _bright_version(tmp_path / "models" / "bright", 1)
    shutil.copy(DEFAULT_MODEL_PATH, tmp_path / "models" / "fashion.h5")
    keys = tmp_path / "api-keys"
    keys.write_text(f"ops {ADMIN} admin\nalice {USER}\n")
    app = create_app({"MODEL_REPOSITORY": tmp_path / "models", "MODEL_POLL_SECONDS": 0,
                      "AUTH": "keys", "API_KEYS_FILE": keys, "CORS_ORIGINS": ""})
    app.testing = True
    return app


def test_repository_unload_and_load_need_an_admin_key(admin_app: Flask) -> None:
    client = admin_app.test_client()
    unload = "/v2/repository/models/bright/unload"
    assert client.post(unload).status_code == 401
    refused = client.post(unload, headers={"X-API-Key": USER})
    assert refused.status_code == 403 and "marked admin" in refused.get_json()["error"]
    assert client.post(unload, headers={"X-API-Key": ADMIN}).status_code == 200
    user = {"X-API-Key": USER}
    assert client.post("/models/bright/predictlabel", data=_white(),
                       headers=user).status_code == 404
    assert client.post("/models/fashion/predictlabel", data=_white(),
                       headers=user).status_code == 200
    assert client.post("/v2/repository/models/bright/load",
                       headers={"X-API-Key": ADMIN}).status_code == 200
    again = client.post("/models/bright/predictlabel", data=_white(), headers=user)
    assert again.status_code == 200 and again.get_json()["most_probable_label"] == "1"
    missing = client.post("/v2/repository/models/nope/load", headers={"X-API-Key": ADMIN})
    assert missing.status_code == 404 and list(missing.get_json()) == ["error", "request_id"]


def test_a_load_request_serves_a_model_copied_in_since_the_last_look(
        admin_app: Flask, tmp_path: Path) -> None:
    """Polling off: the request itself looks twice (the files must have stopped changing)."""
    staging = tmp_path / "models" / ".cats"
    _bright_version(staging, 1)
    staging.rename(tmp_path / "models" / "cats")
    client = admin_app.test_client()
    loaded = client.post("/v2/repository/models/cats/load", headers={"X-API-Key": ADMIN})
    assert loaded.status_code == 200, loaded.get_json()
    answer = client.post("/models/cats/predictlabel", data=_white(),
                         headers={"X-API-Key": USER})
    assert answer.status_code == 200 and answer.headers["X-Model-Name"] == "cats"


def test_without_keys_the_repository_cannot_be_changed(two_models: Flask) -> None:
    response = two_models.test_client().post("/v2/repository/models/bright/unload")
    assert response.status_code == 403 and "AUTH=keys" in response.get_json()["error"]


def test_an_unload_reaches_the_other_workers_through_the_shared_file(tmp_path: Path) -> None:
    from app.runtime.hidden_models import HiddenModels

    one, other = HiddenModels(str(tmp_path)), HiddenModels(str(tmp_path))
    one.set("cats", True)
    assert other.names() == {"cats"}
    other.set("cats", False)
    assert one.names() == set()
