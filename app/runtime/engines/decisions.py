"""RUNTIME=auto's decision, remembered per model file, setup and gate inputs.

A worker that finds the decision loads only the runtime it names: not every candidate
(each an inference session or a compiled model, seconds for a big one) to be told what
the first worker already measured. The candidates' figures come back with it, so GET
/model says the same in every worker.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from app.runtime.engines.cache import cache_entry
from app.runtime.engines.choice import Candidate
from app.runtime.engines.parity import Parity

Decision = tuple[str, str, list[Candidate]]  # the runtime that serves, why, the candidates


def recall(root: Path | None, key: str, setup: str) -> Decision | None:
    """The decision stored for this setup, if any."""
    with cache_entry(root, key, "decisions") as entry:
        path = entry.folder / "decisions.json"
        stored = json.loads(path.read_text()).get(setup) if path.exists() else None
    if stored is None:
        return None
    return stored["serves"], stored["why"], [candidate(c) for c in stored["candidates"]]


def remember(root: Path | None, key: str, setup: str, serves: str, why: str,
             candidates: list[Candidate]) -> None:
    """Store the decision for the next worker and the next start."""
    with cache_entry(root, key, "decisions") as entry:
        path = entry.folder / "decisions.json"
        stored: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
        stored[setup] = {"serves": serves, "why": why,
                         "candidates": [record(c) for c in candidates]}
        path.write_text(json.dumps(stored, indent=1))
        entry.mark_done()


def record(candidate: Candidate) -> dict[str, Any]:
    """A candidate's figures as JSON (its engine, a live object, as its description)."""
    c = candidate
    return {"name": c.name, "failure": c.failure, "note": c.note,
            "parity": asdict(c.parity) if c.parity else None, "images_per_s": c.images_per_s,
            "description": c.engine.description if c.engine else c.description}


def candidate(stored: dict[str, Any]) -> Candidate:
    """A candidate's figures back from `record` (without an engine)."""
    return Candidate(**{**stored, "parity": Parity(**stored["parity"]) if stored["parity"]
                        else None,
                        "images_per_s": {int(b): v for b, v in stored["images_per_s"].items()}})
