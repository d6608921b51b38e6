"""How 0-255 pixels become the numbers a model was trained on: order, scale, mean and std.

Every way a tutorial prepares its images is one of a few steps, applied in this order:
the channel order its loader gave (OpenCV reads BGR), a scaling (`x/255`, `[-1, 1]`,
`x/255 - 0.5`, raw, or a keras.applications mode), then an optional per-channel mean and
standard deviation (`(x - mean) / std`, in the units the scaling left). Each is a card
key (app.runtime.model_card), and calibration (app.runtime.calibration) tries them too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

CHANNEL_ORDERS: tuple[str, ...] = ("rgb", "bgr")

_IMAGENET_BGR_MEANS = np.array([103.939, 116.779, 123.68], np.float32)
_IMAGENET_MEANS = np.array([0.485, 0.456, 0.406], np.float32)
_IMAGENET_STDS = np.array([0.229, 0.224, 0.225], np.float32)


def model_values(pixels: np.ndarray, scale: str, channel_order: str = "rgb",
                 mean: tuple[float, ...] | None = None,
                 std: tuple[float, ...] | None = None) -> np.ndarray:
    """A (N, H, W, C) batch of 0-255 RGB (or gray) pixels -> float32 model values.

    One fresh float32 array, then every step in place: an array per step cost a 224 px
    photo 0.4 ms (mostly page faults on the new arrays) where this takes 0.04 ms, on the
    request's path. The same float32 operations in the same order, so the same values."""
    flip = (channel_order == "bgr") != (scale == "caffe") and pixels.shape[-1] == 3
    x = np.array(pixels[..., ::-1] if flip else pixels, dtype=np.float32)  # never the caller's
    if scale == "unit":
        x *= np.float32(1 / 255)
    elif scale == "symmetric":
        x *= np.float32(2 / 255)
        x -= np.float32(1)
    elif scale == "centered":  # x/255 - 0.5, as many Keras tutorials centre their inputs
        x *= np.float32(1 / 255)
        x -= np.float32(0.5)
    elif scale == "caffe":  # keras.applications "caffe": BGR (the flip above), means off
        x -= _IMAGENET_BGR_MEANS[-x.shape[-1]:]
    elif scale == "torch":  # keras.applications "torch": ImageNet mean and std
        x *= np.float32(1 / 255)
        x -= _IMAGENET_MEANS[:x.shape[-1]]
        x /= _IMAGENET_STDS[:x.shape[-1]]
    if mean is not None:
        x -= np.asarray(mean, np.float32)
    if std is not None:
        x /= np.asarray(std, np.float32)
    return x


def base_scale(mean: tuple[float, ...] | None) -> str:
    """The scaling a card's mean is in when the card names none: a mean above 1 was
    measured on 0-255 pixels, else on x/255 (torchvision's and most tutorials' way)."""
    return "raw" if mean is not None and max(mean) > 1 else "unit"


def parse_pixel_keys(data: dict[str, Any],
                     fail: Callable[[str, str], Exception]) -> dict[str, Any]:
    """The card's `channels`, `mean` and `std`, checked; `fail(key, expected)` names
    what is wrong."""
    channels = data.get("channels")
    if channels is not None and channels not in CHANNEL_ORDERS:
        raise fail("channels", '"rgb" or "bgr" (the order the training images were read in)')
    found: dict[str, Any] = {"channels": channels}
    for key in ("mean", "std"):
        value = data.get(key)
        if value is not None and (
                not isinstance(value, list) or len(value) not in (1, 3)
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                           for v in value)
                or (key == "std" and not all(v > 0 for v in value))):
            raise fail(key, "a list of 1 or 3 numbers (one per channel)"
                       + (", each above 0" if key == "std" else ""))
        found[key] = tuple(float(v) for v in value) if value is not None else None
    return found
