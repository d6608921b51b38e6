"""Which preprocessing gets a model's labelled examples right: a small, deterministic search.

Nothing in a downloaded file says it was trained on raw pixels, on OpenCV's BGR images or
on white-on-black digits; a few labelled images say it at once. Each candidate is a way
to prepare pixels (scaling; channel order for RGB models, inversion for grayscale ones)
and is scored by how many examples come out right. The search goes axis by axis from the
default choice (app.runtime.preprocessing), each axis scored with the others held at
their best so far and changed only when clearly better, until a round changes nothing;
the product of the axes only when that fits nothing. A tie goes to the choice nearest
the default, then to the earlier one, so every worker picks the same.

The default is replaced only by a candidate clearly better (a margin more examples
right), and whatever is chosen must get a set share right: a model whose examples fit
nothing is refused with the scores, never served on a guess.
"""

from __future__ import annotations

import itertools
import json
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from app.runtime.imaging import maybe_invert
from app.runtime.pixel_math import CHANNEL_ORDERS
from app.runtime.self_check import LabelledExample, Predict, answers, candidate_scales
from app.runtime.spec import ImageSpec

MARGIN_SHARE = 0.1  # "clearly better": this share of the examples more right (at least 2)
FIT_SHARE = 0.6  # a choice must get this share right, and beat always-the-commonest-label
INVERSIONS: tuple[bool | str, ...] = (False, "auto", True)
_CARD_KEYS = {"scale": "scale", "channel_order": "channels", "invert": "invert"}
_ROUNDS = 3


@dataclass(frozen=True)
class Candidate:
    """One way to prepare pixels: the axes calibration can change."""

    scale: str
    channel_order: str = "rgb"
    invert: bool | str = False

    def card_keys(self, channels: int) -> dict[str, Any]:
        """The card entries that pin this choice, for a model with `channels`."""
        keys: dict[str, Any] = {"scale": self.scale}
        if channels == 3:
            keys["channels"] = self.channel_order
        else:
            keys["invert"] = self.invert
        return keys

    def text(self, channels: int) -> str:
        return json.dumps(self.card_keys(channels))[1:-1]


@dataclass(frozen=True)
class Calibration:
    """What the examples said: the choice, its score and the default's, and the search."""

    total: int
    channels: int
    default: Candidate
    default_right: int
    chosen: Candidate
    right: int
    fits: bool
    needed: int  # examples right for a choice to fit
    scores: tuple[tuple[Candidate, int], ...]  # every candidate tried, best first
    seconds: float

    def line(self) -> str:
        """The sentence for the log and GET /model."""
        return (f"preprocessing calibrated from {self.total} labelled examples: "
                f"{self.chosen.text(self.channels)}, {self.right}/{self.total} right "
                f"(default choice: {self.default_right}/{self.total})")

    def refusal(self) -> str:
        """Why the examples refuse the choice, with the scores and the card line to add."""
        best, right = self.scores[0]
        ranked = "; ".join(f"{c.text(self.channels)}: {n}/{self.total}"
                           for c, n in self.scores[:5])
        fix = (f'put {{{best.text(self.channels)}}} in the model card ({right}/{self.total} '
               "right)" if right >= self.needed else "no candidate fits: check the "
               "examples' labels and that they are the model's kind of image")
        return (f"the preprocessing chosen ({self.chosen.text(self.channels)}) gets only "
                f"{self.right}/{self.total} right ({self.needed} needed); scores: {ranked}; "
                f"{fix}")

    def describe(self) -> dict[str, Any]:
        return {"examples": self.total, "choice": self.chosen.card_keys(self.channels),
                "right": self.right, "default": self.default.card_keys(self.channels),
                "default_right": self.default_right, "fits": self.fits,
                "candidates": len(self.scores), "seconds": round(self.seconds, 3),
                "scores": [[c.text(self.channels), n] for c, n in self.scores],
                "summary": self.line()}


def calibrate(predict: Predict, spec: ImageSpec, labels: tuple[str, ...],
              examples: list[LabelledExample], pixels: np.ndarray, pinned: frozenset[str],
              search: bool = True) -> Calibration:
    """Score the default and, with `search`, the candidates the card leaves open.

    `pixels`: the examples decoded, not inverted; `pinned`: the card's pixel keys."""
    started = time.monotonic()
    score = _Scorer(predict, spec, labels, examples, pixels)
    total = len(examples)
    default = Candidate(spec.scale, spec.channel_order, spec.invert)
    margin = max(2, math.ceil(MARGIN_SHARE * total))
    commonest = max(Counter(e.label for e in examples).values())
    needed = min(total, max(math.ceil(FIT_SHARE * total), commonest + margin))
    chosen = default
    if search and score(default) < total:
        free = [(a, v) for a, v in _axes(spec) if _CARD_KEYS[a] not in pinned]
        chosen = _best(score, default, free, margin, needed)
    fits = score(chosen) >= needed
    if not fits:
        _best(score, chosen, _axes(spec), margin, needed)  # the best of all, to name the fix
    ranked = sorted(score.cache.items(), key=lambda item: -item[1])  # stable: ties by order
    return Calibration(total, spec.channels, default, score(default), chosen, score(chosen),
                       fits, needed, tuple(ranked), time.monotonic() - started)


def _axes(spec: ImageSpec) -> list[tuple[str, tuple[Any, ...]]]:
    """The axes in the order they are searched: how the images were read (channel order,
    inversion) before the scaling, so that a BGR model is not explained by "caffe"."""
    scales = ("unit", "raw") if spec.mean is not None or spec.std is not None \
        else tuple(candidate_scales(spec))
    image = ("channel_order", CHANNEL_ORDERS) if spec.channels == 3 \
        else ("invert", INVERSIONS)
    return [image, ("scale", scales)]


def _best(score: Callable[[Candidate], int], start: Candidate,
          axes: list[tuple[str, tuple[Any, ...]]], margin: int, needed: int) -> Candidate:
    """Axis by axis from `start`, a move only when it is `margin` better (noise moves
    nothing), until a round changes nothing. Should that fit nothing (two axes wrong at
    once), the product of the axes: a dozen candidates at most. Of candidates that score
    the same, the one that changes fewer of `start`'s axes wins, then the earlier one."""
    def rank(candidate: Candidate) -> tuple[int, int]:
        changed = sum(getattr(candidate, axis) != getattr(start, axis) for axis, _ in axes)
        return score(candidate), -changed

    best = start
    for _ in range(_ROUNDS):
        before = best
        for axis, values in axes:
            top = max((replace(best, **{axis: v}) for v in values), key=rank)
            best = top if score(top) >= score(best) + margin else best
        if best == before:
            break
    if score(best) >= needed:
        return best
    names = [axis for axis, _ in axes]
    everything = [replace(start, **dict(zip(names, values, strict=True)))
                  for values in itertools.product(*(v for _, v in axes))]
    top = max(everything, key=rank)
    return top if score(top) >= score(start) + margin else best


class _Scorer:
    """Examples right under a candidate, each candidate run once."""

    def __init__(self, predict: Predict, spec: ImageSpec, labels: tuple[str, ...],
                 examples: list[LabelledExample], pixels: np.ndarray) -> None:
        self.predict, self.spec, self.labels = predict, spec, labels
        self.expected = [e.label for e in examples]
        self.pixels = pixels
        self.cache: dict[Candidate, int] = {}

    def __call__(self, candidate: Candidate) -> int:
        if candidate not in self.cache:
            pixels = self.pixels if self.spec.channels != 1 else np.stack(
                [maybe_invert(p, candidate.invert) for p in self.pixels])
            spec = replace(self.spec, scale=candidate.scale,
                           channel_order=candidate.channel_order)
            said = answers(self.predict, spec, self.labels, pixels)
            self.cache[candidate] = sum(a == e for a, e in zip(said, self.expected,
                                                               strict=True))
        return self.cache[candidate]
