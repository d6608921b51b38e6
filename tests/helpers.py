"""Small helpers the tests share: encode images in memory, upload them."""

from __future__ import annotations

import io

import numpy as np
from flask.testing import FlaskClient
from PIL import Image


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
