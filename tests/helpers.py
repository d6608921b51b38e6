"""Small helpers the tests share: encode images in memory, upload them; the bundled model
copied with a labelled examples folder of Fashion-MNIST test images."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
from flask.testing import FlaskClient
from PIL import Image

from app.config import DEFAULT_MODEL_PATH
from scripts.idx import DATASET_DIR, load_idx


def encode(image: Image.Image | np.ndarray, fmt: str = "PNG", **params: object) -> bytes:
    """Encode a Pillow image (or uint8 array) to file bytes in memory."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def upload(client: FlaskClient, data: bytes, field: str = "image", path: str = "/predictlabel",
           filename: str = "image.png", **kwargs: object):
    """POST one file as multipart/form-data."""
    return client.post(path, data={field: (io.BytesIO(data), filename)},
                       content_type="multipart/form-data", **kwargs)


def served(app, name: str | None = None):
    """The InferenceService answering for `name` (default: the default model's latest)."""
    models = app.extensions["h5serve"].models
    return models.table[name or models.default_name].latest


def bundled_model_copy(folder: Path) -> Path:
    """The bundled model and its card in `folder` (files beside it are the test's own)."""
    for suffix in (".h5", ".json"):
        shutil.copy(DEFAULT_MODEL_PATH.with_suffix(suffix), folder)
    return folder / DEFAULT_MODEL_PATH.name


def fashion_examples(model: Path, per_label: int) -> Path:
    """`per_label` Fashion-MNIST test images of each class from the second half (tests
    serve the first), as PNG files in the model's `<stem>.examples/<label>/`."""
    images = load_idx(DATASET_DIR / "t10k-images-idx3-ubyte.gz")[5000:]
    classes = load_idx(DATASET_DIR / "t10k-labels-idx1-ubyte.gz")[5000:]
    root = model.with_name(f"{model.stem}.examples")
    labels = json.loads(model.with_suffix(".json").read_text())["labels"]
    for index, label in enumerate(labels):
        (folder := root / label.replace("/", "-")).mkdir(parents=True)
        for number, image in enumerate(images[classes == index][:per_label]):
            Image.fromarray(image).save(folder / f"{number:03}.png")
    return root
