"""What a model takes and gives, inferred from its shapes and its model card.

No code per model: `(H, W, 1)` grayscale, `(H, W, 3)` RGB, channels-first, `(H, W)`
and flat `(N,)` vectors are all described by one `ImageSpec`; a softmax over N classes
and a single sigmoid unit by one `OutputSpec`. Everything the service feeds the model
goes through `ImageSpec.to_model_input`, so uploads and raw arrays are scaled alike.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import numpy as np

from app.runtime.model_card import ModelCard
from app.runtime.pixel_math import base_scale, model_values

Layout = Literal["hwc", "chw", "hw", "flat"]
Shape = tuple[int | None, ...]
OutputKind = Literal["softmax", "binary", "multilabel", "logits"]

class UnservableModel(ValueError):
    """The model's shapes are not those of an image classifier we can serve."""


@dataclass(frozen=True)
class ImageSpec:
    """The image a model wants and how its pixels become the model's input tensor."""

    height: int
    width: int
    channels: int
    layout: Layout
    scale: str = "unit"
    invert: bool | str = False
    resize: str = "bilinear"
    channel_order: str = "rgb"  # the rest: app.runtime.pixel_math
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    @property
    def pixel_shape(self) -> tuple[int, int, int]:
        """Shape of one image as decoded: height, width, channels."""
        return (self.height, self.width, self.channels)

    @cached_property
    def model_shape(self) -> tuple[int, ...]:
        """Shape of one item as the model takes it (without the batch axis); kept, as
        every request asks."""
        h, w, c = self.pixel_shape
        return {"hwc": (h, w, c), "chw": (c, h, w), "hw": (h, w), "flat": (h * w * c,)}[self.layout]

    @property
    def color_mode(self) -> str:
        return "grayscale" if self.channels == 1 else "rgb"

    def to_model_input(self, pixels: np.ndarray) -> np.ndarray:
        """Turn a (N, H, W, C) batch of 0-255 pixel values into the model's float32 input."""
        x = model_values(pixels, self.scale, self.channel_order, self.mean, self.std)
        if self.layout == "chw":
            x = x.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(x.reshape((len(x), *self.model_shape)))

    def from_model_layout(self, batch: np.ndarray) -> np.ndarray:
        """A batch in the model's own layout -> (N, H, W, C) pixels (values unchanged)."""
        as_model = batch.reshape(len(batch), *self.model_shape)
        if self.layout == "chw":
            return np.ascontiguousarray(as_model.transpose(0, 2, 3, 1))
        return as_model.reshape(len(batch), *self.pixel_shape)

    def describe(self) -> dict[str, object]:
        return {
            "height": self.height, "width": self.width, "channels": self.channels,
            "color_mode": self.color_mode, "layout": self.layout,
            "model_input_shape": [None, *self.model_shape],
            "scale": self.scale, "invert": self.invert, "resize": self.resize,
            "channel_order": self.channel_order, "mean": self.mean, "std": self.std,
        }


@dataclass(frozen=True)
class OutputSpec:
    """Class names and what the output is: a softmax, one sigmoid unit (binary), several
    independent sigmoid scores (multi-label) or logits (softmax applied here)."""

    labels: tuple[str, ...]
    kind: OutputKind = "softmax"

    @property
    def binary(self) -> bool:
        return self.kind == "binary"

    def probabilities(self, raw: np.ndarray) -> np.ndarray:
        """Model output (N, K) or (N, 1) -> probabilities (N, len(labels)) in label order."""
        raw = raw.astype(np.float32, copy=False)
        if self.kind == "binary":
            p = raw[:, :1]
            return np.concatenate([1 - p, p], axis=1)
        if self.kind == "logits":
            shifted = np.exp(raw - raw.max(axis=1, keepdims=True))
            return shifted / shifted.sum(axis=1, keepdims=True)
        return raw


def infer_image_spec(shape: Shape, card: ModelCard, scale: str = "unit",
                     resized_to: tuple[int, int] | None = None) -> ImageSpec:
    """Describe the image a model with per-item input `shape` needs (batch axis removed).

    `scale` is what the model itself asks for (app.runtime.preprocessing); a card's wins.
    `resized_to` is the size of a leading Resizing layer: an open input shape takes it
    unless the card gives an image_size.
    """
    layout, height, width, channels = _layout_of(shape, card)
    if height is None or width is None:
        size = card.image_size or resized_to
        if size is None:
            raise UnservableModel(
                f"input shape {_fmt(shape)} leaves the image size open: "
                'give "image_size": [height, width] in the model card')
        height, width = size
    elif card.image_size is not None and tuple(card.image_size) != (height, width):
        raise UnservableModel(
            f"model card image_size {list(card.image_size)} contradicts the model's "
            f"input shape {_fmt(shape)}")
    wanted = {"grayscale": 1, "rgb": 3}.get(card.color_mode or "", channels)
    if wanted != channels:
        raise UnservableModel(
            f"model card color_mode {card.color_mode!r} contradicts the model's "
            f"input shape {_fmt(shape)}")
    for key, stats in (("mean", card.mean), ("std", card.std)):
        if stats is not None and len(stats) not in (1, channels):
            raise UnservableModel(f"model card {key} has {len(stats)} values; the model's "
                                  f"images have {channels} channel(s)")
    if card.mean is not None or card.std is not None:
        scale = base_scale(card.mean)  # the card's statistics say what they were measured on
    return ImageSpec(height=height, width=width, channels=channels, layout=layout,
                     scale=card.scale or scale, invert=card.invert, resize=card.resize,
                     channel_order=card.channels or "rgb", mean=card.mean, std=card.std)


def _layout_of(shape: Shape, card: ModelCard) -> tuple[Layout, int | None, int | None, int]:
    if len(shape) == 3:
        a, b, c = shape
        if c in (1, 3):
            return "hwc", a, b, c
        if a in (1, 3):
            return "chw", b, c, a
        raise UnservableModel(f"input shape {_fmt(shape)} has no 1- or 3-channel axis")
    if len(shape) == 2:
        return "hw", shape[0], shape[1], 1
    if len(shape) == 1 and shape[0]:
        return ("flat", *_flat_geometry(shape[0], card))
    raise UnservableModel(
        f"input shape {_fmt(shape)} is not an image: expected (H, W, C), (C, H, W), "
        "(H, W) or a flat vector")


def _flat_geometry(size: int, card: ModelCard) -> tuple[int, int, int]:
    """Height, width and channels of a flat input of `size` values."""
    if card.image_size is not None:
        h, w = card.image_size
        channels = size // (h * w) if size % (h * w) == 0 else 0
        if channels not in (1, 3):
            raise UnservableModel(
                f"flat input of {size} values does not fit image_size {[h, w]} "
                "with 1 or 3 channels")
        return h, w, channels
    for channels in ((3,) if card.color_mode == "rgb" else (1, 3)):
        side = math.isqrt(size // channels)
        if side * side * channels == size:
            return side, side, channels
    raise UnservableModel(
        f"flat input of {size} values is not a square image: "
        'give "image_size": [height, width] in the model card')


def infer_output_spec(shape: Shape, card: ModelCard, kind: str = "softmax") -> OutputSpec:
    """Describe a classifier's output of per-item `shape` (batch axis removed)."""
    if len(shape) != 1 or not shape[0]:
        raise UnservableModel(
            f"output shape {_fmt(shape)} is not a classifier's: expected (classes,) or (1,)")
    binary = shape[0] == 1
    count = 2 if binary else shape[0]
    labels = tuple(card.labels) if card.labels else tuple(str(i) for i in range(count))
    if len(labels) != count:
        raise UnservableModel(
            f"{card.labels_from or 'model card'} lists {len(labels)} labels but the model "
            f"has {count} classes"
            + (" (a single sigmoid unit: give two labels, negative first)" if binary else ""))
    return OutputSpec(labels=labels, kind="binary" if binary else kind)  # type: ignore[arg-type]


def _fmt(shape: Sequence[int | None]) -> str:
    dims = ", ".join("None" if d is None else str(d) for d in shape)
    return f"({dims},)" if len(shape) == 1 else f"({dims})"
