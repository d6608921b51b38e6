"""Why the runtime refused a request, in its own terms: no HTTP status, no Flask.

The web layers decide what a client sees (app.protocols.errors.as_api_error): bad input
is the client's to fix (400), an overloaded model asks it to come back shortly (503).
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
