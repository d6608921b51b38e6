"""Configuration: every environment variable h5serve reads, declared once, typed, with its
default and a one-line doc, and the defaults the unset ones fall back to.

- `Settings` (app.config.settings): the app's, read in each worker and by the master's checks;
- `ServerSettings` (app.config.server): gunicorn.conf.py's, read in the master;
- app.config.deployment: the deployment files' and other libraries' variables, documented only.

docs/settings.md is generated from these declarations (`python -m scripts.settings_doc`).
Standard library only, like every module here: gunicorn's master imports this package.
"""

from __future__ import annotations

from app.config.paths import (
    DEFAULT_KEYS_FILE,
    DEFAULT_MODEL_PATH,
    DEFAULT_REPOSITORY,
    DEFAULT_RUNTIME_CACHE,
    PROJECT_ROOT,
)
from app.config.server import ServerSettings
from app.config.settings import Settings
from app.config.validation import RUNTIMES

__all__ = ["DEFAULT_KEYS_FILE", "DEFAULT_MODEL_PATH", "DEFAULT_REPOSITORY",
           "DEFAULT_RUNTIME_CACHE", "PROJECT_ROOT", "RUNTIMES", "VERSION", "ServerSettings",
           "Settings", "mebibytes"]

VERSION = "0.1.0"


def mebibytes(size: int) -> str:
    """A byte limit as people read it: 15728640 -> "15 MiB" (one way, on every page)."""
    value = size / (1024 * 1024)
    if value >= 1:
        return f"{value:.1f}".removesuffix(".0") + " MiB"
    return f"{size / 1024:.0f} KiB" if size >= 1024 else f"{size} bytes"
