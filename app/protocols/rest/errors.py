"""One error type for clients, and how the runtime's refusals become one.

`ApiError` carries what a response needs: HTTP status, stable code, human message and
headers. The runtime and the data plane raise their own Flask-free error kinds
(app.runtime.errors); `as_api_error` gives each its status from the one table
(app.protocols.status), so every REST route answers them alike. The
seed API renders an ApiError as `{"success": false, "error": {...}}` (app.http.errors);
TF Serving and the Open Inference Protocol as `{"error": message}` (`protocol_error`).
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from app.protocols.rest import request_ids
from app.protocols.status import http_status, retry_after
from app.runtime.errors import ServingError


class ApiError(Exception):
    """A failure the client can act on: HTTP status, stable code, human message."""

    def __init__(self, status: int, code: str, message: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def to_dict(self) -> dict[str, object]:
        return {"success": False, "error": {"code": self.code, "message": self.message,
                                            "request_id": request_ids.current()}}


# What a route may raise for a client to read: caught by the error handlers of the app
# and of each protocol blueprint (and by the upload page, which renders it in place).
CLIENT_ERRORS = (ApiError, ServingError)


def as_api_error(error: ApiError | ServingError) -> ApiError:
    """The response an error stands for: its kind's status, and Retry-After where the
    client should come back."""
    if isinstance(error, ApiError):
        return error
    return ApiError(http_status(error), error.code, error.message, headers=retry_after(error))


def protocol_error(error: ApiError | ServingError) -> tuple[Response, int, dict[str, str]]:
    """The error shape of TF Serving and the Open Inference Protocol: {"error": message},
    with the error's headers (Retry-After, WWW-Authenticate)."""
    api_error = as_api_error(error)
    return (jsonify({"error": api_error.message, "request_id": request_ids.current()}),
            api_error.status, api_error.headers)


def answer_errors_as_protocol(bp: Blueprint) -> None:
    """Make `bp` (a TF Serving or V2 blueprint) answer client errors in its own shape."""
    for error_type in CLIENT_ERRORS:
        bp.register_error_handler(error_type, protocol_error)
