"""Does the fast JPEG decode change answers? Draft-mode decode vs a full decode.

A 12 MP photo decoded at 1/8 scale (JPEG draft mode) and then resized is 5-10x faster
than a full decode, but drafting right down to the model's size moves pixels. Measured
on large JPEGs made from the photos bundled in scikit-image (crops of chelsea, astronaut,
coffee, rocket and a stained-tissue slide, upscaled and saved by this script; nothing
downloaded), for each draft margin: the mean pixel difference from a full decode with an
exact resize (at the bundled model's 28x28 grayscale and at 96 and 224 px RGB), the
bundled model's top-1 agreement with its answer on the full decode, and decode time.
Photos are far from Fashion-MNIST, so many answers are near ties: agreement is also
given on the answers that lead clearly.

    .venv/bin/python -m bench.resize_fidelity [--crops 12] [--side 3000]
"""

from __future__ import annotations

import argparse
import io
import time
from collections.abc import Iterator

import numpy as np

from app.config import DEFAULT_MODEL_PATH
from app.runtime.classifier import Classifier
from app.runtime.imaging import decode_image, maybe_invert
from app.runtime.spec import ImageSpec

PHOTOS = ("chelsea", "astronaut", "coffee", "rocket", "immunohistochemistry")
MARGINS: tuple[int | None, ...] = (1, 2, 4, None)  # None: the full-decode reference
MAX_PIXELS = 40_000_000
CLEAR_LEAD = 0.05  # answers closer than this to the runner-up are coin flips


def large_jpegs(crops_per_photo: int, side: int, seed: int = 0) -> Iterator[bytes]:
    """Random crops of each photo, upscaled to `side` px on the long edge, as JPEG q90."""
    from PIL import Image
    from skimage import data

    rng = np.random.default_rng(seed)
    for name in PHOTOS:
        photo = Image.fromarray(getattr(data, name)()).convert("RGB")
        for _ in range(crops_per_photo):
            w, h = (int(d * rng.uniform(0.5, 1.0)) for d in photo.size)
            x, y = rng.integers(0, photo.width - w + 1), rng.integers(0, photo.height - h + 1)
            crop = photo.crop((x, y, x + w, y + h))
            scale = side / max(crop.size)
            big = crop.resize((round(w * scale), round(h * scale)), Image.Resampling.LANCZOS)
            out = io.BytesIO()
            big.save(out, "JPEG", quality=90)
            yield out.getvalue()


def decode_all(images: list[bytes], spec: ImageSpec, margin: int | None,
               ) -> tuple[np.ndarray, float]:
    """Decoded pixels of every image, and the mean decode time in milliseconds."""
    started = time.perf_counter()
    pixels = np.stack([maybe_invert(decode_image(b, spec, MAX_PIXELS, margin), spec.invert)
                       for b in images])
    return pixels, 1000 * (time.perf_counter() - started) / len(images)


def compare(spec: ImageSpec, images: list[bytes], classifier: Classifier | None = None,
            ) -> list[dict[str, float | str]]:
    """One row per draft margin: pixel error against the full decode and, with a model,
    top-1 agreement with the full decode's answer (on all images, and on those where
    that answer leads the runner-up by CLEAR_LEAD), and decode time."""
    decoded = {m: decode_all(images, spec, m) for m in MARGINS}
    reference = decoded[None][0]
    rows: list[dict[str, float | str]] = [
        {"margin": "full decode" if m is None else f"{m}x target",
         "mean_abs_pixel_diff": float(np.abs(p.astype(int) - reference).mean()),
         "decode_ms": ms} for m, (p, ms) in decoded.items()]
    if classifier is not None:
        top1 = {m: classifier.predict(spec.to_model_input(p)) for m, (p, _) in decoded.items()}
        leads = np.diff(np.sort(top1[None], axis=1)[:, -2:], axis=1)[:, 0]
        clear = leads >= CLEAR_LEAD
        answers = {m: p.argmax(axis=1) for m, p in top1.items()}
        for row, m in zip(rows, MARGINS, strict=True):
            same = answers[m] == answers[None]
            row.update(agree_all=float(same.mean()), agree_clear=float(same[clear].mean()),
                       clear=int(clear.sum()))
    return rows


def _print(title: str, rows: list[dict[str, float | str]]) -> None:
    print(f"\n{title}")
    agree = "agree_all" in rows[0]
    if agree:
        print(f"  top-1 agreement with the full decode: on all images, and on the "
              f"{rows[0]['clear']} whose answer leads by >= {CLEAR_LEAD:.0%}")
    print(f"  {'draft':<12} {'|pixel diff|':>12} {'decode ms':>10}"
          + (f" {'agree, all':>11} {'agree, clear':>13}" if agree else ""))
    for row in rows:
        print(f"  {row['margin']:<12} {row['mean_abs_pixel_diff']:>12.2f} "
              f"{row['decode_ms']:>10.1f}" + (f" {row['agree_all']:>11.3f} "
                                               f"{row['agree_clear']:>13.3f}" if agree else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crops", type=int, default=12, help="crops per photo")
    parser.add_argument("--side", type=int, default=3000, help="long edge of each JPEG, px")
    args = parser.parse_args()
    images = list(large_jpegs(args.crops, args.side))
    fashion = Classifier(DEFAULT_MODEL_PATH)
    fashion.load()
    assert fashion.image_spec is not None
    print(f"{len(images)} JPEGs, long edge {args.side} px, from skimage.data {PHOTOS}")
    _print("bundled Fashion-MNIST model (28x28 grayscale)",
           compare(fashion.image_spec, images, fashion))
    for size in (96, 224):
        _print(f"pixels only, {size}x{size} RGB (a MobileNet-sized input)",
               compare(ImageSpec(size, size, 3, "hwc"), images))


if __name__ == "__main__":
    main()
