"""Does the model answer its own card's examples right? Checked at load, before serving.

A model trained on raw 0-255 pixels says so nowhere in its file; fed 0-1 pixels it answers
near-uniformly or confidently wrong, and nobody notices. A card's examples can carry their
true label: each is run at warm-up, and when any is wrong the other scalings are tried, so
the message can say which one makes every example right. The model repository can call
`check_examples` on a new version before it switches traffic to it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from app.config import Settings
from app.runtime.errors import InvalidInput
from app.runtime.imaging import open_upload
from app.runtime.model_card import SCALES, ModelCard
from app.runtime.spec import ImageSpec


@dataclass(frozen=True)
class LabelledExample:
    file: str
    data: bytes
    label: str


@dataclass(frozen=True)
class SelfCheck:
    """What the examples said: which were wrong, and the scalings that get all right."""

    checked: int
    wrong: tuple[str, ...]
    fits: tuple[str, ...]

    def message(self) -> str:
        """One line for the log: what failed and what to put in the card."""
        hint = (f'all {self.checked} examples are right with scale {self.fits[0]}: add '
                f'"scale": "{self.fits[0]}" to the model card') if self.fits else \
            "no scaling gets them all right: check the examples' labels and the model"
        return f"self-check failed on {len(self.wrong)} of {self.checked} examples " \
               f"({'; '.join(self.wrong)}); {hint}"


def find_example(file: str, folders: list[Path]) -> Path | None:
    """A card's example file in the first of `folders` that holds it."""
    return next((folder / file for folder in folders if (folder / file).is_file()), None)


def labelled_examples(card: ModelCard, folders: list[Path]) -> list[LabelledExample]:
    """The card's examples that name their label, read from the first folder holding each."""
    found = []
    for example in card.examples:
        path = find_example(example.file, folders)
        if example.label is not None and path is not None:
            found.append(LabelledExample(example.file, path.read_bytes(), example.label))
    return found


Predict = Callable[[np.ndarray], np.ndarray]  # model input batch -> probabilities


def check_examples(predict: Predict, spec: ImageSpec, labels: tuple[str, ...],
                   examples: list[LabelledExample]) -> SelfCheck:
    """Run the examples as uploads; on a miss, try every other scaling as well."""
    pixels = decode_examples(examples, spec)
    wrong = _misses(predict, spec, labels, examples, pixels)
    if not wrong:
        return SelfCheck(len(examples), (), (spec.scale,))
    fits = tuple(s for s in candidate_scales(spec) if s != spec.scale
                 and not _misses(predict, replace(spec, scale=s), labels, examples, pixels))
    return SelfCheck(len(examples), tuple(wrong), fits)


def candidate_scales(spec: ImageSpec) -> list[str]:
    """The scalings worth trying: the ImageNet ones only for RGB models."""
    return [s for s in SCALES if s not in ("caffe", "torch") or spec.channels == 3]


def decode_examples(examples: list[LabelledExample], spec: ImageSpec) -> np.ndarray:
    """The examples as one (N, H, W, C) uint8 batch, decoded exactly like uploads."""
    if not examples:
        return np.empty((0, *spec.pixel_shape), np.uint8)
    return np.stack([_pixels(example, spec) for example in examples])


def answers(predict: Predict, spec: ImageSpec, labels: tuple[str, ...],
            pixels: np.ndarray, chunk: int = 64) -> list[str]:
    """The top label for each image, scaled as `spec` says, `chunk` images a call."""
    found: list[str] = []
    for start in range(0, len(pixels), chunk):
        probabilities = predict(spec.to_model_input(pixels[start:start + chunk]))
        found += [labels[i] for i in probabilities.argmax(axis=1)]
    return found


def _pixels(example: LabelledExample, spec: ImageSpec) -> np.ndarray:
    try:
        return open_upload(example.data, spec, Settings.MAX_IMAGE_PIXELS).pixels
    except InvalidInput as exc:
        raise ValueError(f"example {example.file}: {exc.message}") from None


def _misses(predict: Predict, spec: ImageSpec, labels: tuple[str, ...],
            examples: list[LabelledExample], pixels: np.ndarray) -> list[str]:
    return [f"{e.file}: {answer}, expected {e.label}"
            for e, answer in zip(examples, answers(predict, spec, labels, pixels), strict=True)
            if answer != e.label]
