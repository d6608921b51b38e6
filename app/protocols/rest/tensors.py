"""Tensors in the standard protocols' JSON: numbers, or encoded images as base64 text.

TF Serving and the Open Inference Protocol send the model's own input tensor as nested
lists of numbers, and image files as base64 (`{"b64": ...}` rows, BYTES `data`).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import numpy as np

from app.runtime.errors import invalid_argument


def number_rows(values: Any, what: str) -> np.ndarray:
    """Nested lists of numbers -> an array (its shape is checked against the model's by the
    data plane)."""
    try:
        array = np.asarray(values)
    except (ValueError, OverflowError):
        raise invalid_argument(f"{what}: rows have different lengths or nesting") from None
    if array.dtype.kind not in "iuf":
        raise invalid_argument(f"{what}: expected numbers (or {{\"b64\": ...}} encoded images)")
    return array


def decode_b64(text: Any, what: str) -> bytes:
    """Base64 text (standard or URL-safe alphabet) -> bytes, or a 400 naming the field."""
    if not isinstance(text, str):
        raise invalid_argument(f"{what}: expected a base64 string")
    try:
        return base64.b64decode(text.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raise invalid_argument(f"{what}: not valid base64") from None
