"""Draw a heatmap over the user's own image: what the explanation answers as a PNG.

The upload's picture at display size (longest side at most EXPLAIN_MAX_SIDE) comes from
the same decode as the model's pixels (app.runtime.imaging.open_image); the heatmap is
stretched over it the way that decode stretched the image to the model's size, coloured
and blended. The colour
scale is the one the page's legend and canvas use (COLOR_STOPS).
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

# Low to high attention: transparent-looking blue, cyan, yellow, red (a "jet"-like scale).
COLOR_STOPS = ((0.0, (30, 60, 200)), (0.35, (0, 200, 230)), (0.65, (250, 220, 0)),
               (1.0, (220, 20, 20)))
OPACITY = 0.5  # the server-rendered blend; the page's slider starts here too


def colorize(heatmap: np.ndarray) -> np.ndarray:
    """(H, W) values in 0-1 -> (H, W, 3) uint8 colours of COLOR_STOPS."""
    positions = [stop for stop, _ in COLOR_STOPS]
    channels = [np.interp(heatmap, positions, [color[c] for _, color in COLOR_STOPS])
                for c in range(3)]
    return np.stack(channels, axis=-1).astype(np.uint8)


def overlay_png(image: Image.Image, heatmap: np.ndarray) -> bytes:
    """The heatmap coloured, stretched over `image` and blended at OPACITY, as PNG bytes."""
    heat = Image.fromarray(colorize(heatmap), "RGB").resize(image.size,
                                                            Image.Resampling.BILINEAR)
    out = io.BytesIO()
    Image.blend(image, heat, OPACITY).save(out, format="PNG", compress_level=3)
    return out.getvalue()
