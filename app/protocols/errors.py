"""One error type for clients, and how the runtime's refusals become one.

`ApiError` carries what a response needs: HTTP status, stable code, human message and
headers. The runtime raises its own Flask-free errors (app.runtime.errors);
`as_api_error` gives each its status here, so every protocol answers them alike. The
seed API renders an ApiError as `{"success": false, "error": {...}}` (app.http.errors);
TF Serving and the Open Inference Protocol as `{"error": message}` (`protocol_error`).
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from app.protocols import request_ids
from app.runtime.errors import Overloaded, ServingError, UnknownModel


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


def invalid_argument(message: str) -> ApiError:
    """The standard protocols' 400 for a request they cannot use (TF Serving, V2, gRPC)."""
    return ApiError(400, "invalid_argument", message)


# What a route may raise for a client to read: caught by the error handlers of the app
# and of each protocol blueprint (and by the upload page, which renders it in place).
CLIENT_ERRORS = (ApiError, ServingError)


def as_api_error(error: ApiError | ServingError) -> ApiError:
    """The response an error stands for: bad input is 400, an unknown model 404, an
    overloaded one 503."""
    if isinstance(error, ApiError):
        return error
    if isinstance(error, UnknownModel):
        return ApiError(404, error.code, error.message)
    if isinstance(error, Overloaded):
        return ApiError(503, error.code, error.message,
                        headers={"Retry-After": str(error.retry_after_s)})
    return ApiError(400, error.code, error.message)


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
