"""The optional model card: a JSON sidecar beside the model (`foo.h5` -> `foo.json`).

It tells the service what the `.h5` file cannot: class names, how pixels were scaled
in training, whether light-background images must be inverted, and the image size for
models whose input shape leaves it open.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from app.runtime.model_file import archive_class_names
from app.runtime.pixel_math import parse_pixel_keys

Scale = Literal["unit", "symmetric", "raw", "centered", "caffe", "torch"]
Invert = Literal[True, False, "auto"]
ColorMode = Literal["grayscale", "rgb"]

SCALES: tuple[str, ...] = ("unit", "symmetric", "raw", "centered", "caffe", "torch")
# Keys that say how pixels are prepared: those a card sets are never calibrated away.
PIXEL_KEYS = ("scale", "invert", "channels", "mean", "std")
RESIZE_METHODS: tuple[str, ...] = ("nearest", "bilinear", "bicubic", "lanczos", "box")


class ModelCardError(ValueError):
    """The sidecar exists but cannot be used; the message names the key."""


@dataclass(frozen=True)
class Example:
    """An example image for the upload page (in static/examples/) and its true label."""

    file: str
    label: str | None = None

    @property
    def caption(self) -> str:
        return self.label or self.file.rsplit(".", 1)[0].replace("_", " ")


@dataclass(frozen=True)
class ModelCard:
    """What the sidecar says; every field has a safe default."""

    name: str
    labels: list[str] | None = None
    invert: Invert = False
    scale: Scale | None = None  # None: read from the model (app.runtime.preprocessing)
    resize: str = "bilinear"
    image_size: tuple[int, int] | None = None
    color_mode: ColorMode | None = None
    description: str = ""
    accuracy: float | None = None
    examples: tuple[Example, ...] = ()
    low_confidence: float = 0.6
    labels_from: str = ""  # where the labels came from, for /model and the log
    channels: str | None = None  # "rgb" or "bgr"; these three: app.runtime.pixel_math
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    pinned: frozenset[str] = frozenset()  # the PIXEL_KEYS the card sets
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def for_model(cls, model_path: Path, shared: Path | None = None) -> ModelCard:
        """Read `<stem>.json` beside the model, else the repository's card for all of the
        model's versions (`shared`), else return defaults named after the file.

        Without labels in a card, a `class_names` list stored in a .keras file gives
        them, else a `labels.txt` beside the model (Teachable Machine exports ship one:
        "0 Rock" lines).
        """
        own = model_path.with_suffix(".json")
        card = cls._read(own if own.is_file() or shared is None else shared, model_path.stem)
        stored = archive_class_names(model_path) if card.labels is None \
            and model_path.suffix == ".keras" and model_path.is_file() else None
        if stored:
            return replace(card, labels=stored[0],
                           labels_from=f"class_names in the .keras file's {stored[1]}")
        if card.labels is None:
            text = model_path.with_name("labels.txt")
            if text.is_file():
                labels = parse_labels_txt(text.read_text(encoding="utf-8", errors="replace"))
                if labels:
                    return replace(card, labels=labels, labels_from=str(text.name))
        return card

    @classmethod
    def _read(cls, path: Path, stem: str) -> ModelCard:
        if not path.is_file():
            return cls(name=stem)
        return cls.from_dict(read_card_file(path), default_name=stem, source=str(path))

    @classmethod
    def from_dict(cls, data: dict[str, Any], default_name: str, source: str = "card") -> ModelCard:
        def fail(key: str, expected: str) -> ModelCardError:
            return ModelCardError(f"{source}: {key!r} must be {expected}, got {data[key]!r}")

        known = {"name", "labels", "invert", "scale", "resize", "image_size", "color_mode",
                 "description", "accuracy", "examples", "low_confidence", *PIXEL_KEYS,
                 "versions", "version_labels", "rollout"}  # the last three: repository_layout
        labels = data.get("labels")
        if labels is not None and (not isinstance(labels, list) or not labels
                                   or not all(isinstance(x, str) for x in labels)):
            raise fail("labels", "a non-empty list of strings")
        invert = data.get("invert", False)
        if invert not in (True, False, "auto"):
            raise fail("invert", 'true, false or "auto"')
        scale = data.get("scale")
        if scale is not None and scale not in SCALES:
            raise fail("scale", " or ".join(SCALES))
        resize = data.get("resize", "bilinear")
        if resize not in RESIZE_METHODS:
            raise fail("resize", " or ".join(RESIZE_METHODS))
        size = data.get("image_size")
        if size is not None:
            if (not isinstance(size, list) or len(size) != 2
                    or not all(isinstance(v, int) and 0 < v <= 8192 for v in size)):
                raise fail("image_size", "[height, width] in pixels")
            size = (size[0], size[1])
        color_mode = data.get("color_mode")
        if color_mode not in (None, "grayscale", "rgb"):
            raise fail("color_mode", '"grayscale" or "rgb"')
        accuracy = data.get("accuracy")
        if accuracy is not None and not isinstance(accuracy, (int, float)):
            raise fail("accuracy", "a number")
        examples = data.get("examples", [])
        if not isinstance(examples, list) or not all(map(_is_example, examples)):
            raise fail("examples", 'a list of file names in static/examples/ (or of '
                       '{"file": name, "label": its true label})')
        low_confidence = data.get("low_confidence", 0.6)
        if isinstance(low_confidence, bool) or not isinstance(low_confidence, (int, float)) \
                or not 0 <= low_confidence <= 1:
            raise fail("low_confidence", "a probability from 0 to 1")
        pixels = parse_pixel_keys(data, fail)
        return cls(
            name=str(data.get("name") or default_name),
            labels=labels,
            labels_from="model card" if labels else "",
            invert=invert,
            scale=scale,
            resize=resize,
            image_size=size,
            color_mode=color_mode,
            description=str(data.get("description", "")),
            accuracy=accuracy,
            examples=tuple(Example(x) if isinstance(x, str) else Example(x["file"], x.get("label"))
                           for x in examples),
            low_confidence=float(low_confidence),
            **pixels,
            pinned=frozenset(k for k in PIXEL_KEYS if data.get(k) is not None),
            extra={k: v for k, v in data.items() if k not in known},
        )


def read_card_file(path: Path) -> dict[str, Any]:
    """A card file's JSON object; ModelCardError when it is unreadable or not an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelCardError(f"model card {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ModelCardError(f"model card {path} must hold a JSON object")
    return data


def _is_example(entry: Any) -> bool:
    """A bare file name in static/examples/, or {"file": name, "label": text}."""
    if isinstance(entry, dict):
        if set(entry) - {"file", "label"} or not isinstance(entry.get("label", ""), str):
            return False
        entry = entry.get("file")
    return isinstance(entry, str) and bool(entry) and "/" not in entry \
        and not entry.startswith(".")


def parse_labels_txt(text: str) -> list[str]:
    """One label per line; Teachable Machine's "0 Rock" lines lose their leading index."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return [line.split(" ", 1)[1].strip() for line in lines] if numbered_labels(text) \
        else lines


def numbered_labels(text: str) -> bool:
    """Teachable Machine's form: "0 Rock", "1 Paper"... (an export's signature)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return bool(lines) and all(line.split(" ", 1)[0] == str(i) and " " in line
                               for i, line in enumerate(lines))
