"""Train the bundled default model: a small CNN on the real Fashion-MNIST data set.

Deterministic (fixed seeds, TensorFlow op determinism) so that a re-run reproduces the
committed file's accuracy. Reads the IDX files shipped by Debian's
`dataset-fashion-mnist` package; nothing is downloaded.

    python scripts/train_fashion_mnist.py [--out models/fashion_mnist.h5] [--epochs 12]
    python scripts/train_fashion_mnist.py --examples-only   # new examples, same model
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.idx import DATASET_DIR, load_idx

LABELS = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]
SEED = 20260101
MIN_EXAMPLE_CONFIDENCE = 0.97  # the page promises at least 90 %; leave a margin


def build_model():  # type: ignore[no-untyped-def]
    """Two conv blocks and a small dense head: ~92 % on Fashion-MNIST, under 2 MB."""
    import keras
    from keras import layers

    return keras.Sequential(
        [
            keras.Input(shape=(28, 28, 1), name="image"),
            layers.Conv2D(32, 3, padding="same", activation="relu"),
            layers.BatchNormalization(),
            layers.Conv2D(32, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(),
            layers.Dropout(0.2),
            layers.Conv2D(64, 3, padding="same", activation="relu"),
            layers.BatchNormalization(),
            layers.Conv2D(64, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(),
            layers.Dropout(0.3),
            layers.Flatten(),
            layers.Dense(128, activation="relu"),
            layers.Dropout(0.4),
            layers.Dense(len(LABELS), activation="softmax", name="probabilities"),
        ],
        name="fashion_mnist_cnn",
    )


def write_examples(model, images, labels, out_dir: Path) -> list[dict[str, str]]:  # type: ignore[no-untyped-def]
    """One test image per class for the upload page's example strip, as PNG files.

    Each is the first test image from 9000 on (the tests use the first 300) that the model
    gets right with at least MIN_EXAMPLE_CONFIDENCE: a first click that shows a wrong or
    unsure answer is a poor first impression.
    """
    from PIL import Image

    probabilities = model.predict(images[9000:], verbose=0)
    out_dir.mkdir(parents=True, exist_ok=True)
    examples = []
    for index, label in enumerate(LABELS):
        first = 9000 + next(i for i, p in enumerate(probabilities)
                            if labels[9000 + i] == index and p[index] >= MIN_EXAMPLE_CONFIDENCE)
        name = label.lower().replace("-", "_").replace("/", "_").replace(" ", "_") + ".png"
        pixels = (images[first, :, :, 0] * 255).round().astype("uint8")
        Image.fromarray(pixels).save(out_dir / name, optimize=True)
        examples.append({"file": name, "label": label})
    return examples


def load_test_set(data: Path):  # type: ignore[no-untyped-def]
    """The 10,000 test images scaled to 0-1 (as the model was trained) and their labels."""
    return (load_idx(data / "t10k-images-idx3-ubyte.gz")[..., None] / 255.0,
            load_idx(data / "t10k-labels-idx1-ubyte.gz"))


def refresh_examples(model_path: Path, data: Path) -> None:
    """Pick the examples again for the committed model, and list them in its card."""
    import keras

    model = keras.models.load_model(model_path, compile=False)
    card_path = model_path.with_suffix(".json")
    card = json.loads(card_path.read_text())
    card["examples"] = write_examples(model, *load_test_set(data), Path("static/examples"))
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    print(f"wrote {len(card['examples'])} examples and updated {card_path}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("models/fashion_mnist.h5"))
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--data", type=Path, default=DATASET_DIR)
    parser.add_argument("--examples-only", action="store_true",
                        help="keep the model, pick and write the example images again")
    args = parser.parse_args()
    if args.examples_only:
        refresh_examples(args.out, args.data)
        return 0

    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(SEED)
    tf.config.experimental.enable_op_determinism()

    x_train = load_idx(args.data / "train-images-idx3-ubyte.gz")[..., None] / 255.0
    y_train = load_idx(args.data / "train-labels-idx1-ubyte.gz")
    x_test, y_test = load_test_set(args.data)

    model = build_model()
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    started = time.monotonic()
    model.fit(
        x_train, y_train, batch_size=128, epochs=args.epochs, validation_split=0.1,
        callbacks=[keras.callbacks.ReduceLROnPlateau(patience=2, factor=0.5)],
        verbose=2,
    )
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    print(f"test accuracy: {accuracy:.4f} ({time.monotonic() - started:.0f} s)")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    model.save(args.out, include_optimizer=False)  # serving needs no optimizer state
    card = {
        "name": "fashion_mnist",
        "description": "A small convolutional network trained on Fashion-MNIST: 28x28 "
        "grayscale photos of clothing, light on a dark background.",
        "labels": LABELS,
        "invert": "auto",
        "scale": "unit",
        "accuracy": round(float(accuracy), 4),
        "accuracy_note": "measured on the 10,000 Fashion-MNIST test images",
        "examples": write_examples(model, x_test, y_test, Path("static/examples")),
        "training": {"epochs": args.epochs, "seed": SEED, "keras": keras.__version__,
                     "tensorflow": tf.__version__},
    }
    args.out.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB) and its model card")
    return 0


if __name__ == "__main__":
    sys.exit(main())
