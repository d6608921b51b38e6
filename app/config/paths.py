"""Where the service looks when a setting is left unset: all under the checkout (or /app)."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_REPOSITORY = PROJECT_ROOT / "models"
DEFAULT_MODEL_PATH = DEFAULT_REPOSITORY / "fashion_mnist.h5"  # the bundled model
DEFAULT_KEYS_FILE = PROJECT_ROOT / "secrets" / "api-keys"  # what scripts/api-keys.sh writes
# Converted models are shared by every worker and kept across restarts (app.runtime.engines).
DEFAULT_RUNTIME_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") \
    / "h5serve" / "runtimes"
