"""The parity gate: a converted model serves only if it gives the Keras model's answers.

Checked on the card's labelled examples (when there are any), the warm-up batch and a
fixed, seeded set of synthetic images in the model's own input domain (run through the
model's preprocessing): noise, and smooth blocks that look more like photos to a CNN.
64 of them, fewer for a model whose forward pass is slow (about GATE_SECONDS of Keras'
time, at least 2), so a heavy model does not take minutes to load. The result is cached
beside the converted model: another worker or a restart does not run the gate again.
In f32 every top-1 label must equal Keras' and no probability may differ by more than
F32_TOLERANCE. Rows where Keras itself hardly decides (top-2 margin at or under the
tolerance: an untrained model's near-ties) do not count as disagreements. In bf16 only
top-1 agreement is required, with a wider margin; the difference is reported.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from app.runtime.spec import ImageSpec

F32_TOLERANCE = 1e-4
BF16_MARGIN = 0.05  # bf16 keeps ~3 significant digits: closer calls may flip
SYNTHETIC_IMAGES = 64
GATE_SECONDS = 2.0


@dataclass(frozen=True)
class Parity:
    """How a candidate's probabilities compare with Keras' on the gate's inputs."""

    rows: int
    max_difference: float
    disagreements: int  # rows whose top-1 label differs where Keras' margin counts
    precision: str = "f32"
    decided: int = -1  # rows where Keras' margin counts (-1: all, the reference itself)

    @property
    def passed(self) -> bool:
        bound_ok = self.precision != "f32" or self.max_difference <= F32_TOLERANCE
        return self.disagreements == 0 and bound_ok

    def summary(self) -> str:
        """One line for the log and GET /model."""
        ties = "" if self.decided in (-1, self.rows) else \
            f" ({self.rows - self.decided} near-ties in Keras' own answers not counted)"
        parts = [f"top-1 differs on {self.disagreements} of {self.rows} inputs{ties}"
                 if self.disagreements else f"same top-1 on {self.rows} inputs{ties}",
                 f"largest probability difference {self.max_difference:.1e}"]
        if self.precision == "f32" and self.max_difference > F32_TOLERANCE:
            parts[-1] += f" > {F32_TOLERANCE:.0e}"
        return ", ".join(parts)

    def describe(self) -> dict[str, object]:
        return {"passed": self.passed, "inputs": self.rows, "precision": self.precision,
                "max_probability_difference": float(self.max_difference),
                "top1_disagreements": self.disagreements,
                "top1_decided_inputs": self.rows if self.decided == -1 else self.decided}


def synthetic_count(seconds_per_image: float) -> int:
    """How many synthetic images fit the gate's time on this model: a power of two from 2
    to 64, so that timing noise between workers rarely changes the set (and its cache)."""
    fits = np.clip(GATE_SECONDS / max(seconds_per_image, 1e-6), 2, SYNTHETIC_IMAGES)
    return int(2 ** np.floor(np.log2(fits)))


def parity_inputs(spec: ImageSpec, examples: np.ndarray | None = None,
                  count: int = SYNTHETIC_IMAGES) -> np.ndarray:
    """The gate's model-input batch: `count` seeded synthetic images, the warm-up zeros and
    the card's examples ((N, H, W, C) pixels as decoded), in that order."""
    rng = np.random.default_rng(20261207)
    height, width, channels = spec.pixel_shape
    noise = rng.integers(0, 256, (count // 2, height, width, channels), dtype=np.uint8)
    cells = rng.integers(0, 256, (count - count // 2, 8, 8, channels), dtype=np.uint8)
    blocks = cells.repeat(-(-height // 8), axis=1).repeat(-(-width // 8), axis=2)
    pixels = np.concatenate([noise, blocks[:, :height, :width]])
    if examples is not None and len(examples):
        pixels = np.concatenate([pixels, examples.astype(np.uint8, copy=False)])
    model_input = spec.to_model_input(pixels)
    zeros = np.zeros((1, *spec.model_shape), np.float32)  # the warm-up batch
    return np.concatenate([model_input[:count], zeros, model_input[count:]])


def compare(reference: np.ndarray, candidate: np.ndarray, precision: str = "f32") -> Parity:
    """Keras' probabilities against a candidate's, row by row."""
    if candidate.shape != reference.shape or not np.isfinite(candidate).all():
        return Parity(len(reference), float("inf"), len(reference), precision)
    margin = F32_TOLERANCE if precision == "f32" else BF16_MARGIN
    if reference.shape[1] > 1:
        top2 = np.sort(reference, axis=1)[:, -2:]
        decided = top2[:, 1] - top2[:, 0] > margin
        differs = reference.argmax(axis=1) != candidate.argmax(axis=1)
    else:  # one sigmoid: the label flips at 0.5
        decided = np.abs(reference[:, 0] - 0.5) * 2 > margin
        differs = (reference[:, 0] >= 0.5) != (candidate[:, 0] >= 0.5)
    return Parity(len(reference), float(np.abs(candidate - reference).max()),
                  int((differs & decided).sum()), precision, int(decided.sum()))


def inputs_digest(inputs: np.ndarray) -> str:
    """Names the gate's inputs in cache keys: other examples, another gate."""
    return hashlib.sha256(inputs.tobytes() + str(inputs.shape).encode()).hexdigest()[:16]


def cached_parity(folder: Path | None, inputs: np.ndarray, precision: str,
                  check: Callable[[], Parity]) -> Parity:
    """`check()`, or its result stored in `folder` (a converted model's cache entry) for
    these very inputs and precision."""
    if folder is None:
        return check()
    path = folder / f"parity-{precision}-{inputs_digest(inputs)}.json"
    if path.exists():
        return Parity(**json.loads(path.read_text()))
    parity = check()
    path.write_text(json.dumps(asdict(parity)))
    return parity
