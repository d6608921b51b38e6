"""Loading model files: legacy Keras 2 layouts, and clear failures for what cannot be served."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from toy_models import keras224_mlp, keras224_reference

from app import create_app
from app.runtime.classifier import Classifier
from app.runtime.loading import ModelLoadError, load_keras_model


def test_keras3_misreads_the_legacy_file_and_we_do_not(tmp_path: Path) -> None:
    """The bug this loader exists for, reproduced: Keras 3 gets (None, None, 784)."""
    import keras

    path = tmp_path / "legacy.h5"
    weights = keras224_mlp(path)
    misread = keras.models.load_model(path, compile=False)
    assert tuple(misread.inputs[0].shape) == (None, None, 784)

    loaded = load_keras_model(path)
    assert loaded.library == "tf_keras"
    assert tuple(loaded.model.inputs[0].shape) == (None, 784)
    x = np.random.default_rng(0).random((4, 784)).astype(np.float32)
    np.testing.assert_allclose(loaded.model(x).numpy(), keras224_reference(weights, x), atol=1e-5)


def test_classifier_runs_the_legacy_file(tmp_path: Path) -> None:
    path = tmp_path / "legacy.h5"
    weights = keras224_mlp(path, seed=7)
    classifier = Classifier(path)
    classifier.load()
    assert classifier.image_spec is not None and classifier.image_spec.model_shape == (784,)
    x = np.random.default_rng(1).random((3, 784)).astype(np.float32)
    np.testing.assert_allclose(classifier.predict(x), keras224_reference(weights, x), atol=1e-5)


def _fails(path: Path) -> str:
    with pytest.raises(ModelLoadError) as info:
        create_app({"MODEL_PATH": path})
    return str(info.value)


def test_missing_file_fails_fast(tmp_path: Path) -> None:
    assert "no such file" in _fails(tmp_path / "nope.h5")


def test_not_hdf5_fails_fast(tmp_path: Path) -> None:
    path = tmp_path / "fake.h5"
    path.write_bytes(b"this is not a model")
    assert "neither an HDF5 (.h5) nor a .keras (zip) file" in _fails(path)


def _tiny_model(path: Path) -> Path:
    import keras

    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(3, activation="softmax")])
    model.save(path)
    return path


@pytest.mark.parametrize(("name", "content", "message"), [
    ("model.keras", "hdf5", "an HDF5 file named .keras; rename it to model.h5"),
    ("model.keras", b"<html>Not Found</html>", "not a Keras zip archive"),
    ("model.h5", "zip", "a .keras zip archive named model.h5; rename it to model.keras"),
])
def test_a_file_whose_name_lies_about_its_format_says_so(tmp_path: Path, name: str,
                                                         content: object, message: str) -> None:
    path = tmp_path / name
    if content == "hdf5":
        _tiny_model(tmp_path / "real.h5").rename(path)
    elif content == "zip":
        _tiny_model(tmp_path / "real.keras").rename(path)
    else:
        path.write_bytes(content)  # type: ignore[arg-type]
    failure = _fails(path)
    assert message in failure and "\n" not in failure, failure


@pytest.mark.parametrize("member", ["metadata.json", "config.json"])
def test_class_names_stored_in_a_keras_file_are_its_labels(tmp_path: Path,
                                                           member: str) -> None:
    """Keras writes no class names; people add `class_names` to metadata.json (or to the
    top of config.json). Without a card they name the classes, in /model and inspect."""
    plain = _tiny_model(tmp_path / "plain.keras")
    path = tmp_path / "named.keras"
    with zipfile.ZipFile(plain) as source, zipfile.ZipFile(path, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == member:
                data = json.dumps({**json.loads(data), "class_names": ["cat", "dog", "fox"]})
            target.writestr(item, data)
    (tmp_path / "labels.txt").write_text("a\nb\nc\n")  # the stored names come first
    app = create_app({"MODEL_PATH": path})
    described = app.test_client().get("/model").get_json()
    assert described["labels"] == ["cat", "dog", "fox"]
    assert described["labels_from"] == f"class_names in the .keras file's {member}"
    report = app.test_cli_runner().invoke(args=["inspect", str(path)]).output
    assert f"labels   3 from class_names in the .keras file's {member}: cat, dog" in report
    path.with_suffix(".json").write_text(json.dumps({"labels": ["x", "y", "z"]}))
    assert create_app({"MODEL_PATH": path}).test_client().get("/model").get_json()[
        "labels_from"] == "model card"


@pytest.mark.parametrize("name", ["model.h5", "model.keras"])
def test_a_git_lfs_pointer_says_to_pull(tmp_path: Path, name: str) -> None:
    """The most common broken download on GitHub: the pointer file, not the model."""
    path = tmp_path / name
    path.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:0\nsize 1\n")
    assert "a Git LFS pointer, not the model; run `git lfs pull`" in _fails(path)


def test_weights_only_file_says_how_to_save(tmp_path: Path) -> None:
    path = tmp_path / "weights.h5"
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [b"dense_1"]
        f.create_group("dense_1")
    message = _fails(path)
    assert "no model_config" in message and "model.save()" in message


def test_non_classifier_output_is_refused(tmp_path: Path) -> None:
    import keras

    inputs = keras.Input((28, 28, 1))
    model = keras.Model(inputs, keras.layers.Conv2D(4, 3)(inputs))  # a feature map, not classes
    path = tmp_path / "segmenter.h5"
    model.save(path)
    assert "not a classifier" in _fails(path)


def test_non_image_input_is_refused(tmp_path: Path) -> None:
    import keras

    inputs = keras.Input((10, 10, 10, 1))
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(inputs)))
    path = tmp_path / "volume.h5"
    model.save(path)
    assert "not an image" in _fails(path)


def test_bad_model_card_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "legacy.h5"
    keras224_mlp(path)
    path.with_suffix(".json").write_text(json.dumps({"labels": ["a", "b"]}))
    assert "2 labels but the model has 10 classes" in _fails(path)
    path.with_suffix(".json").write_text("{broken")
    assert "not valid JSON" in _fails(path)
