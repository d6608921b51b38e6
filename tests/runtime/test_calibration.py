"""A labelled examples folder beside a model calibrates its preprocessing on load.

Each model here is really trained (small, seeded, a few seconds) on images prepared one
way that nothing in its file says: raw 0-255 pixels, x/255 - 0.5, inverted images, BGR
channel order. Served with only a folder of labelled examples beside it, each must answer
a held-out test set right; a card's explicit keys still win, and examples that fit no
candidate refuse the model.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import encode, upload
from trained_models import card_with

from app.config import Settings
from app.runtime.loading import ModelLoadError, load_keras_model
from app.runtime.repository import ModelRepository
from app.runtime.rollout import Rollout
from scripts.idx import DATASET_DIR, load_idx

pytestmark = [pytest.mark.slow]

CLOTHES = {"bag": 8, "sneaker": 7, "trouser": 1, "tshirt": 0}  # sorted: the class order
COLOURS = {"blue": (30, 30, 220), "cyan": (30, 220, 220), "green": (30, 200, 30),
           "magenta": (200, 30, 200), "red": (220, 30, 30), "yellow": (220, 220, 30)}
PREPARE = {"raw": lambda x: x, "unit": lambda x: x / 255, "centered": lambda x: x / 255 - 0.5}


def _clothes(images: str, labels: str, start: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    x = load_idx(DATASET_DIR / images)[:start + 6 * count]
    y = load_idx(DATASET_DIR / labels)[:start + 6 * count]
    keep = np.isin(y, list(CLOTHES.values())) & (np.arange(len(y)) >= start)
    order = {v: i for i, v in enumerate(CLOTHES.values())}
    return x[keep][:count, ..., None], np.array([order[v] for v in y[keep][:count]])


def _colours(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """16x16 RGB: a square of the class's colour on a grey, noisy background."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(COLOURS), count)
    images = rng.integers(60, 160, (count, 16, 16, 3)).astype(np.uint8)
    for image, label in zip(images, labels, strict=True):
        row, col, side = *rng.integers(0, 8, 2), rng.integers(6, 9)
        colour = np.array(list(COLOURS.values())[label]) + rng.integers(-25, 25, 3)
        image[row:row + side, col:col + side] = np.clip(colour, 0, 255)
    return images, labels


@pytest.fixture(scope="module")
def data() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Training images, 40 labelled examples and 160 held-out test images per kind."""
    train, test = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"), \
        ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
    return {"clothes": _clothes(*train, 0, 2000), "clothes_examples": _clothes(*test, 0, 40),
            "clothes_test": _clothes(*test, 1000, 160), "colours": _colours(2000, 1),
            "colours_examples": _colours(40, 2), "colours_test": _colours(160, 3)}


def _train(folder: Path, images: np.ndarray, labels: np.ndarray, classes: int) -> Path:
    """Dense, batch-normalised (so a wrong scaling really changes answers), 3 epochs."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(7)
    model = keras.Sequential([keras.Input(images.shape[1:]), layers.Flatten(),
                              layers.Dense(32), layers.BatchNormalization(momentum=0.8),
                              layers.ReLU(), layers.Dense(classes, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(2e-3), loss="sparse_categorical_crossentropy")
    model.fit(images.astype("float32"), labels, epochs=3, batch_size=64, verbose=0)
    folder.mkdir(parents=True, exist_ok=True)
    model.save(folder / "model.h5")
    return folder / "model.h5"


def _examples(folder: Path, images: np.ndarray, labels: np.ndarray, names: list[str]) -> Path:
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        (folder / names[label]).mkdir(parents=True, exist_ok=True)
        (folder / names[label] / f"{i:03d}.png").write_bytes(encode(image.squeeze()))
    return folder


TRAINED_ON = {  # model -> (data, how its training images were prepared, calibrated choice)
    "raw": ("clothes", lambda x: x, {"scale": "raw", "invert": False}),
    "centered": ("clothes", lambda x: x / 255 - 0.5, {"scale": "centered", "invert": False}),
    "inverted": ("clothes", lambda x: (255 - x) / 255, {"scale": "unit", "invert": True}),
    "bgr": ("colours", lambda x: x[..., ::-1] / 255, {"scale": "unit", "channels": "bgr"}),
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, data) -> dict[str, Path]:
    """Each model as `<kind>/model.h5` with `model.examples/<label>/` beside it."""
    root = tmp_path_factory.mktemp("calibration")
    found = {}
    for kind, (source, prepare, _) in TRAINED_ON.items():
        images, labels = data[source]
        names = list(CLOTHES if source == "clothes" else COLOURS)
        path = _train(root / kind, prepare(images.astype("float32")), labels, len(names))
        _examples(root / kind / "model.examples", *data[f"{source}_examples"], names)
        found[kind] = path
    return found


@pytest.mark.parametrize("kind", list(TRAINED_ON))
def test_examples_alone_make_a_model_answer_right(make_app, trained, data, kind: str) -> None:
    source, _, choice = TRAINED_ON[kind]
    app = make_app(trained[kind], RUNTIME="tensorflow")
    described = app.test_client().get("/model").get_json()
    calibration = described["calibration"]
    assert calibration["choice"] == choice, calibration
    assert calibration["summary"].startswith("preprocessing calibrated from 40 labelled "
                                             "examples: ")
    assert described["preprocessing"]["why"] == calibration["summary"]
    assert calibration["right"] >= 38 and calibration["seconds"] < 3, calibration
    names = list(CLOTHES if source == "clothes" else COLOURS)
    assert described["labels"] == names and "names of the folders" in described["labels_from"]
    images, labels = data[f"{source}_test"]
    client = app.test_client()
    said = [upload(client, encode(image.squeeze())).get_json()["most_probable_label"]
            for image in images]
    assert np.mean([s == names[label] for s, label in zip(said, labels, strict=True)]) >= 0.9


def test_the_repository_folder_and_the_start_up_log_say_it_too(
        make_app, trained, caplog: pytest.LogCaptureFixture) -> None:
    make_app(trained["raw"], RUNTIME="tensorflow")
    assert 'preprocessing calibrated from 40 labelled examples: "scale": "raw", ' \
           '"invert": false, 40/40 right (default choice: ' in caplog.text
    assert "candidates tried in" in caplog.text


def test_a_card_that_pins_the_wrong_scale_wins_and_the_check_names_the_fix(
        make_app, trained) -> None:
    with card_with(trained["raw"], scale="unit"), pytest.raises(ModelLoadError) as info:
        make_app(trained["raw"], RUNTIME="tensorflow")
    message = str(info.value)
    assert 'preprocessing chosen ("scale": "unit", "invert": false) gets only' in message
    assert 'put {"scale": "raw", "invert": false} in the model card (40/40 right)' in message


def test_calibrate_off_keeps_the_default_and_the_examples_still_check_it(
        make_app, trained, caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(ModelLoadError, match=re.escape('put {"scale": "raw"')):
        make_app(trained["raw"], RUNTIME="tensorflow", CALIBRATE="off")
    app = make_app(trained["raw"], RUNTIME="tensorflow", CALIBRATE="off", SELF_CHECK="warn")
    assert app.test_client().get("/model").get_json()["preprocessing"]["scale"] == "unit"
    assert "SELF_CHECK=warn: serving it anyway" in caplog.text


def test_examples_that_fit_nothing_refuse_the_model(trained, data, tmp_path: Path) -> None:
    """Every example filed under the wrong label: no scaling can make them right."""
    from app.runtime.classifier import Classifier

    shutil.copy(trained["raw"], tmp_path / "model.h5")
    images, labels = data["clothes_examples"]
    _examples(tmp_path / "model.examples", images, (labels + 1) % 4, list(CLOTHES))
    with pytest.raises(ModelLoadError) as info:
        Classifier(tmp_path / "model.h5", Settings(RUNTIME="tensorflow")).load()
    assert "scores: " in str(info.value) and "no candidate fits" in str(info.value)


def test_calibration_is_the_same_every_time(trained) -> None:
    from app.runtime.classifier import Classifier

    found = []
    for _ in range(2):
        classifier = Classifier(trained["inverted"], Settings(RUNTIME="tensorflow"))
        classifier.load()
        assert classifier.calibrated is not None
        found.append(classifier.calibrated["scores"])
    assert found[0] == found[1]


def test_a_new_version_that_scores_worse_is_refused(trained, tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    """models/clothes/examples/ serves every version; version 2 (a model with its first
    layer scrambled, served under SELF_CHECK=warn) gets fewer of them right than version
    1, so version 1 serves on."""
    (tmp_path / "clothes" / "1").mkdir(parents=True)
    shutil.copy(trained["raw"], tmp_path / "clothes" / "1" / "model.h5")
    shutil.copytree(trained["raw"].with_name("model.examples"), tmp_path / "clothes" / "examples")
    settings = Settings.load({"MODEL_REPOSITORY": tmp_path, "MODEL_POLL_SECONDS": 0,
                              "RUNTIME": "tensorflow", "SELF_CHECK": "warn"})
    models = ModelRepository(settings)
    watcher = Rollout(models, settings)
    watcher.start()
    (tmp_path / "clothes" / "2").mkdir()
    shutil.copy(trained["centered"], tmp_path / "clothes" / "2" / "model.h5")
    _weaken(tmp_path / "clothes" / "2" / "model.h5")
    watcher.reconcile()
    watcher.reconcile()
    assert sorted(models.table["clothes"].versions) == [1]
    assert "model clothes version 2 refused: it gets " in caplog.text
    assert "still serving version 1" in caplog.text


def _weaken(path: Path) -> None:
    """Scramble the first layer's weights: the file still loads, the answers degrade."""
    model = load_keras_model(path).model
    weights = model.layers[1].get_weights()
    rng = np.random.default_rng(0)
    model.layers[1].set_weights([rng.permutation(weights[0]), weights[1]])
    model.save(path)


def test_a_file_one_keras_cannot_read_is_read_by_the_other(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A Keras 3 file that claims Keras 2.2.4 wrote it: tf-keras fails, Keras 3 reads it."""
    import h5py
    import keras

    path = tmp_path / "claims_keras2.h5"
    keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                      keras.layers.Dense(3, activation="softmax")]).save(path)
    with h5py.File(path, "r+") as file:
        file.attrs["keras_version"] = "2.2.4"
    loaded = load_keras_model(path)
    assert loaded.library == "keras" and "tf_keras could not load" in loaded.first_failure
    assert f"loaded {path} with keras " in caplog.text


def test_card_keys_for_pixels_are_checked() -> None:
    from app.runtime.model_card import ModelCard, ModelCardError

    card = ModelCard.from_dict({"channels": "bgr", "mean": [0.5], "std": [0.25]}, "m")
    assert (card.channels, card.mean, card.std) == ("bgr", (0.5,), (0.25,))
    assert card.pinned == {"channels", "mean", "std"}
    for bad in ({"channels": "gbr"}, {"mean": [1, 2]}, {"std": [0]}):
        with pytest.raises(ModelCardError, match=next(iter(bad))):
            ModelCard.from_dict(bad, "m")


def test_mean_and_std_follow_the_scaling() -> None:
    from app.runtime.pixel_math import base_scale, model_values

    pixels = np.full((1, 1, 1, 3), 255, np.uint8)
    assert model_values(pixels, "centered").ravel().tolist() == [0.5] * 3
    assert base_scale((123.7, 116.3, 103.5)) == "raw" and base_scale((0.5,)) == "unit"
    got = model_values(pixels, "unit", "bgr", (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    assert got.ravel().tolist() == [1.0] * 3
    assert json.dumps(model_values(np.arange(3, dtype=np.uint8).reshape(1, 1, 1, 3), "raw",
                                   "bgr").ravel().tolist()) == "[2.0, 1.0, 0.0]"


def test_inspect_shows_what_the_examples_beside_the_model_calibrated(make_app, trained) -> None:
    app = make_app(trained["bgr"], RUNTIME="tensorflow")
    result = app.test_cli_runner().invoke(args=["inspect", str(trained["bgr"])])
    assert result.exit_code == 0, result.output
    assert 'model.examples: preprocessing calibrated from 40 labelled examples: "scale": ' \
           '"unit", "channels": "bgr", 40/40 right' in result.output


def test_fewer_unnamed_folders_than_an_index_model_s_classes_are_no_error(
        make_app, trained, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A model with only class indexes (4 here), and 2 folders named otherwise: nothing
    says which index each is, so the examples cannot score; it is served, with a warning."""
    folder = tmp_path / "indexes"
    folder.mkdir()
    shutil.copy(trained["raw"], folder / "model.h5")
    for name in ("bag", "trouser"):
        shutil.copytree(trained["raw"].with_suffix(".examples") / name,
                        folder / "model.examples" / name)
    app = make_app(folder / "model.h5", RUNTIME="tensorflow")
    described = app.test_client().get("/model").get_json()
    assert described["calibration"] is None and described["labels_from"] == "their indexes"
    assert "examples in" in caplog.text and "not used" in caplog.text
