"""The handlers that render every failure, as JSON for API clients or a page for people.

API clients always get `{"success": false, "error": {"code", "message"}}` with the
right status (app.protocols.rest.errors gives each error its status); browsers asking for
HTML get a friendly page. No traceback ever reaches a client: unexpected exceptions
are logged here and answered with a 500.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from app.config import mebibytes
from app.protocols.rest.errors import CLIENT_ERRORS, ApiError, as_api_error
from app.runtime.errors import ServingError

log = logging.getLogger(__name__)

# Machine-readable codes for werkzeug's own HTTP errors (routing, size limits, ...).
_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
    503: "unavailable",
}


def wants_html() -> bool:
    """True for browser page requests; API blueprints always answer JSON."""
    if request.blueprint == "api":
        return False
    accept = request.accept_mimetypes
    return accept["text/html"] > accept["application/json"]


def _from_http_exception(exc: HTTPException) -> ApiError:
    status = exc.code or 500
    code = _HTTP_CODES.get(status, "http_error")
    if status == 413:
        message = ("Request body is too large: the limit is "
                   f"{mebibytes(request.max_content_length or 0)}.")
    elif status == 405:
        allowed = ", ".join(sorted(getattr(exc, "valid_methods", None) or []))
        message = f"Method {request.method} is not allowed here" + (
            f"; use {allowed}." if allowed else ".")
    elif status == 404:
        message = f"No such endpoint: {request.path}. See GET /model and the README."
    else:
        message = exc.description or exc.name
    return ApiError(status, code, message)


def render_error(error: ApiError) -> Response:
    """Render an ApiError as JSON or as the friendly HTML page."""
    if wants_html():
        html = render_template("error.html", error=error)
        response = Response(html, status=error.status, mimetype="text/html")
    else:
        response = jsonify(error.to_dict())
        response.status_code = error.status
    response.headers.update(error.headers)
    return response


def register_error_handlers(app: Flask) -> None:
    """Route client errors, every HTTPException and anything unexpected to render_error."""

    def _client_error(error: ApiError | ServingError) -> Response:
        return render_error(as_api_error(error))

    for error_type in CLIENT_ERRORS:
        app.register_error_handler(error_type, _client_error)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        response = render_error(_from_http_exception(exc))
        if exc.code == 405 and getattr(exc, "valid_methods", None):
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return render_error(ApiError(500, "internal_error",
                                     "The server failed to handle this request; it was logged."))
