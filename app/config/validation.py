"""The app settings' checks, run by `Settings.load`: a bad value fails at startup, in one
line naming the variable, not later in a request. Tests match some of these messages."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.config.settings import Settings

RUNTIMES = ("tensorflow", "onnxruntime", "openvino")


def validate(settings: Settings) -> None:
    """Reject values that would make the service misbehave later."""
    for name in ("MAX_CONTENT_LENGTH", "MAX_PREDICT_ROWS", "MAX_IMAGE_PIXELS",
                 "MAX_BATCH_SIZE", "MAX_QUEUE_SIZE", "MAX_MODELS", "MAX_EXPLAIN_QUEUE",
                 "EXPLAIN_MAX_SIDE", "EXPLAIN_SMOOTHGRAD_SAMPLES", "DRIFT_WINDOW"):
        if getattr(settings, name) < 1:
            raise ValueError(f"{name} must be at least 1")
    for name in ("MAX_BATCH_DELAY_MS", "MODEL_POLL_SECONDS", "DRIFT_REFERENCE"):
        if getattr(settings, name) < 0:
            raise ValueError(f"{name} must not be negative")
    if not 0 <= settings.PREDICTION_LOG_SAMPLE <= 1:
        raise ValueError("PREDICTION_LOG_SAMPLE must be from 0.0 to 1.0")
    if not 0 <= settings.EVENTS_SAMPLE <= 1:
        raise ValueError("EVENTS_SAMPLE must be from 0.0 to 1.0")
    if settings.LOG_FORMAT not in ("text", "json"):
        raise ValueError(f"LOG_FORMAT must be text or json, got {settings.LOG_FORMAT!r}")
    if settings.AUTH not in ("off", "keys"):
        raise ValueError(f"AUTH must be off or keys, got {settings.AUTH!r}")
    if settings.AUTH == "keys" and settings.keys_file is None:
        raise ValueError("AUTH=keys needs API_KEYS_FILE, the file of keys, or "
                         "secrets/api-keys (scripts/api-keys.sh add NAME writes it)")
    if settings.AUTH == "keys" and "*" in settings.cors_origins:
        raise ValueError("with AUTH=keys, CORS_ORIGINS must list the origins allowed to "
                         "call with a key (or be empty), not '*'")
    host, colon, port = settings.GRPC_BIND.rpartition(":")
    if settings.GRPC_BIND and not (colon and host and port.isdigit()):
        raise ValueError(f"GRPC_BIND must be host:port (e.g. 0.0.0.0:8500), got "
                         f"{settings.GRPC_BIND!r}")
    if settings.RUNTIME not in ("auto", *RUNTIMES):
        raise ValueError(f"RUNTIME must be auto or one of {', '.join(RUNTIMES)}, "
                         f"got {settings.RUNTIME!r}")
    for name, allowed in (("RUNTIME_PRECISION", ("f32", "bf16")),
                          ("CALIBRATE", ("auto", "off")),
                          ("RUNTIME_PARITY", ("refuse", "warn")),
                          ("EXPLAIN", ("lazy", "eager", "off")),
                          ("EVENTS_MODE", ("binary", "structured")),
                          ("EVENTS_INCLUDE", ("request", "response", "both"))):
        if getattr(settings, name) not in allowed:
            raise ValueError(f"{name} must be {' or '.join(allowed)}, "
                             f"got {getattr(settings, name)!r}")
    if settings.RUNTIME_TIMING_SECONDS <= 0:
        raise ValueError("RUNTIME_TIMING_SECONDS must be above 0")
    if settings.SELF_CHECK not in ("refuse", "warn", "off"):
        raise ValueError(f"SELF_CHECK must be refuse, warn or off, got {settings.SELF_CHECK!r}")
