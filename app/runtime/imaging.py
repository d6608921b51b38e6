"""Decode uploaded image bytes in memory and turn them into the model's pixel grid.

Safety first: only known raster formats are opened (no FITS/EPS/... surprises), the
pixel count is checked from the header before anything is decoded, and Pillow's own
decompression-bomb warning is an error. Speed second: big JPEGs are decoded at 1/2-1/8
scale with draft mode before the exact resize.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from app.runtime.errors import InvalidInput
from app.runtime.spec import ImageSpec

ALLOWED_FORMATS = ("PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF")
_RESAMPLING = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
}
_BACKGROUND = 255  # transparent pixels are composited on white
# JPEGs are decoded at 1/2-1/8 scale, but never below this multiple of the model's size:
# drafting right down to the target changed answers on photos (bench/resize_fidelity.py).
DRAFT_MARGIN = 2

# Pillow only warns between MAX_IMAGE_PIXELS and twice that: make it an error, once for
# the process (warnings.catch_warnings per call is not thread-safe, and decodes run in
# threads). decode_image also checks its own, lower, limit from the header.
warnings.filterwarnings("error", category=Image.DecompressionBombWarning)


@dataclass(frozen=True)
class DecodedImage:
    """One upload, opened once: the model's pixels, what the file is, and (when an
    explanation will be drawn over it) the picture at display size."""

    data: bytes  # the file itself (the prediction log's sha256)
    pixels: np.ndarray
    facts: dict[str, object]  # width, height, format, mode, bytes (the prediction log's)
    mimetype: str  # for the page's preview
    display: Image.Image | None = None


def decode_image(data: bytes, spec: ImageSpec, max_pixels: int,
                 draft_margin: int | None = DRAFT_MARGIN) -> np.ndarray:
    """Image file bytes -> uint8 pixels of shape spec.pixel_shape (before scaling).

    `draft_margin` None: full decode and an exact resize (the benchmark's reference).
    """
    return open_image(data, spec, max_pixels, draft_margin=draft_margin).pixels


def open_image(data: bytes, spec: ImageSpec, max_pixels: int, display_side: int = 0,
               draft_margin: int | None = DRAFT_MARGIN) -> DecodedImage:
    """Image file bytes -> DecodedImage, the file opened and decoded once.

    Raises InvalidInput for anything that is not a decodable image within limits. With
    `display_side` the picture is also kept, longest side at most that (the explanation's
    overlay); a JPEG is then drafted no smaller than that either.
    """
    if not data:
        raise InvalidInput("empty_file", "The uploaded file is empty.")
    try:
        image = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
        _check_size(image, max_pixels)
        facts = {"width": image.width, "height": image.height, "format": image.format,
                 "mode": image.mode, "bytes": len(data)}
        mimetype = image.get_format_mimetype() or "application/octet-stream"
        if image.format == "JPEG" and draft_margin:
            image.draft("L" if spec.channels == 1 and not display_side else "RGB",
                        (max(display_side, spec.width * draft_margin),
                         max(display_side, spec.height * draft_margin)))
        # In place: the default returns a copy even when nothing turns (0.6 ms a 640x480
        # photo). Turning a drafted JPEG loads it; an upright one loads in the resize.
        ImageOps.exif_transpose(image, in_place=True)
        display = _display(image, display_side) if display_side else None
        image = to_mode(image, "L" if spec.channels == 1 else "RGB")
        fast = spec.resize != "nearest" and draft_margin
        image = image.resize((spec.width, spec.height), _RESAMPLING[spec.resize],
                             reducing_gap=3.0 if fast else None)
    except InvalidInput:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_large(max_pixels) from None
    except UnidentifiedImageError:
        raise InvalidInput("invalid_image",
                           "The file is not an image we can read: send a PNG, JPEG, GIF, "
                           "WebP, BMP or TIFF file.") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise InvalidInput("invalid_image",
                           f"The image could not be decoded ({exc}); it may be truncated "
                           "or corrupt.") from None
    pixels = np.asarray(image, dtype=np.uint8).reshape(spec.pixel_shape)
    return DecodedImage(data, pixels, facts, mimetype, display)


def _display(image: Image.Image, max_side: int) -> Image.Image:
    """The upright picture as RGB, its longest side at most max_side."""
    shown = to_mode(image, "RGB")
    shown = shown.copy() if shown is image else shown
    shown.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
    return shown


def _check_size(image: Image.Image, max_pixels: int) -> None:
    if image.width * image.height > max_pixels:
        raise _too_large(max_pixels)
    if image.width < 1 or image.height < 1:
        raise InvalidInput("invalid_image", "The image has no pixels.")


def _too_large(max_pixels: int) -> InvalidInput:
    return InvalidInput("image_too_large",
                        f"The image has more than {max_pixels:,} pixels; send a smaller one.")


def to_mode(image: Image.Image, mode: str) -> Image.Image:
    """Convert any Pillow mode to 'L' or 'RGB': alpha composited, 16-bit scaled down."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        image = _high_depth_to_l(image)
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("LA", "La", "PA", "RGBA", "RGBa"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (_BACKGROUND,) * 3 + (255,))
        image = Image.alpha_composite(background, rgba)
    return image if image.mode == mode else image.convert(mode)


def _high_depth_to_l(image: Image.Image) -> Image.Image:
    """16-bit and 32-bit gray: scale the full range to 0-255 (Pillow's convert clips)."""
    values = np.asarray(image, dtype=np.float64)
    top = 65535.0 if values.max(initial=0) > 255 else 255.0
    scaled = np.clip(np.rint(values * (255.0 / top)), 0, 255).astype(np.uint8)
    return Image.fromarray(scaled, mode="L")


def maybe_invert(pixels: np.ndarray, invert: bool | str) -> np.ndarray:
    """Invert a grayscale (H, W, 1) image when asked, or when 'auto' sees a light border.

    Models trained on light-on-dark digits (MNIST) need dark-on-light photos inverted.
    The border's mean brightness stands for the background.
    """
    if invert is False or pixels.shape[-1] != 1:
        return pixels
    if invert == "auto":
        border = np.concatenate([pixels[0].ravel(), pixels[-1].ravel(),
                                 pixels[:, 0].ravel(), pixels[:, -1].ravel()])
        if border.mean() <= 127.5:
            return pixels
    return 255 - pixels


def open_upload(data: bytes, spec: ImageSpec, max_pixels: int, display_side: int = 0
                ) -> DecodedImage:
    """An uploaded file as the model's training data looked: `open_image`, then inverted
    where the card says (no copy when it is not). Uploads, the self-check's examples and
    the drift reference's all go through here, so they are decoded alike."""
    decoded = open_image(data, spec, max_pixels, display_side)
    pixels = maybe_invert(decoded.pixels, spec.invert)
    return decoded if pixels is decoded.pixels else replace(decoded, pixels=pixels)
