"""Validate raw pixel arrays sent as JSON and shape them like decoded images.

`/predict` clients (the dl-in-production tutorial's R client among them) send rows of
0-255 pixel values, flat or shaped. Each row must have one of the shapes the model
can take; anything else is a 422 that says which shapes would be accepted.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from app.protocols.rest.errors import ApiError
from app.runtime.dataplane.batches import check_row_count
from app.runtime.spec import ImageSpec


def accepted_shapes(spec: ImageSpec) -> list[tuple[int, ...]]:
    """Per-row shapes accepted: the model's own, the (H, W, C) image, a flat vector."""
    h, w, c = spec.pixel_shape
    shapes = [spec.model_shape, spec.pixel_shape, (h * w * c,)]
    if c == 1:
        shapes.append((h, w))
    return list(dict.fromkeys(shapes))


def parse_pixel_rows(rows: Any, spec: ImageSpec, max_rows: int) -> np.ndarray:
    """A JSON list of rows -> float32 pixels of shape (N, H, W, C), values 0-255."""
    if not isinstance(rows, list):
        raise ApiError(422, "invalid_shape", '"input" must be a list of rows (one per image).')
    if not rows:
        raise ApiError(422, "empty_batch", '"input" is empty: send at least one row.')
    check_row_count(len(rows), max_rows, '"input"')
    try:
        raw = np.asarray(rows)
    except (ValueError, OverflowError):
        raise _bad_shape(spec, "rows have different lengths or nesting") from None
    if raw.dtype.kind not in "iuf":
        raise ApiError(422, "invalid_value",
                       "Every value must be a number (0-255); found "
                       f"{'strings' if raw.dtype.kind == 'U' else 'non-numbers'}.")
    pixels = _to_pixel_layout(raw.astype(np.float32), spec)
    if not np.isfinite(pixels).all():
        raise ApiError(422, "invalid_value", "Values must be finite numbers: NaN and Infinity "
                       "are not pixel values.")
    if pixels.min() < 0 or pixels.max() > 255:
        raise ApiError(422, "invalid_value",
                       "Values must be raw pixel values between 0 and 255 "
                       f"(found {pixels.min():g} to {pixels.max():g}).")
    return pixels


def _to_pixel_layout(values: np.ndarray, spec: ImageSpec) -> np.ndarray:
    row_shape = values.shape[1:]
    n = len(values)
    if row_shape == spec.pixel_shape:
        return values
    if row_shape == (spec.height, spec.width) and spec.channels == 1:
        return values.reshape(n, *spec.pixel_shape)
    if row_shape in (spec.model_shape, (math.prod(spec.model_shape),)):
        return spec.from_model_layout(values)
    raise _bad_shape(spec, f"got rows of shape {list(row_shape)}")


def _bad_shape(spec: ImageSpec, detail: str) -> ApiError:
    shapes = " or ".join(str(list(s)) for s in accepted_shapes(spec))
    return ApiError(422, "invalid_shape", f"Each row must have shape {shapes}; {detail}.")
