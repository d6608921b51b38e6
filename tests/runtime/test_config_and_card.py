"""Settings from the environment and model cards: typed, validated, failing loudly."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.config import DEFAULT_MODEL_PATH, Settings
from app.runtime.model_card import ModelCard, ModelCardError
from app.runtime.spec import UnservableModel, infer_image_spec, infer_output_spec


def test_defaults_are_safe() -> None:
    settings = Settings.load(environ={})
    assert settings.MODEL_PATH is None  # the repository, holding the bundled model
    assert DEFAULT_MODEL_PATH.parent == settings.MODEL_REPOSITORY
    assert settings.MODEL_POLL_SECONDS == 10 and settings.MAX_MODELS == 8
    assert settings.MAX_CONTENT_LENGTH == 15 * 1024 * 1024
    assert settings.TRUST_PROXY is False


def test_environment_is_parsed_by_type() -> None:
    settings = Settings.load(environ={"MAX_PREDICT_ROWS": "50", "TRUST_PROXY": "yes",
                                      "MODEL_PATH": "/m/x.h5", "MAX_BATCH_DELAY_MS": "2.5"})
    assert (settings.MAX_PREDICT_ROWS, settings.TRUST_PROXY) == (50, True)
    assert Path("/m/x.h5") == settings.MODEL_PATH and settings.MAX_BATCH_DELAY_MS == 2.5


@pytest.mark.parametrize(("environ", "message"), [
    ({"MAX_PREDICT_ROWS": "many"}, "MAX_PREDICT_ROWS"),
    ({"TRUST_PROXY": "maybe"}, "TRUST_PROXY"),
    ({"MAX_BATCH_SIZE": "0"}, "MAX_BATCH_SIZE"),
])
def test_bad_values_fail_at_startup_naming_the_variable(environ, message) -> None:
    with pytest.raises(ValueError, match=message):
        Settings.load(environ=environ)


def test_unknown_override_is_an_error() -> None:
    with pytest.raises(ValueError, match="NOPE"):
        Settings.load({"NOPE": 1}, environ={})


@pytest.mark.parametrize(("card", "key"), [
    ({"labels": "a,b"}, "labels"),
    ({"labels": []}, "labels"),
    ({"invert": "yes"}, "invert"),
    ({"scale": "0-1"}, "scale"),
    ({"image_size": [28]}, "image_size"),
    ({"color_mode": "cmyk"}, "color_mode"),
    ({"resize": "magic"}, "resize"),
    ({"examples": ["../secret.png"]}, "examples"),
    ({"examples": [{"file": "a.png", "label": 3}]}, "examples"),
    ({"examples": [{"label": "Coat"}]}, "examples"),
    ({"low_confidence": 1.5}, "low_confidence"),
    ({"low_confidence": True}, "low_confidence"),
])
def test_model_card_rejects_bad_keys(card, key) -> None:
    with pytest.raises(ModelCardError, match=key):
        ModelCard.from_dict(card, default_name="m")


def test_model_card_keeps_unknown_keys_and_defaults_name(tmp_path: Path) -> None:
    model = tmp_path / "digits.h5"
    assert ModelCard.for_model(model).name == "digits"
    card = ModelCard.from_dict({"labels": ["a"], "license": "MIT"}, default_name="digits")
    assert card.extra == {"license": "MIT"} and card.name == "digits"


CARD = ModelCard(name="m")


@pytest.mark.parametrize(("shape", "card", "expected"), [
    ((28, 28, 1), CARD, (28, 28, 1, "hwc")),
    ((150, 150, 3), CARD, (150, 150, 3, "hwc")),
    ((3, 32, 32), CARD, (32, 32, 3, "chw")),
    ((1, 28, 28), CARD, (28, 28, 1, "chw")),
    ((28, 28), CARD, (28, 28, 1, "hw")),
    ((784,), CARD, (28, 28, 1, "flat")),
    ((3072,), CARD, (32, 32, 3, "flat")),
    ((1200,), ModelCard(name="m", image_size=(30, 40)), (30, 40, 1, "flat")),
    ((None, None, 3), ModelCard(name="m", image_size=(64, 48)), (64, 48, 3, "hwc")),
])
def test_image_spec_inferred_from_shape(shape, card, expected) -> None:
    spec = infer_image_spec(shape, card)
    assert (spec.height, spec.width, spec.channels, spec.layout) == expected


@pytest.mark.parametrize(("shape", "card", "message"), [
    ((None, None, 3), CARD, "image_size"),
    ((1000,), CARD, "not a square image"),
    ((28, 28, 5), CARD, "no 1- or 3-channel axis"),
    ((4, 4, 4, 1), CARD, "not an image"),
    ((28, 28, 1), ModelCard(name="m", color_mode="rgb"), "contradicts"),
    ((28, 28, 1), ModelCard(name="m", image_size=(30, 30)), "contradicts"),
])
def test_unservable_shapes_say_why(shape, card, message) -> None:
    with pytest.raises(UnservableModel, match=message):
        infer_image_spec(shape, card)


def test_output_spec_binary_and_softmax() -> None:
    assert infer_output_spec((1,), CARD).labels == ("0", "1")
    assert infer_output_spec((1,), CARD).binary
    assert infer_output_spec((5,), CARD).labels == ("0", "1", "2", "3", "4")
    with pytest.raises(UnservableModel, match="not a classifier"):
        infer_output_spec((4, 4), CARD)


def test_examples_carry_their_true_label_as_caption() -> None:
    card = ModelCard.from_dict({"examples": ["dark_cat.png", {"file": "coat.png",
                                                              "label": "Coat"}]},
                               default_name="m")
    assert [(e.file, e.label, e.caption) for e in card.examples] == [
        ("dark_cat.png", None, "dark cat"), ("coat.png", "Coat", "Coat")]
    assert card.low_confidence == 0.6
