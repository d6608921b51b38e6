"""Real-world models without a card: preprocessing and output read from the model itself.

Each model here is really trained on Fashion-MNIST (a few thousand images, a few epochs),
so that feeding it pixels scaled the wrong way changes its answers: the served accuracy
on 300 test images shows whether the service read the model right.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from flask import Flask

from app.runtime.idx import DATASET_DIR, load_idx
from app.runtime.model_card import parse_labels_txt

LABELS = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
          "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


@pytest.fixture(scope="session")
def fashion_train() -> tuple[np.ndarray, np.ndarray]:
    """4,000 training images (uint8, 28x28x1) and their labels."""
    images = load_idx(DATASET_DIR / "train-images-idx3-ubyte.gz")[:4000, ..., None]
    return images, load_idx(DATASET_DIR / "train-labels-idx1-ubyte.gz")[:4000]


def _train(model, images: np.ndarray, labels: np.ndarray, loss: str, path: Path,
           targets: np.ndarray | None = None) -> Path:
    import keras

    keras.utils.set_random_seed(7)
    model.compile(optimizer=keras.optimizers.Adam(2e-3), loss=loss)
    model.fit(images.astype("float32"), labels if targets is None else targets,
              epochs=4, batch_size=64, verbose=0)
    model.save(path)
    return path


@pytest.fixture(scope="session")
def rescaling_model(models_dir: Path, fashion_train) -> Path:
    """The image_dataset_from_directory tutorial's shape: augmentation, then Rescaling
    inside a nested model; trained on raw 0-255 pixels."""
    import keras
    from keras import layers

    body = keras.Sequential([layers.Rescaling(1 / 255), layers.Flatten(),
                             layers.Dense(64, activation="relu")], name="features")
    model = keras.Sequential([keras.Input((28, 28, 1)), layers.RandomFlip("horizontal"),
                              body, layers.Dense(10, activation="softmax")])
    return _train(model, *fashion_train, "sparse_categorical_crossentropy",
                  models_dir / "rescaling.h5")


@pytest.fixture(scope="session")
def normalization_model(models_dir: Path, fashion_train) -> Path:
    """A Normalization layer adapted on raw 0-255 data."""
    import keras
    from keras import layers

    norm = layers.Normalization(axis=None)
    norm.adapt(fashion_train[0].astype("float32"))
    model = keras.Sequential([keras.Input((28, 28, 1)), norm, layers.Flatten(),
                              layers.Dense(64, activation="relu"),
                              layers.Dense(10, activation="softmax")])
    return _train(model, *fashion_train, "sparse_categorical_crossentropy",
                  models_dir / "normalized.keras")


@pytest.fixture(scope="session")
def multilabel_model(models_dir: Path, fashion_train) -> Path:
    """Ten independent sigmoid units, trained on 0-1 pixels with binary cross-entropy."""
    import keras
    from keras import layers

    images, labels = fashion_train
    model = keras.Sequential([keras.Input((28, 28, 1)), layers.Flatten(),
                              layers.Dense(64, activation="relu"),
                              layers.Dense(10, activation="sigmoid")])
    return _train(model, images / 255, labels, "binary_crossentropy",
                  models_dir / "multilabel.h5", targets=np.eye(10)[labels])


@pytest.fixture(scope="session")
def logits_model(models_dir: Path, fashion_train) -> Path:
    """A linear head (logits), trained on 0-1 pixels with from_logits=True."""
    import keras
    from keras import layers

    images, labels = fashion_train
    model = keras.Sequential([keras.Input((28, 28, 1)), layers.Flatten(),
                              layers.Dense(64, activation="relu"), layers.Dense(10)])
    keras.utils.set_random_seed(7)
    model.compile(optimizer=keras.optimizers.Adam(2e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit((images / 255).astype("float32"), labels, epochs=4, batch_size=64, verbose=0)
    path = models_dir / "logits.h5"
    model.save(path)
    return path


@contextmanager
def card_with(model_path: Path, **keys: object) -> Iterator[None]:
    """The model's card with `keys` set, for the duration of the block; then as it was."""
    card = model_path.with_suffix(".json")
    before = card.read_text() if card.exists() else None
    card.write_text(json.dumps({**json.loads(before or "{}"), **keys}))
    try:
        yield
    finally:
        if before is None:
            card.unlink()
        else:
            card.write_text(before)


def _served_accuracy(app: Flask, images: np.ndarray, labels: np.ndarray) -> float:
    rows = app.test_client().post("/predict", json={"input": images.reshape(len(images), -1)
                                                    .tolist()})
    assert rows.status_code == 200, rows.get_json()
    return float(np.mean(np.argmax(rows.get_json(), axis=1) == labels))


@pytest.mark.parametrize(("fixture", "scale", "why"), [
    ("rescaling_model", "raw", "first layer is Rescaling(0.003922)"),
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


def test_a_teachable_machine_folder_gives_labels_and_symmetric_scaling(tmp_path: Path,
                                                                       make_app) -> None:
    """keras_model.h5 + labels.txt, a keras.applications MobileNetV2 nested in Sequentials."""
    import keras
    from keras import layers

    backbone = keras.applications.MobileNetV2(input_shape=(96, 96, 3), alpha=0.35,
                                              include_top=False, weights=None, pooling="avg")
    inner = keras.Sequential([backbone], name="sequential_1")
    model = keras.Sequential([keras.Input((96, 96, 3)), inner,
                              layers.Dense(3, activation="softmax")])
    folder = tmp_path / "converted_keras"
    folder.mkdir()
    model.save(folder / "keras_model.h5")
    (folder / "labels.txt").write_text("0 Rock\n1 Paper\n2 Scissors\n")
    described = make_app(folder / "keras_model.h5").test_client().get("/model").get_json()
    assert described["labels"] == ["Rock", "Paper", "Scissors"]
    assert described["labels_from"] == "labels.txt"
    assert described["preprocessing"]["scale"] == "symmetric"
    assert "mobilenetv2_0.35_96" in described["preprocessing"]["why"]


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


def test_the_page_says_multi_label_scores_are_independent(make_app, multilabel_model) -> None:
    page = make_app(multilabel_model).test_client().get("/").get_data(as_text=True)
    assert "scores are independent (multi-label)" in page


@pytest.fixture(scope="session")
def raw_model_with_examples(tmp_path_factory: pytest.TempPathFactory, fashion_train,
                            fashion_test_set) -> Path:
    """Trained on raw 0-255 pixels, which nothing in the file says; the card lists eight
    labelled examples (test images it gets right on raw pixels), in examples/ beside it."""
    import keras
    from keras import layers
    from PIL import Image

    folder = tmp_path_factory.mktemp("raw-model")
    model = keras.Sequential([keras.Input((28, 28, 1)), layers.Flatten(),
                              layers.Dense(64, activation="relu"),
                              layers.Dense(10, activation="softmax")])
    path = _train(model, *fashion_train, "sparse_categorical_crossentropy", folder / "raw.h5")
    images, labels = fashion_test_set
    answers = model.predict(images.astype("float32"), verbose=0).argmax(axis=1)
    (folder / "examples").mkdir()
    examples = []
    for i in [i for i in range(len(images)) if answers[i] == labels[i]][:8]:
        Image.fromarray(images[i]).save(folder / "examples" / f"test{i}.png")
        examples.append({"file": f"test{i}.png", "label": LABELS[labels[i]]})
    path.with_suffix(".json").write_text(json.dumps({"labels": LABELS, "examples": examples}))
    return path


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
    with card_with(raw_model_with_examples, scale="raw"):
        app = make_app(raw_model_with_examples)
    assert _served_accuracy(app, *fashion_test_set) >= 0.70


def test_the_bundled_model_passes_its_own_self_check(make_app,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    """Its card's ten examples carry labels, so every start runs them (and they pass)."""
    from app.config import DEFAULT_MODEL_PATH

    make_app(DEFAULT_MODEL_PATH)
    assert "self-check: all 10 examples of the card right" in caplog.text
