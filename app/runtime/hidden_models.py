"""Models unloaded by a repository request (Open Inference Protocol `unload`), shared by
every worker of one gunicorn master.

A worker answering `unload` hides the model at once; the others read the shared file at
their next look at the repository (MODEL_POLL_SECONDS). The file lives in the setting
H5SERVE_STATE_DIR, a fresh folder gunicorn.conf.py makes for each master (like the metrics
folder), so a restart serves every model on disk again. Without it (tests, `flask run`)
the set is the process's own.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


class HiddenModels:
    """The names not to serve although they are on disk."""

    def __init__(self, state_dir: str | Path | None) -> None:
        self._path = Path(state_dir) / "unloaded-models.json" if state_dir else None
        self._names: set[str] = set()

    def names(self) -> set[str]:
        """The current set, re-read from the shared file when there is one."""
        if self._path is not None:
            try:
                self._names = set(json.loads(self._path.read_text()))
            except FileNotFoundError:
                self._names = set()
            except (OSError, ValueError):
                pass  # a file being replaced: the last set read stands
        return set(self._names)

    def set(self, name: str, hidden: bool) -> None:
        names = self.names()
        names = names | {name} if hidden else names - {name}
        self._names = names
        if self._path is not None:  # write-then-rename: no worker reads half a file
            fd, staging = tempfile.mkstemp(dir=self._path.parent, prefix=".unloaded.")
            with os.fdopen(fd, "w") as file:
                json.dump(sorted(names), file)
            os.replace(staging, self._path)
