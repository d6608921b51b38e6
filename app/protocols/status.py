"""The runtime's error kinds as HTTP statuses: the one table every REST route answers
with, and the status the request metrics count for every door (for gRPC, the status the
same answer gets over HTTP, so the alert rules hold for both)."""

from __future__ import annotations

from app.runtime.errors import (
    ExplanationsOff,
    Forbidden,
    InvalidInput,
    NotReady,
    Overloaded,
    ServingError,
    TooLarge,
    UnknownModel,
)

HTTP_STATUS: dict[type[ServingError], int] = {
    InvalidInput: 400, Forbidden: 403, UnknownModel: 404, ExplanationsOff: 404, TooLarge: 413,
    Overloaded: 503, NotReady: 503,
}


def http_status(error: ServingError) -> int:
    """The status of an error kind (400 for a kind the table does not name)."""
    return next((HTTP_STATUS[kind] for kind in type(error).__mro__ if kind in HTTP_STATUS),
                400)


def retry_after(error: ServingError) -> dict[str, str]:
    """Retry-After for the kinds that ask the client to come back (overloaded, loading)."""
    seconds = getattr(error, "retry_after_s", None)
    return {} if seconds is None else {"Retry-After": str(seconds)}
