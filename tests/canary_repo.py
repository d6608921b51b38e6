"""A model repository for roll-out tests: the bundled Fashion-MNIST model as version 1,
a good candidate (the same file) and a bad one (the same weights with the wrong pixel
scale in its own card, so it disagrees on real photos)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from app.config import DEFAULT_MODEL_PATH

CARD = json.loads(DEFAULT_MODEL_PATH.with_suffix(".json").read_text())
EXAMPLES = sorted((DEFAULT_MODEL_PATH.parent.parent / "static" / "examples").glob("*.png"))


def add_version(folder: Path, version: int, bad: bool = False) -> None:
    """Copy-then-rename, so a watching server never sees half a version."""
    staging = folder.parent / f".staging-{folder.name}-{version}"
    staging.mkdir(parents=True)
    shutil.copy(DEFAULT_MODEL_PATH, staging / "model.h5")
    if bad:
        card = {k: v for k, v in CARD.items() if k != "examples"}  # no self-check to fail
        (staging / "model.json").write_text(json.dumps({**card, "scale": "raw"}))
    folder.mkdir(parents=True, exist_ok=True)
    staging.rename(folder / str(version))


def set_rollout(folder: Path, **rollout: Any) -> None:
    """The model folder's card, with this roll-out block (none when empty)."""
    card = {**CARD, "rollout": rollout} if rollout else CARD
    staging = folder / ".card.json"
    staging.write_text(json.dumps(card))
    staging.rename(folder / f"{folder.name}.json")
