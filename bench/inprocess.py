"""What one process can do without HTTP, and the inputs the benchmark sends.

The in-process limit is decode + preprocess + batched compiled forward pass in a loop:
the ceiling any server built around this model can approach on this machine.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
from PIL import Image

from app.config import Settings
from app.runtime.classifier import Classifier
from app.runtime.imaging import decode_image, maybe_invert


def trivial_model(path: Path) -> Path:
    """One tiny Dense layer on a 28x28 image: what HTTP + TLS + decode cost on their own."""
    import keras

    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Flatten()(inputs)
    keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x)).save(path)
    return path


def mobilenet_v2(path: Path) -> Path:
    """Keras MobileNetV2, 224x224x3, random weights (nothing downloaded), 1000 classes."""
    import keras

    if not path.exists():
        keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3),
                                       classes=1000).save(path)
    return path


def photo(width: int, height: int, seed: int = 0) -> Image.Image:
    """A photo-like RGB image: smooth gradients plus sensor noise (compresses like a photo)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([x / width, y / height, (x + y) / (width + height)], axis=-1) * 200
    noise = rng.normal(0, 12, (height, width, 3)).astype(np.float32)
    return Image.fromarray(np.clip(base + noise + 20, 0, 255).astype(np.uint8))


def jpeg_bytes(image: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def in_process_limit(model_path: Path, image: bytes, batch: int = 32,
                     seconds: float = 5.0) -> float:
    """Images/s for decode + preprocess + batched forward pass, in this one process."""
    classifier = Classifier(model_path)
    classifier.load()
    spec = classifier.image_spec
    assert spec is not None
    max_pixels = Settings().MAX_IMAGE_PIXELS
    done = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        pixels = np.stack([maybe_invert(decode_image(image, spec, max_pixels), spec.invert)
                           for _ in range(batch)])
        classifier.predict(spec.to_model_input(pixels))
        done += batch
    return done / (time.perf_counter() - started)


def decode_times_ms(model_path: Path, image: bytes, repeat: int = 5) -> dict[str, float]:
    """Decode a big JPEG to the model's size: with draft mode (ours) and at full size."""
    classifier = Classifier(model_path)
    classifier.load()
    spec = classifier.image_spec
    assert spec is not None

    def full_size() -> None:
        with Image.open(io.BytesIO(image)) as img:
            img.convert("L" if spec.channels == 1 else "RGB").resize((spec.width, spec.height))

    def timed(fn) -> float:  # type: ignore[no-untyped-def]
        best = float("inf")
        for _ in range(repeat):
            started = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - started)
        return round(best * 1000, 1)

    return {"draft_ms": timed(lambda: decode_image(image, spec, 50_000_000)),
            "full_size_ms": timed(full_size)}
