"""Roll-out evidence and decisions shared by every worker of one gunicorn master.

Each worker writes its own evidence to a file of its own in H5SERVE_STATE_DIR (as the
hidden-models set lives there, app.runtime.hidden_models) and reads everyone's to pool
them; a worker that dies leaves its file, so its evidence still counts after a restart.
Decisions go to one file under an exclusive lock, and only the first decision for a
roll-out is kept: two workers judging the same pool at once cannot promote twice.
Without a state folder (tests, `flask run`) the process's own evidence is the pool.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import tempfile
from pathlib import Path
from typing import Any

from app.runtime.canary.evidence import Evidence

DECISIONS = "rollout-decisions.json"


class SharedStore:
    """Per-worker evidence files and the one decisions file."""

    def __init__(self, state_dir: str | Path | None) -> None:
        self._dir = Path(state_dir) if state_dir else None
        self._me = f"{os.getpid()}-{secrets.token_hex(3)}"  # a reused PID is someone else
        self._own: dict[str, Evidence] = {}
        self._decisions: dict[str, dict[str, Any]] = {}

    def publish(self, key: str, evidence: Evidence) -> None:
        """This worker's evidence about roll-out `key`, as it stands now."""
        self._own[key] = evidence
        if self._dir is not None:
            self._write(self._dir / f"rollout~{key}~{self._me}.json", evidence.to_json())

    def pooled(self, key: str) -> Evidence:
        """Every worker's evidence about `key`, the dead ones' included, summed."""
        if self._dir is None:
            return _copy(self._own.get(key, Evidence()))
        pool = Evidence()
        for path in self._dir.glob(f"rollout~{key}~*.json"):
            try:
                pool.add(Evidence.from_json(json.loads(path.read_text())))
            except (OSError, ValueError, TypeError):
                continue  # vanished or replaced meanwhile: counted at the next look
        return pool

    def decisions(self) -> dict[str, dict[str, Any]]:
        """Every decision taken, by roll-out key."""
        if self._dir is not None:
            try:
                self._decisions = json.loads((self._dir / DECISIONS).read_text())
            except FileNotFoundError:
                self._decisions = {}
            except (OSError, ValueError):
                pass  # being replaced: the last read stands
        return dict(self._decisions)

    def decide(self, key: str, record: dict[str, Any]) -> bool:
        """Record the decision for `key` unless one was taken already; True if this one
        is the decision."""
        if self._dir is None:
            return self._decisions.setdefault(key, record) is record
        with open(self._dir / "rollout-decisions.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            decided = self.decisions()
            if key in decided:
                return False
            decided[key] = record
            self._write(self._dir / DECISIONS, decided)
            self._decisions = decided
            return True

    @staticmethod
    def _write(path: Path, data: Any) -> None:
        """Write-then-rename: no worker ever reads half a file."""
        fd, staging = tempfile.mkstemp(dir=path.parent, prefix=".rollout.")
        with os.fdopen(fd, "w") as file:
            json.dump(data, file)
        os.replace(staging, path)


def _copy(evidence: Evidence) -> Evidence:
    pool = Evidence()
    pool.add(evidence)
    return pool
