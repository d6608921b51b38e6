"""Why the runtime refused a request, in its own terms: no HTTP status, no Flask.

Each door maps these kinds to its own codes from one table (app.protocols.status for
HTTP, app.protocols.grpc.calls for gRPC): bad input is the client's to fix (400), an
overloaded model asks it to come back shortly (503).
"""

from __future__ import annotations


class ServingError(Exception):
    """A request the runtime will not serve: a stable machine code and a human message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class InvalidInput(ServingError):
    """The input cannot be used as sent: empty, not a readable image, too many pixels."""


class Overloaded(ServingError):
    """Too many requests already wait for the model; the client should retry shortly."""

    def __init__(self, message: str, retry_after_s: int = 1) -> None:
        super().__init__("overloaded", message)
        self.retry_after_s = retry_after_s


class UnknownModel(ServingError):
    """No served model (or version, or version label) by that name."""

    def __init__(self, message: str) -> None:
        super().__init__("model_not_found", message)


class TooLarge(ServingError):
    """The request carries more rows than one request may (MAX_PREDICT_ROWS)."""


class NotReady(ServingError):
    """Nothing is ready to serve yet (loading); the client should come back shortly."""

    def __init__(self, message: str, retry_after_s: int = 5) -> None:
        super().__init__("not_ready", message)
        self.retry_after_s = retry_after_s


class ExplanationsOff(ServingError):
    """EXPLAIN=off: this server does not explain (its workers hold no Keras model)."""

    def __init__(self) -> None:
        super().__init__("explanations_off", "Explanations are off on this server (EXPLAIN="
                         "off); /predictlabel and the other prediction endpoints answer.")


class Forbidden(ServingError):
    """The caller may not do this (repository load/unload without an admin key)."""

    def __init__(self, message: str) -> None:
        super().__init__("forbidden", message)


def invalid_argument(message: str) -> InvalidInput:
    """The standard protocols' bad request (TF Serving, Open Inference Protocol, gRPC)."""
    return InvalidInput("invalid_argument", message)
