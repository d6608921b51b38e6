"""Real-world models without a card: preprocessing and output read from the model itself.

Each model here is really trained on Fashion-MNIST (a few thousand images, a few epochs),
so that feeding it pixels scaled the wrong way changes its answers: the served accuracy
on 300 test images shows whether the service read the model right.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from flask import Flask
from trained_models import LABELS, as_rgb32, card_with

from app.runtime.model_card import parse_labels_txt

pytestmark = [pytest.mark.slow]


def _served_accuracy(app: Flask, images: np.ndarray, labels: np.ndarray) -> float:
    rows = app.test_client().post("/predict", json={"input": images.reshape(len(images), -1)
                                                    .tolist()})
    assert rows.status_code == 200, rows.get_json()
    return float(np.mean(np.argmax(rows.get_json(), axis=1) == labels))


@pytest.mark.parametrize(("fixture", "scale", "why"), [
    ("rescaling_model", "raw", "is Rescaling(0.003922)"),
    ("tutorial_model", "raw", "(past augmentation) is Rescaling(0.003922)"),
    ("top_rescaling_model", "raw", "first layer (past augmentation) is Rescaling(0.003922)"),
    ("normalization_model", "raw", "Normalization adapted on 0-255 data"),
])
def test_a_model_that_prepares_its_own_input_gets_raw_pixels(
        request: pytest.FixtureRequest, make_app, fashion_test_set, fixture: str, scale: str,
        why: str) -> None:
    path = request.getfixturevalue(fixture)
    app = make_app(path)
    model = app.test_client().get("/model").get_json()
    assert model["preprocessing"]["scale"] == scale
    assert why in model["preprocessing"]["why"]
    right = _served_accuracy(app, *fashion_test_set)
    with card_with(path, scale="unit"):
        wrong = _served_accuracy(make_app(path), *fashion_test_set)
    assert right >= 0.70 and wrong < right - 0.3, (right, wrong)


def test_a_mobilenet_backbone_gets_its_own_preprocess_input_scaling(
        make_app, mobilenet_model, fashion_test_set) -> None:
    images, labels = fashion_test_set
    rgb = (as_rgb32(images), labels)
    app = make_app(mobilenet_model)
    why = app.test_client().get("/model").get_json()["preprocessing"]
    assert why["scale"] == "symmetric" and "mobilenetv2_0.35_32" in why["why"], why
    right = _served_accuracy(app, *rgb)
    with card_with(mobilenet_model, scale="unit"):
        wrong = _served_accuracy(make_app(mobilenet_model), *rgb)
    assert right >= 0.45 and wrong < right - 0.25, (right, wrong)


def test_several_sigmoid_units_are_independent_scores(make_app, multilabel_model,
                                                      fashion_test_set) -> None:
    app = make_app(multilabel_model)
    model = app.test_client().get("/model").get_json()
    assert model["output"] == "sigmoid (multi-label: independent scores)"
    images, labels = fashion_test_set
    rows = np.array(app.test_client().post(
        "/predict", json={"input": images[:50].reshape(50, -1).tolist()}).get_json())
    assert not np.allclose(rows.sum(axis=1), 1, atol=0.05), "scores, not a distribution"
    assert np.mean(rows.argmax(axis=1) == labels[:50]) >= 0.6


def test_a_linear_head_is_logits_with_softmax_applied(make_app, logits_model,
                                                      fashion_test_set) -> None:
    app = make_app(logits_model)
    assert app.test_client().get("/model").get_json()["output"] == "logits (softmax applied)"
    images, labels = fashion_test_set
    rows = np.array(app.test_client().post(
        "/predict", json={"input": images[:50].reshape(50, -1).tolist()}).get_json())
    np.testing.assert_allclose(rows.sum(axis=1), 1, atol=1e-5)
    assert np.mean(rows.argmax(axis=1) == labels[:50]) >= 0.6


def test_a_teachable_machine_export_answers_right_without_a_card(
        make_app, teachable_machine_model, fashion_test_set) -> None:
    """keras_model.h5 + labels.txt as TM writes them: the backbone is named "model1", so
    only its layers say it is MobileNetV2; they decide, labels.txt gives the names."""
    images, labels = fashion_test_set
    rgb = (as_rgb32(images), labels)
    app = make_app(teachable_machine_model)
    described = app.test_client().get("/model").get_json()
    assert described["labels"] == LABELS and described["labels_from"] == "labels.txt"
    why = described["preprocessing"]
    assert why["scale"] == "symmetric", why
    assert "MobileNetV2 (model1, recognised by its layers Conv1, bn_Conv1)" in why["why"]
    assert described["versions"]["keras_library"].startswith("tf_keras")
    right = _served_accuracy(app, *rgb)
    with card_with(teachable_machine_model, scale="unit"):
        wrong = _served_accuracy(make_app(teachable_machine_model), *rgb)
    assert right >= 0.45 and wrong < right - 0.25, (right, wrong)


def _small_cnn(*first: object) -> object:
    import keras
    from keras import layers

    return keras.Sequential([keras.Input((28, 28, 1)), *first, layers.Conv2D(4, 3),
                             layers.Flatten(), layers.Dense(3)])


@pytest.mark.parametrize(("labels_txt", "first", "scale", "why"), [
    ("0 Rock\n1 Paper\n2 Scissors\n", (), "symmetric", "Teachable Machine's numbered lines"),
    ("Rock\nPaper\nScissors\n", (), "unit", "nothing in the model says otherwise"),
    ("0 Rock\n1 Paper\n2 Scissors\n", ("rescaling",), "raw", "is Rescaling(0.003922)"),
])
def test_a_teachable_machine_labels_txt_decides_only_where_no_layer_does(
        tmp_path: Path, labels_txt: str, first: tuple[str, ...], scale: str, why: str) -> None:
    from keras import layers

    from app.runtime.preprocessing import infer_scale

    (tmp_path / "labels.txt").write_text(labels_txt)
    model = _small_cnn(*[layers.Rescaling(1 / 255) for _ in first])
    found = infer_scale(model, tmp_path / "keras_model.h5")
    assert (found.value, why in found.reason) == (scale, True), found


@pytest.mark.parametrize(("build", "family", "scale"), [
    ("MobileNet", "MobileNet", "symmetric"),
    ("ResNet50", "ResNet", "caffe"),
    ("ResNet50V2", "ResNetV2", "symmetric"),
    ("VGG16", "VGG", "caffe"),
    ("Xception", "Xception", "symmetric"),
    ("DenseNet121", "DenseNet", "torch"),
    ("EfficientNetV2B0", "EfficientNetV2", "raw"),
    ("EfficientNetV2B0-", "EfficientNetV2", "symmetric"),
    ("MobileNetV3Small-", "MobileNetV3", "symmetric"),
    ("ConvNeXtTiny-", "ConvNeXt", "torch"),
])
def test_a_renamed_backbone_is_known_by_its_layers(build: str, family: str,
                                                   scale: str) -> None:
    """Wrapped as Teachable Machine does ("model1" in a Sequential), no name to go by.
    A trailing "-": built with include_preprocessing=False, so its documented input
    range applies; with the preprocessing layers there, they decide (raw pixels)."""
    import keras
    from keras import layers

    from app.runtime.preprocessing import infer_scale

    shape = (71, 71, 3) if build == "Xception" else (32, 32, 3)
    options = {"include_preprocessing": False} if build.endswith("-") else {}
    options |= {"alpha": 0.25} if build == "MobileNet" else {}
    backbone = getattr(keras.applications, build.rstrip("-"))(
        input_shape=shape, include_top=False, weights=None, **options)
    renamed = keras.Model(backbone.input, backbone.output, name="model1")
    model = keras.Sequential([keras.Input(shape), keras.Sequential([renamed]),
                              layers.GlobalAveragePooling2D(), layers.Dense(3)])
    found = infer_scale(model)
    assert found.value == scale, found
    assert f"keras.applications {family} (model1, recognised by its layers" in found.reason


def test_a_users_own_model_named_like_a_backbone_is_not_taken_for_one() -> None:
    """Names decide only for nested models: "mobilenet_cats" at the top, a plain CNN."""
    import keras
    from keras import layers

    from app.runtime.preprocessing import infer_scale

    model = keras.Sequential([keras.Input((28, 28, 1)), layers.Conv2D(4, 3),
                              layers.Flatten(), layers.Dense(3)], name="mobilenet_cats")
    assert infer_scale(model).value == "unit"


def test_preprocess_input_inside_the_graph_means_raw_pixels() -> None:
    """The TF transfer-learning tutorial: augmentation, preprocess_input as operations,
    then the backbone; the model scales its own input, so it takes 0-255 pixels."""
    import keras
    from keras import layers

    from app.runtime.preprocessing import infer_scale

    backbone = keras.applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35,
                                              include_top=False, weights=None)
    inputs = keras.Input((32, 32, 3))
    x = keras.Sequential([layers.RandomFlip("horizontal"), layers.RandomRotation(0.2)])(inputs)
    x = backbone(keras.applications.mobilenet_v2.preprocess_input(x), training=False)
    model = keras.Model(inputs, layers.Dense(3)(layers.GlobalAveragePooling2D()(x)))
    found = infer_scale(model)
    assert found.value == "raw" and "computes its own input scaling" in found.reason, found


def test_an_open_input_takes_the_size_of_its_resizing_layer(
        make_app, resizing_model, fashion_test_set) -> None:
    from PIL import Image

    app = make_app(resizing_model)
    described = app.test_client().get("/model").get_json()
    assert described["input"]["model_input_shape"] == [None, 24, 24, 1]
    assert described["preprocessing"]["scale"] == "raw"
    images, labels = fashion_test_set
    small = np.stack([np.asarray(Image.fromarray(i).resize((24, 24), Image.BILINEAR))
                      for i in images])
    assert _served_accuracy(app, small, labels) >= 0.7


@pytest.mark.parametrize(("text", "labels"), [
    ("0 Rock\n1 Paper\n2 Scissors\n", ["Rock", "Paper", "Scissors"]),
    ("cat\ndog\n\n", ["cat", "dog"]),
    ("0 T-shirt/top\n1 Ankle boot\n", ["T-shirt/top", "Ankle boot"]),
    ("2 a\n1 b\n", ["2 a", "1 b"]),
])
def test_labels_txt_lines(text: str, labels: list[str]) -> None:
    assert parse_labels_txt(text) == labels


def test_a_card_still_wins(make_app, rescaling_model) -> None:
    with card_with(rescaling_model, scale="unit"):
        model = make_app(rescaling_model).test_client().get("/model").get_json()
    assert model["preprocessing"] == {"scale": "unit", "why": "the model card says so"}


def test_a_keras_archive_shows_the_keras_that_wrote_it(make_app, normalization_model) -> None:
    import keras

    versions = make_app(normalization_model).test_client().get("/model").get_json()["versions"]
    assert versions["written_by_keras"] == keras.__version__


@pytest.mark.parametrize(("fixture", "says"), [
    ("multilabel_model", "independent sigmoid score per label"),
    ("logits_model", "softmax is applied"),
    ("rescaling_model", "probabilities of all labels sum to 1"),
])
def test_openapi_says_what_a_probability_is_for_the_model(
        request: pytest.FixtureRequest, make_app, fixture: str, says: str) -> None:
    document = make_app(request.getfixturevalue(fixture)).test_client().get(
        "/openapi.json").get_json()
    item = document["components"]["schemas"]["Prediction"]["properties"]["predictions"]["items"]
    assert says in item["properties"]["probability"]["description"]
    assert says in document["info"]["description"]


def test_the_page_says_multi_label_scores_are_independent(make_app, multilabel_model) -> None:
    page = make_app(multilabel_model).test_client().get("/").get_data(as_text=True)
    assert "scores are independent (multi-label)" in page


def test_the_self_check_refuses_a_model_its_examples_prove_wrong(
        make_app, raw_model_with_examples) -> None:
    from app.runtime.loading import ModelLoadError

    with pytest.raises(ModelLoadError) as info:
        make_app(raw_model_with_examples)
    message = str(info.value)
    assert "self-check failed on" in message and "expected" in message
    assert 'all 8 examples are right with scale raw: add "scale": "raw"' in message


def test_the_self_check_can_warn_or_be_off(make_app, raw_model_with_examples,
                                           caplog: pytest.LogCaptureFixture) -> None:
    make_app(raw_model_with_examples, SELF_CHECK="warn")
    assert 'add "scale": "raw" to the model card' in caplog.text
    assert "SELF_CHECK=warn: serving it anyway" in caplog.text
    caplog.clear()
    make_app(raw_model_with_examples, SELF_CHECK="off")
    assert "self-check" not in caplog.text


def test_with_the_scale_the_check_named_it_is_served_and_right(
        make_app, raw_model_with_examples, fashion_test_set) -> None:
    """Trained on raw pixels it is a weak model (about 0.6 on 300 test images, 0.14 fed
    0-1 pixels), which is why the margin is checked, not a high bar."""
    with card_with(raw_model_with_examples, scale="raw"):
        app = make_app(raw_model_with_examples)
    right = _served_accuracy(app, *fashion_test_set)
    wrong = _served_accuracy(make_app(raw_model_with_examples, SELF_CHECK="off"),
                             *fashion_test_set)
    assert right >= 0.5 and wrong < right - 0.25, (right, wrong)


def test_the_bundled_model_passes_its_own_self_check(make_app,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    """Its card's ten examples carry labels, so every start runs them (and they pass)."""
    from app.config import DEFAULT_MODEL_PATH

    make_app(DEFAULT_MODEL_PATH)
    assert "self-check: all 10 examples of the card right" in caplog.text
