"""End to end on the real bundled model and real Fashion-MNIST test images."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import encode, upload
from servers import ROOT

from app.config import DEFAULT_MODEL_PATH

pytestmark = [pytest.mark.slow]

LABELS = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
          "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_uploads_classify_real_test_images(fashion_app, fashion_test_set, fmt) -> None:
    images, labels = fashion_test_set
    client = fashion_app.test_client()
    params = {"quality": 95} if fmt == "JPEG" else {}
    answers = []
    for image in images:
        response = upload(client, encode(image, fmt, **params), filename=f"x.{fmt.lower()}")
        assert response.status_code == 200
        answers.append(response.get_json()["most_probable_label"])
    accuracy = np.mean([answer == LABELS[y] for answer, y in zip(answers, labels, strict=True)])
    assert len(images) >= 200
    assert accuracy >= 0.90, f"{fmt} accuracy {accuracy:.3f}"


def test_raw_rows_agree_with_png_uploads(fashion_app, fashion_test_set) -> None:
    images, _ = fashion_test_set
    client = fashion_app.test_client()
    rows = client.post("/predict", json={"input": images.reshape(len(images), 784).tolist()})
    assert rows.status_code == 200
    from_rows = np.array(rows.get_json())
    assert from_rows.shape == (len(images), 10)
    for i in range(0, len(images), 15):
        body = upload(client, encode(images[i])).get_json()
        from_png = np.array([p["probability"] for p in body["predictions"]])
        np.testing.assert_allclose(from_png, from_rows[i], atol=1e-5)


def test_model_card_is_served(fashion_app) -> None:
    model = fashion_app.test_client().get("/model").get_json()
    assert model["labels"] == LABELS
    assert model["accuracy"] >= 0.91
    assert model["input"]["model_input_shape"] == [None, 28, 28, 1]


def test_every_example_on_the_page_is_right_with_90_percent(fashion_app) -> None:
    """The page's example strip is the first thing people click: no wrong or unsure answer."""
    from app.runtime.model_card import ModelCard

    card = ModelCard.for_model(DEFAULT_MODEL_PATH)
    assert len(card.examples) == len(LABELS)
    client = fashion_app.test_client()
    for example in card.examples:
        assert example.label in LABELS, f"{example.file} needs its true label in the card"
        data = (ROOT / "static" / "examples" / example.file).read_bytes()
        body = upload(client, data, filename=example.file).get_json()
        best = max(body["predictions"], key=lambda p: p["probability"])
        assert (body["most_probable_label"], best["label"]) == (example.label, example.label)
        assert best["probability"] >= 0.90, f"{example.file}: {best}"


def test_the_page_shows_people_no_repository_paths(fashion_app) -> None:
    page = fashion_app.test_client().get("/").get_data(as_text=True)
    text = page[page.index("<main"):page.index("</main>")]
    assert "A small convolutional network trained on Fashion-MNIST" in text
    assert not any(word in text for word in ("scripts/", ".py", "models/"))
