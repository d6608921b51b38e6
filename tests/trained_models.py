"""Small models really trained on Fashion-MNIST, once per session (a pytest plugin).

Trained on a few thousand images for a few epochs, each is good enough that feeding it
pixels scaled the wrong way changes its answers, which is what the preprocessing and
inspect tests need to see.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from scripts.idx import DATASET_DIR, load_idx

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
def tutorial_model(models_dir: Path, fashion_train) -> Path:
    """The TF image-classification tutorial's shape: an augmentation Sequential first,
    then Rescaling(1/255) at the top level, convolutions, a logits head; raw pixels."""
    import keras
    from keras import layers

    augmentation = keras.Sequential([layers.RandomFlip("horizontal"),
                                     layers.RandomRotation(0.05), layers.RandomZoom(0.05)],
                                    name="data_augmentation")
    model = keras.Sequential([keras.Input((28, 28, 1)), augmentation, layers.Rescaling(1 / 255),
                              layers.Conv2D(8, 3, activation="relu"), layers.MaxPooling2D(),
                              layers.Flatten(), layers.Dense(64, activation="relu"),
                              layers.Dense(10, name="outputs")])
    keras.utils.set_random_seed(7)
    model.compile(optimizer=keras.optimizers.Adam(2e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(fashion_train[0].astype("float32"), fashion_train[1], epochs=4, batch_size=64,
              verbose=0)
    path = models_dir / "tutorial.keras"
    model.save(path)
    return path


@pytest.fixture(scope="session")
def top_rescaling_model(models_dir: Path, fashion_train) -> Path:
    """Rescaling(1/255) as the first layer of the model itself, nothing nested."""
    import keras
    from keras import layers

    model = keras.Sequential([keras.Input((28, 28, 1)), layers.Rescaling(1 / 255),
                              layers.Flatten(), layers.Dense(64, activation="relu"),
                              layers.Dense(10, activation="softmax")])
    return _train(model, *fashion_train, "sparse_categorical_crossentropy",
                  models_dir / "top_rescaling.h5")


@pytest.fixture(scope="session")
def resizing_model(models_dir: Path, fashion_train) -> Path:
    """An open input (None, None, 1) that the model resizes to 24x24 and rescales itself:
    the image size is the Resizing layer's."""
    import keras
    from keras import layers

    model = keras.Sequential([keras.Input((None, None, 1)), layers.Resizing(24, 24),
                              layers.Rescaling(1 / 255), layers.Flatten(),
                              layers.Dense(64, activation="relu"),
                              layers.Dense(10, activation="softmax")])
    return _train(model, *fashion_train, "sparse_categorical_crossentropy",
                  models_dir / "resizing.keras")


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


@pytest.fixture(scope="session")
def raw_model_with_examples(tmp_path_factory: pytest.TempPathFactory, fashion_train,
                            fashion_test_set) -> Path:
    """Trained on raw 0-255 pixels, which nothing in the file says; the card lists eight
    labelled examples (test images it gets right on raw pixels), in examples/ beside it."""
    import keras
    from keras import layers
    from PIL import Image

    folder = tmp_path_factory.mktemp("raw-model")
    # Seeded before the layers are built: their initial weights otherwise depend on what
    # the session trained before, and some draws make a model that also reads 0-1 pixels.
    keras.utils.set_random_seed(7)
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


def as_rgb32(images: np.ndarray) -> np.ndarray:
    """28x28 grayscale -> 32x32 RGB (zero border, channels repeated): MobileNetV2's
    smallest input."""
    return np.repeat(np.pad(images.reshape(len(images), 28, 28), ((0, 0), (2, 2), (2, 2)))
                     [..., None], 3, axis=-1)


@pytest.fixture(scope="session")
def mobilenet_model(models_dir: Path, fashion_train) -> Path:
    """keras.applications MobileNetV2 (alpha 0.35, weights=None) inside a Sequential,
    trained the way its preprocess_input says: pixels scaled to [-1, 1]. Batch-norm
    momentum is lowered so that three short epochs leave usable moving statistics."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(7)
    backbone = keras.applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35,
                                              include_top=False, weights=None, pooling="avg")
    for layer in backbone.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.momentum = 0.8
    model = keras.Sequential([keras.Input((32, 32, 3)), backbone,
                              layers.Dense(10, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(2e-3), loss="sparse_categorical_crossentropy")
    images, labels = fashion_train
    model.fit(as_rgb32(images[:3000]) / 127.5 - 1, labels[:3000], epochs=3, batch_size=64,
              verbose=0)
    path = models_dir / "mobilenet.h5"
    model.save(path)
    return path


@pytest.fixture(scope="session")
def teachable_machine_model(tmp_path_factory: pytest.TempPathFactory, fashion_train) -> Path:
    """Shaped like a real Teachable Machine export, written by Keras 2 (tf_keras) when
    installed as TM's exporter is: keras_model.h5 + labels.txt ("0 T-shirt/top" lines);
    a truncated MobileNetV2 (alpha 0.35) renamed "model1" inside a Sequential inside a
    Sequential, then a Sequential Dense head. Trained on [-1, 1] pixels, as TM feeds it."""
    try:
        import tf_keras as keras
    except ImportError:  # pragma: no cover - tf_keras is in requirements
        import keras
    layers = keras.layers

    keras.utils.set_random_seed(7)
    mobilenet = keras.applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35,
                                               include_top=False, weights=None)
    for layer in mobilenet.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.momentum = 0.8  # usable moving statistics after a few short epochs
    model1 = keras.Model(mobilenet.input, mobilenet.output, name="model1")
    features = keras.Sequential([model1, layers.GlobalAveragePooling2D()], name="sequential_1")
    head = keras.Sequential([layers.Dense(100, activation="relu"),
                             layers.Dense(10, activation="softmax")], name="sequential_3")
    model = keras.Sequential([keras.Input((32, 32, 3)), features, head], name="sequential_4")
    model.compile(optimizer=keras.optimizers.Adam(2e-3), loss="sparse_categorical_crossentropy")
    images, labels = fashion_train
    model.fit(as_rgb32(images[:3000]) / 127.5 - 1, labels[:3000], epochs=3, batch_size=64,
              verbose=0)
    folder = tmp_path_factory.mktemp("converted_keras")
    model.save(folder / "keras_model.h5")
    (folder / "labels.txt").write_text("".join(f"{i} {name}\n" for i, name in enumerate(LABELS)))
    return folder / "keras_model.h5"
