"""Serving many kinds of models with no code per model: only their shapes and cards."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import encode, upload
from PIL import Image
from toy_models import (
    brightness_model,
    keras224_mlp,
    keras224_reference,
    red_vs_blue_sigmoid,
    write_card,
)

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="session")
def cats_dogs(models_dir: Path) -> Path:
    path = red_vs_blue_sigmoid(models_dir / "cats_vs_dogs.h5")
    write_card(path, labels=["CAT", "DOG"])
    return path


@pytest.mark.parametrize(("color", "label"), [((220, 20, 30), "DOG"), ((20, 30, 220), "CAT")])
def test_binary_sigmoid_rgb_model(make_app, cats_dogs, color, label) -> None:
    client = make_app(cats_dogs).test_client()
    photo = encode(Image.new("RGB", (640, 480), color), "JPEG", quality=90)
    body = upload(client, photo, filename="pet.jpg").get_json()
    assert body["most_probable_label"] == label
    assert [p["label"] for p in body["predictions"]] == ["CAT", "DOG"]
    p_dog = body["predictions"][1]["probability"]
    assert body["predictions"][0]["probability"] == pytest.approx(1 - p_dog, abs=1e-6)
    model = client.get("/model").get_json()
    assert model["output"] == "sigmoid (binary)"
    assert model["input"]["model_input_shape"] == [None, 150, 150, 3]


def test_binary_model_predict_rows_give_two_probabilities(make_app, cats_dogs) -> None:
    client = make_app(cats_dogs).test_client()
    red = np.zeros((150, 150, 3), np.uint8)
    red[..., 0] = 255
    body = client.post("/predict", json={"input": [red.tolist()]}).get_json()
    assert len(body[0]) == 2 and body[0][1] > 0.99


def _dark_digit_on_white() -> bytes:
    """A black stroke on white paper: what a phone photo of a digit looks like."""
    pixels = np.full((280, 280), 250, np.uint8)
    pixels[60:220, 120:160] = 5
    return encode(pixels)


@pytest.mark.parametrize(("invert", "label"), [(True, "dark"), ("auto", "dark"), (False, "bright")])
def test_flat_input_mlp_with_invert(make_app, models_dir, invert, label) -> None:
    """A 784-vector MLP trained on light-on-dark digits: paper photos must be inverted."""
    path = brightness_model(models_dir / f"flat_{invert}.h5", (784,))
    write_card(path, labels=["dark", "bright"], invert=invert)
    client = make_app(path).test_client()
    assert client.get("/model").get_json()["input"]["height"] == 28
    body = upload(client, _dark_digit_on_white()).get_json()
    assert body["most_probable_label"] == label


def test_auto_invert_leaves_dark_background_images_alone(make_app, models_dir) -> None:
    path = brightness_model(models_dir / "flat_auto.h5", (784,))
    write_card(path, labels=["dark", "bright"], invert="auto")
    pixels = np.zeros((28, 28), np.uint8)
    pixels[4:24, 4:24] = 255  # a big light object on black: mean > half
    body = upload(make_app(path).test_client(), encode(pixels)).get_json()
    assert body["most_probable_label"] == "bright"


def test_channels_first_model(make_app, models_dir) -> None:
    path = brightness_model(models_dir / "chw.h5", (3, 32, 32))
    client = make_app(path).test_client()
    assert client.get("/model").get_json()["input"]["layout"] == "chw"
    assert upload(client, encode(Image.new("RGB", (50, 50), "white"))).get_json()[
        "most_probable_label"] == "1"
    rows = np.zeros((1, 3, 32, 32)).tolist()  # the model's own (C, H, W) layout
    assert np.argmax(client.post("/predict", json={"input": rows}).get_json()[0]) == 0


def test_open_spatial_dims_take_their_size_from_the_card(make_app, models_dir) -> None:
    path = brightness_model(models_dir / "any_size.h5", (None, None, 3))
    write_card(path, image_size=[64, 48])
    client = make_app(path).test_client()
    spec = client.get("/model").get_json()["input"]
    assert (spec["height"], spec["width"]) == (64, 48)
    assert upload(client, encode(Image.new("RGB", (10, 10), "white"))).status_code == 200


def test_symmetric_scaling_from_the_card(make_app, models_dir) -> None:
    """With [-1, 1] scaling, mid-gray maps to 0, below the toy's 0.5 threshold: "dark"."""
    path = brightness_model(models_dir / "symmetric.h5", (28, 28, 1))
    write_card(path, scale="symmetric")
    body = upload(make_app(path).test_client(), encode(Image.new("L", (28, 28), 190))).get_json()
    assert body["most_probable_label"] == "0"  # 190 -> 0.49 under [-1, 1]; 0.75 under unit


def test_legacy_keras_224_file_is_served_with_its_true_shape(make_app, models_dir) -> None:
    path = models_dir / "mnist_mlp_2018.h5"
    weights = keras224_mlp(path)
    client = make_app(path).test_client()
    model = client.get("/model").get_json()
    assert model["input"]["model_input_shape"] == [None, 784]
    assert model["versions"]["written_by_keras"] == "2.2.4"
    rows = np.random.default_rng(3).integers(0, 256, (5, 784))
    served = np.array(client.post("/predict", json={"input": rows.tolist()}).get_json())
    reference = keras224_reference(weights, rows.astype(np.float32) / 255)
    np.testing.assert_allclose(served, reference, atol=1e-5)
