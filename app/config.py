"""Service settings, read once from environment variables with safe defaults.

Every variable here is documented in the README's configuration table; tests pass a
mapping of overrides to `create_app(config)` instead of touching the environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

VERSION = "0.1.0"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_REPOSITORY = PROJECT_ROOT / "models"
DEFAULT_MODEL_PATH = DEFAULT_REPOSITORY / "fashion_mnist.h5"  # the bundled model
DEFAULT_KEYS_FILE = PROJECT_ROOT / "secrets" / "api-keys"  # what scripts/api-keys.sh writes
# Converted models are shared by every worker and kept across restarts (app.runtime.engines).
DEFAULT_RUNTIME_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") \
    / "h5serve" / "runtimes"
RUNTIMES = ("tensorflow", "onnxruntime", "openvino")


def mebibytes(size: int) -> str:
    """A byte limit as people read it: 15728640 -> "15 MiB" (one way, on every page)."""
    value = size / (1024 * 1024)
    if value >= 1:
        return f"{value:.1f}".removesuffix(".0") + " MiB"
    return f"{size / 1024:.0f} KiB" if size >= 1024 else f"{size} bytes"


def _parse_bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected a boolean (true/false), got {value!r}")


@dataclass(frozen=True)
class Settings:
    """Typed service configuration; field names are the environment variable names."""

    MODEL_PATH: Path | None = None  # one file; when unset, MODEL_REPOSITORY is served
    MODEL_REPOSITORY: Path = DEFAULT_REPOSITORY
    DEFAULT_MODEL: str = ""  # the model the seed routes serve; "" = the only one
    MODEL_NAME: str = ""  # serve the repository's only model under this name (KServe)
    MODEL_POLL_SECONDS: float = 10.0  # how often workers look for new versions; 0 = never
    MAX_MODELS: int = 8  # model versions one worker may hold in memory
    MAX_CONTENT_LENGTH: int = 15 * 1024 * 1024
    MAX_PREDICT_ROWS: int = 1024
    MAX_IMAGE_PIXELS: int = 50_000_000
    MAX_BATCH_SIZE: int = 32
    MAX_BATCH_DELAY_MS: float = 0.0
    MAX_QUEUE_SIZE: int = 64
    MAX_EXPLAIN_QUEUE: int = 16  # explanations waiting per model version (then 503)
    EXPLAIN_MAX_SIDE: int = 1024  # the explanation overlay's longest side, in pixels
    EXPLAIN_SMOOTHGRAD_SAMPLES: int = 8  # noisy copies per image for saliency (non-CNNs)
    CORS_ORIGINS: str | None = None  # unset: "*" with AUTH=off, no other origin with keys
    TRUST_PROXY: bool = False
    LOG_LEVEL: str = "INFO"
    LOG_FORMAT: str = "text"  # text (stderr, for people) | json (stdout, one object a line)
    PREDICTION_LOG: str = "off"  # off | stdout | a file path: sampled predictions, JSON lines
    PREDICTION_LOG_SAMPLE: float = 1.0  # the share of predictions logged, 0.0-1.0
    SELF_CHECK: str = "refuse"
    RUNTIME: str = "auto"  # auto | tensorflow | onnxruntime | openvino (app.runtime.engines)
    RUNTIME_PRECISION: str = "f32"  # f32 | bf16 (OpenVINO, where the CPU has it; top-1 gate)
    RUNTIME_PARITY: str = "refuse"  # refuse | warn: a forced RUNTIME that misses parity
    RUNTIME_CACHE_DIR: Path | None = DEFAULT_RUNTIME_CACHE  # converted models; "" = none
    RUNTIME_TIMING_SECONDS: float = 1.0  # RUNTIME=auto times each runtime per batch size
    GRPC_BIND: str = ""  # host:port for gRPC (KServe V2, TF Serving) in every worker; "" = off
    AUTH: str = "off"  # off | keys: API keys from API_KEYS_FILE on every model endpoint
    API_KEYS_FILE: Path | None = None  # unset with AUTH=keys: secrets/api-keys, if there

    @classmethod
    def load(cls, overrides: Mapping[str, Any] | None = None,
             environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from `environ` (default: os.environ), then `overrides`.

        A malformed value fails here, at startup, naming the variable.
        """
        environ = os.environ if environ is None else environ
        overrides = dict(overrides or {})
        values: dict[str, Any] = {}
        for field in fields(cls):
            if field.name in overrides:
                raw: Any = overrides.pop(field.name)
            elif field.name in environ:
                raw = environ[field.name]
            else:
                continue
            values[field.name] = _convert(field.name, field.default, raw,
                                          path="Path" in str(field.type))
        if overrides:
            raise ValueError(f"unknown settings: {', '.join(sorted(overrides))}")
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        """Reject values that would make the service misbehave later."""
        for name in ("MAX_CONTENT_LENGTH", "MAX_PREDICT_ROWS", "MAX_IMAGE_PIXELS",
                     "MAX_BATCH_SIZE", "MAX_QUEUE_SIZE", "MAX_MODELS", "MAX_EXPLAIN_QUEUE",
                     "EXPLAIN_MAX_SIDE", "EXPLAIN_SMOOTHGRAD_SAMPLES"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        for name in ("MAX_BATCH_DELAY_MS", "MODEL_POLL_SECONDS"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if not 0 <= self.PREDICTION_LOG_SAMPLE <= 1:
            raise ValueError("PREDICTION_LOG_SAMPLE must be from 0.0 to 1.0")
        if self.LOG_FORMAT not in ("text", "json"):
            raise ValueError(f"LOG_FORMAT must be text or json, got {self.LOG_FORMAT!r}")
        if self.AUTH not in ("off", "keys"):
            raise ValueError(f"AUTH must be off or keys, got {self.AUTH!r}")
        if self.AUTH == "keys" and self.keys_file is None:
            raise ValueError("AUTH=keys needs API_KEYS_FILE, the file of keys, or "
                             "secrets/api-keys (scripts/api-keys.sh add NAME writes it)")
        if self.AUTH == "keys" and "*" in self.cors_origins:
            raise ValueError("with AUTH=keys, CORS_ORIGINS must list the origins allowed to "
                             "call with a key (or be empty), not '*'")
        host, colon, port = self.GRPC_BIND.rpartition(":")
        if self.GRPC_BIND and not (colon and host and port.isdigit()):
            raise ValueError(f"GRPC_BIND must be host:port (e.g. 0.0.0.0:8500), got "
                             f"{self.GRPC_BIND!r}")
        if self.RUNTIME not in ("auto", *RUNTIMES):
            raise ValueError(f"RUNTIME must be auto or one of {', '.join(RUNTIMES)}, "
                             f"got {self.RUNTIME!r}")
        for name, allowed in (("RUNTIME_PRECISION", ("f32", "bf16")),
                              ("RUNTIME_PARITY", ("refuse", "warn"))):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be {' or '.join(allowed)}, "
                                 f"got {getattr(self, name)!r}")
        if self.RUNTIME_TIMING_SECONDS <= 0:
            raise ValueError("RUNTIME_TIMING_SECONDS must be above 0")
        if self.SELF_CHECK not in ("refuse", "warn", "off"):
            raise ValueError(f"SELF_CHECK must be refuse, warn or off, got {self.SELF_CHECK!r}")

    @property
    def cors_origins(self) -> list[str]:
        """CORS_ORIGINS as a list; empty means cross-origin requests are not allowed. Left
        unset, any origin may call an open service, and none a service with keys."""
        if self.CORS_ORIGINS is None:
            return ["*"] if self.AUTH == "off" else []
        return [o.strip() for o in self.CORS_ORIGINS.split(",") if o.strip()]

    @property
    def keys_file(self) -> Path | None:
        """API_KEYS_FILE, else secrets/api-keys when it exists (AUTH=keys alone, locally)."""
        if self.API_KEYS_FILE is not None:
            return self.API_KEYS_FILE
        return DEFAULT_KEYS_FILE if DEFAULT_KEYS_FILE.exists() else None


def _convert(name: str, default: Any, raw: Any, path: bool) -> Any:
    if path:
        return None if raw is None or raw == "" else Path(raw)
    if not isinstance(raw, str) or default is None:
        return raw
    try:
        if isinstance(default, bool):
            return _parse_bool(raw)
        return type(default)(raw)
    except ValueError as exc:
        raise ValueError(f"invalid value for {name}: {exc}") from None
