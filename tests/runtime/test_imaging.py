"""Decoding real-world image files: modes, orientation, big photos, hostile headers."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from helpers import encode
from PIL import Image

from app.runtime.errors import InvalidInput
from app.runtime.imaging import decode_image, maybe_invert
from app.runtime.spec import ImageSpec

GRAY = ImageSpec(height=28, width=28, channels=1, layout="hwc")
RGB = ImageSpec(height=32, width=32, channels=3, layout="hwc")


def test_palette_with_transparency_is_composited_on_white() -> None:
    image = Image.new("P", (40, 40), 0)
    image.putpalette([0, 0, 0] + [255, 0, 0] * 255)
    image.info["transparency"] = 0  # index 0 (black) is transparent
    pixels = decode_image(encode(image), RGB, 10**6)
    assert pixels.shape == (32, 32, 3)
    assert (pixels == 255).all(), "transparent pixels must become the white background"


def test_la_and_rgba_alpha_composited() -> None:
    la = Image.new("LA", (30, 30), (0, 0))  # black but fully transparent
    assert decode_image(encode(la), GRAY, 10**6).min() == 255
    rgba = Image.new("RGBA", (30, 30), (0, 0, 0, 255))  # opaque black
    assert decode_image(encode(rgba), GRAY, 10**6).max() == 0


def test_cmyk_jpeg_decodes_to_rgb() -> None:
    cmyk = Image.new("CMYK", (64, 64), (0, 255, 255, 0))  # red in CMYK
    pixels = decode_image(encode(cmyk, "JPEG"), RGB, 10**6)
    assert pixels[..., 0].mean() > 200 and pixels[..., 2].mean() < 60


def test_16_bit_png_is_scaled_not_clipped() -> None:
    mid = Image.fromarray(np.full((28, 28), 32768, np.uint16))
    assert mid.mode.startswith("I")
    pixels = decode_image(encode(mid), GRAY, 10**6)
    assert 120 <= pixels.mean() <= 135


def test_exif_orientation_is_honoured() -> None:
    """A portrait photo stored landscape with Orientation=6 (rotate 90 degrees clockwise)."""
    stored = np.zeros((20, 40), np.uint8)
    stored[:, :20] = 255  # left half white as stored
    image = Image.fromarray(stored)
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(image, "JPEG", exif=exif.tobytes(), quality=95)
    spec = ImageSpec(height=40, width=20, channels=1, layout="hwc")
    pixels = decode_image(data, spec, 10**6)[..., 0]
    assert pixels[:15].mean() > 200 and pixels[25:].mean() < 50, "white half must end up on top"


def test_animated_gif_uses_the_first_frame() -> None:
    frames = [Image.new("L", (28, 28), 255), Image.new("L", (28, 28), 0)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:])
    assert decode_image(buffer.getvalue(), GRAY, 10**6).min() > 250


def test_large_jpeg_is_decoded_in_draft_mode_quickly() -> None:
    photo = Image.fromarray(np.random.default_rng(0).integers(0, 255, (3000, 4000, 3), np.uint8))
    data = encode(photo, "JPEG", quality=85)
    started = time.perf_counter()
    pixels = decode_image(data, RGB, 50_000_000)
    elapsed = time.perf_counter() - started
    assert pixels.shape == (32, 32, 3)
    draft = Image.open(io.BytesIO(data))
    draft.draft("RGB", (32, 32))
    assert draft.size == (500, 375), "draft mode decodes this 12 MP photo at 1/8 scale"
    assert elapsed < 5  # generous: only guards against a full-size decode loop gone wrong


def test_the_fast_decode_keeps_the_bundled_models_clear_answers() -> None:
    """Draft decode vs full decode on big photo JPEGs (bench/resize_fidelity.py measures
    more): pixels within about one grey level, and every answer that leads by 5 % or more
    unchanged. Near ties may flip: any resampling difference flips those."""
    from app.config import DEFAULT_MODEL_PATH, Settings
    from app.runtime.classifier import Classifier
    from app.runtime.imaging import DRAFT_MARGIN
    from bench.resize_fidelity import compare, large_jpegs

    fashion = Classifier(DEFAULT_MODEL_PATH, Settings(SELF_CHECK="off"))
    fashion.load()
    assert fashion.image_spec is not None
    images = list(large_jpegs(crops_per_photo=3, side=2000))
    served = f"{DRAFT_MARGIN}x target"
    for spec, model in ((fashion.image_spec, fashion), (ImageSpec(96, 96, 3, "hwc"), None)):
        rows = {row["margin"]: row for row in compare(spec, images, model)}
        assert rows[served]["mean_abs_pixel_diff"] < 1.5, rows
        assert rows[served]["decode_ms"] < rows["full decode"]["decode_ms"], rows
        if model is not None:
            assert rows[served]["clear"] >= 8 and rows[served]["agree_clear"] == 1.0, rows


def test_pixel_limit_is_checked_from_the_header() -> None:
    bomb = encode(Image.new("1", (6000, 6000)))  # 36 MP in a few kB
    assert len(bomb) < 20_000
    with pytest.raises(InvalidInput) as info:
        decode_image(bomb, GRAY, 10_000_000)
    assert info.value.code == "image_too_large"


@pytest.mark.parametrize("data", [
    b"GIF89a\x01\x00\x01\x00",  # header only
    b"\x89PNG\r\n\x1a\n" + b"\x00" * 30,
    b"\xff\xd8\xff\xe0" + b"\x00" * 30,
    b"<svg xmlns='http://www.w3.org/2000/svg'/>",
    b"SIMPLE  =                    T" + b" " * 50,  # FITS header: never opened
], ids=["gif-header", "png-garbage", "jpeg-garbage", "svg", "fits"])
def test_garbage_is_invalid_input(data: bytes) -> None:
    with pytest.raises(InvalidInput) as info:
        decode_image(data, GRAY, 10**6)
    assert info.value.code == "invalid_image"


@pytest.mark.parametrize(("border", "expect_inverted"), [(250, True), (5, False)])
def test_auto_invert_follows_the_border(border: int, expect_inverted: bool) -> None:
    pixels = np.full((28, 28, 1), border, np.uint8)
    pixels[10:18, 10:18] = 255 - border
    out = maybe_invert(pixels, "auto")
    assert bool(out[0, 0, 0] == 255 - border) is expect_inverted


def test_invert_ignores_rgb() -> None:
    pixels = np.full((4, 4, 3), 250, np.uint8)
    assert maybe_invert(pixels, True) is pixels
