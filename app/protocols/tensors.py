"""Model-input tensors from the standard protocols' JSON: numbers or encoded images.

TF Serving and the Open Inference Protocol send the model's own input tensor (already
scaled, in the model's shape), or encoded image files (base64). Both end up as one
float32 batch in the model's input shape; images go through the same decode and
preprocessing as uploads.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import numpy as np

from app.protocols.errors import invalid_argument
from app.runtime.inference import InferenceService

OUTPUT_NAME = "probabilities"



def numeric_rows(values: Any, service: InferenceService, what: str) -> np.ndarray:
    """A list of rows in the model's input shape -> float32 (N, *model_shape)."""
    shape = service.spec.model_shape
    try:
        array = np.asarray(values)
    except (ValueError, OverflowError):
        raise invalid_argument(f"{what}: rows have different lengths or nesting") from None
    if array.dtype.kind not in "iuf":
        raise invalid_argument(f"{what}: expected numbers (or {{\"b64\": ...}} encoded images)")
    if array.ndim == 0 or array.shape[1:] != shape:
        raise invalid_argument(f"{what}: expected rows of shape {list(shape)}, "
                               f"got shape {list(array.shape[1:]) if array.ndim else []}")
    array = array.astype(np.float32)
    if not np.isfinite(array).all():
        raise invalid_argument(f"{what}: NaN and Infinity are not valid inputs")
    return array


def decode_b64(text: Any, what: str) -> bytes:
    """Base64 text (standard or URL-safe alphabet) -> bytes, or a 400 naming the field."""
    if not isinstance(text, str):
        raise invalid_argument(f"{what}: expected a base64 string")
    try:
        return base64.b64decode(text.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raise invalid_argument(f"{what}: not valid base64") from None


def encoded_images(files: list[bytes], service: InferenceService) -> np.ndarray:
    """Encoded image files -> float32 (N, *model_shape), preprocessed like uploads."""
    pixels = np.stack([service.preprocess_image(data) for data in files])
    return service.spec.to_model_input(pixels)


def raw_outputs(probabilities: np.ndarray, binary: bool) -> np.ndarray:
    """The model's own output for protocol clients: a sigmoid model's p, a softmax as is."""
    return probabilities[:, 1:2] if binary else probabilities
