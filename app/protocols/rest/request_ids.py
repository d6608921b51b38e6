"""Request IDs: one per request, from nginx to the app's logs, the response and its errors.

nginx sets `X-Request-ID` (a client's own, if well formed, else a new one); the app keeps
a well-formed one and makes one otherwise (direct calls), echoes it in the response, and
every log line written while the request runs carries it (RequestIdFilter). JSON error
bodies carry it too, so a user's bug report names the request.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, g, has_request_context, request

from app.runtime.dataplane.calls import request_id

HEADER = "X-Request-ID"


def install(app: Flask) -> None:
    """Give every request its ID before anything else runs, and echo it."""

    @app.before_request
    def _assign() -> None:
        g.request_id = request_id(request.headers.get(HEADER, ""))

    @app.after_request
    def _echo(response: Response) -> Response:
        response.headers[HEADER] = current()
        return response


def current() -> str:
    """This request's ID ("-" outside a request, or before one was assigned)."""
    return str(g.get("request_id", "-")) if has_request_context() else "-"


class RequestIdFilter(logging.Filter):
    """Adds `request_id` to every record, for the log formats."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current()
        return True
