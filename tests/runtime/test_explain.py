"""Explanations: heatmaps that point where the model looks, in the API, V1 and the page.

The region models decide on the left half of the image only (the weights that read the
right half are zero), so a faithful heatmap must put its mass there, whatever the image.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
import pytest
from helpers import encode, upload
from PIL import Image
from servers import ROOT
from toy_models import brightness_model, write_card

from app.runtime.explain import last_conv_layer

LABELS = ["left-a", "left-b", "left-c"]
EXAMPLES = ROOT / "static" / "examples"


def _left_half_only(kernel: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """Zero the weights of every feature whose image column is in the right half."""
    kernel = kernel.copy()
    kernel[columns >= 14] = 0.0
    return kernel


def _conv_region_model(path: Path, keras_module: str) -> Path:
    """A CNN (the convolutions nested one model deep) whose Dense head reads the left half."""
    keras = __import__(keras_module)
    layers = keras.layers
    inner = keras.Sequential([keras.Input((28, 28, 1)),
                              layers.Conv2D(6, 3, padding="same", activation="relu"),
                              layers.MaxPooling2D(2),
                              layers.Conv2D(8, 3, padding="same", activation="relu")],
                              name="features")
    inputs = keras.Input((28, 28, 1))
    dense = layers.Dense(3, activation="softmax")
    outputs = dense(layers.Flatten()(inner(inputs)))
    model = keras.Model(inputs, outputs)
    kernel, bias = dense.get_weights()
    columns = np.repeat(np.tile(np.arange(14) * 2, 14), 8)  # (y, x, channel) of 14x14x8
    dense.set_weights([_left_half_only(kernel, columns) * 20, bias])
    model.save(path)
    write_card(path, labels=LABELS, scale="unit")
    return path


def _dense_region_model(path: Path) -> Path:
    """No convolutions, a flat 784 input: the first Dense reads the left half only."""
    import keras

    hidden = keras.layers.Dense(16, activation="relu")
    head = keras.layers.Dense(3, activation="softmax")
    model = keras.Sequential([keras.Input((784,)), hidden, head])
    kernel, bias = hidden.get_weights()
    hidden.set_weights([_left_half_only(kernel, np.arange(784) % 28) * 5, bias + 0.1])
    model.save(path)
    write_card(path, labels=LABELS, scale="unit")
    return path


def _noise(seed: int, size: int = 28) -> bytes:
    rng = np.random.default_rng(seed)
    return encode(rng.integers(0, 256, (size, size), dtype=np.uint8))


def _explain(client, data: bytes, path: str = "/explain", **kwargs: object):
    response = upload(client, data, path=path, **kwargs)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    return response.get_json()


@pytest.fixture(scope="module")
def region_models(models_dir: Path) -> dict[str, Path]:
    return {"keras": _conv_region_model(models_dir / "region_cnn.h5", "keras"),
            "tf_keras": _conv_region_model(models_dir / "region_cnn_tfk.h5", "tf_keras"),
            "dense": _dense_region_model(models_dir / "region_dense.h5")}


@pytest.mark.parametrize(("model", "method"), [("keras", "grad-cam"), ("tf_keras", "grad-cam"),
                                               ("dense", "saliency")])
def test_the_heatmap_lies_where_the_answer_comes_from(make_app, region_models, model: str,
                                                      method: str) -> None:
    client = make_app(region_models[model]).test_client()
    library = client.get("/model").get_json()["versions"]["keras_library"]
    assert library.startswith("tf_keras " if model == "tf_keras" else "keras ")
    for seed in range(4):
        body = _explain(client, _noise(seed))
        explanation = body["explanation"]
        assert explanation["method"] == method
        assert explanation["label"] == body["most_probable_label"]
        heatmap = np.array(explanation["heatmap"])
        assert heatmap.shape == (28, 28) and heatmap.min() >= 0 and heatmap.max() == 1
        assert heatmap[:, :14].sum() / heatmap.sum() >= 0.8, f"seed {seed}: mass not left"


def test_grad_cam_finds_the_last_convolution_inside_a_nested_model(region_models) -> None:
    import keras

    model = keras.models.load_model(region_models["keras"])
    layer = last_conv_layer(model)
    assert layer is not None and layer.filters == 8


def test_saliency_needs_no_gradient_left_in_a_saturated_softmax(make_app, models_dir) -> None:
    """gain 1000: the softmax says exactly 1.0, yet the logit's gradient still shows."""
    path = brightness_model(models_dir / "saturated.h5", (28, 28, 1), gain=1000.0)
    write_card(path, labels=["dark", "bright"])
    client = make_app(path).test_client()
    body = _explain(client, encode(np.full((28, 28), 250, np.uint8)))
    assert body["predictions"][1]["probability"] == 1.0
    assert np.array(body["explanation"]["heatmap"]).max() == 1.0


def test_the_bundled_models_heatmaps_show_structure(fashion_app) -> None:
    client = fashion_app.test_client()
    for example in sorted(EXAMPLES.glob("*.png")):
        body = _explain(client, example.read_bytes())
        explanation = body["explanation"]
        heatmap = np.array(explanation["heatmap"])
        assert explanation["method"] == "grad-cam" and explanation["layer"]
        assert heatmap.max() == 1.0 and heatmap.std() > 0.05, f"{example.name}: flat"
        overlay = Image.open(io.BytesIO(base64.b64decode(explanation["overlay_png"])))
        assert overlay.format == "PNG" and overlay.size == Image.open(example).size


def test_a_chosen_label_is_explained_and_an_unknown_one_is_a_400(fashion_app) -> None:
    client = fashion_app.test_client()
    data = (EXAMPLES / "bag.png").read_bytes()
    body = _explain(client, data, path="/explain?label=Trouser")
    assert body["most_probable_label"] == "Bag"
    assert body["explanation"]["label"] == "Trouser"
    assert body["explanation"]["probability"] == body["predictions"][1]["probability"]
    wrong = upload(client, data, path="/explain?label=Hat")
    assert wrong.status_code == 400 and wrong.get_json()["error"]["code"] == "unknown_label"
    assert "Ankle boot" in wrong.get_json()["error"]["message"], "it lists the labels"


def test_the_overlay_of_a_big_photo_is_capped(make_app, bright_model) -> None:
    client = make_app(bright_model, EXPLAIN_MAX_SIDE=256).test_client()
    photo = encode(np.random.default_rng(1).integers(0, 256, (1000, 2000, 3), np.uint8),
                   "JPEG", quality=80)
    body = _explain(client, photo, filename="photo.jpg")
    overlay = Image.open(io.BytesIO(base64.b64decode(body["explanation"]["overlay_png"])))
    assert overlay.size == (256, 128)


def test_per_model_routes_explain_too(fashion_app) -> None:
    client = fashion_app.test_client()
    for path in ("/models/fashion_mnist/explain", "/models/fashion_mnist/versions/1/explain"):
        assert _explain(client, (EXAMPLES / "coat.png").read_bytes(), path=path)[
            "most_probable_label"] == "Coat"


def test_kserve_v1_explain_answers_predictions_and_one_explanation_each(fashion_app) -> None:
    client = fashion_app.test_client()
    image = base64.b64encode((EXAMPLES / "sandal.png").read_bytes()).decode()
    pixels = np.asarray(Image.open(EXAMPLES / "dress.png").convert("L"), np.float32) / 255
    body = {"instances": [{"b64": image}, pixels.reshape(28, 28, 1).tolist()]}
    answer = client.post("/v1/models/fashion_mnist:explain", json=body)
    assert answer.status_code == 200, answer.get_data(as_text=True)[:300]
    predicted = client.post("/v1/models/fashion_mnist:predict", json=body).get_json()
    result = answer.get_json()
    assert result["predictions"] == predicted["predictions"]
    first, second = result["explanations"]
    assert first["label"] == "Sandal" and first["overlay_png"]
    assert second["overlay_png"] is None, "no image was sent, so nothing to draw on"
    assert np.array(second["heatmap"]).shape == (28, 28)
    chosen = client.post("/v1/models/fashion_mnist:explain?label=Bag", json=body).get_json()
    assert [e["label"] for e in chosen["explanations"]] == ["Bag", "Bag"]


def test_kserve_v1_explain_limits_the_instances(fashion_app) -> None:
    client = fashion_app.test_client()
    rows = np.zeros((9, 28, 28, 1)).tolist()
    answer = client.post("/v1/models/fashion_mnist:explain", json={"instances": rows})
    assert answer.status_code == 413 and "limit is 8" in answer.get_json()["error"]


def test_the_page_renders_the_overlay_without_javascript(fashion_app) -> None:
    client = fashion_app.test_client()
    page = client.post("/", data={"image": (io.BytesIO((EXAMPLES / "bag.png").read_bytes()),
                                            "bag.png"), "explain": "1"},
                       content_type="multipart/form-data")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'src="data:image/png;base64,' in html
    assert "Grad-CAM on layer" in html and "“Bag”" in html
    plain = client.post("/", data={"image": (io.BytesIO((EXAMPLES / "bag.png").read_bytes()),
                                             "bag.png")}, content_type="multipart/form-data")
    assert 'id="explanation" hidden' in plain.get_data(as_text=True)


def test_the_page_and_the_server_use_one_colour_scale(fashion_app) -> None:
    from app.runtime.overlay import COLOR_STOPS

    html = fashion_app.test_client().get("/").get_data(as_text=True)
    colors = html.split('data-colors="', 1)[1].split('"', 1)[0].replace("&#34;", '"')
    assert json.loads(colors) == json.loads(json.dumps(COLOR_STOPS))


@pytest.mark.slow  # a live gunicorn
def test_first_explanations_at_once_under_gunicorn_gevent(tmp_path: Path) -> None:
    """Eight first explanations at once in one gevent worker: they wait for one trace of
    the gradient graph (in real threads) and none hangs."""
    from concurrent.futures import ThreadPoolExecutor

    import requests
    from servers import gunicorn

    from app.config import DEFAULT_MODEL_PATH

    image = (EXAMPLES / "pullover.png").read_bytes()
    with gunicorn(DEFAULT_MODEL_PATH, tmp_path / "gunicorn.log") as (url, _):
        def explain(_: int) -> requests.Response:
            return requests.post(url + "/explain", files={"image": image}, timeout=30)

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(explain, range(8)))
        assert [a.status_code for a in answers] == [200] * 8
        assert {a.json()["explanation"]["label"] for a in answers} == {"Pullover"}
        assert requests.get(url + "/readyz", timeout=5).status_code == 200
