"""API keys in front of every model endpoint (AUTH=keys), in each protocol's own shape.

Open without a key: liveness and readiness (ours and V2's), the OpenAPI document and
its page, static files, the upload page itself, and /metrics (nginx keeps it to the
host). Everything else needs `Authorization: Bearer <key>` or `X-API-Key: <key>` (the
upload form may send its `api_key` field instead), so a route added later is closed
until it is listed here. A missing or wrong key is a 401 with `WWW-Authenticate:
Bearer`; the caller's name, never the key, goes to the access log (`key=`).

A browser's CORS preflight (OPTIONS) never carries the key: Flask's automatic OPTIONS
answer passes without one (flask-cors adds its headers for the allowed origins only;
it runs no view), and the real request after it still needs the key.
"""

from __future__ import annotations

from flask import Flask, g, request

from app.config import Settings
from app.http.keys import KeyFile, presented
from app.protocols.rest.bodies import form_field
from app.protocols.rest.errors import ApiError

OPEN_ENDPOINTS = frozenset({"api.healthz", "api.readyz", "api.metrics", "api.openapi",
                            "v2.live", "v2.ready", "pages.index", "pages.docs", "static"})
CALLER_ENVIRON = "h5serve.caller"  # gunicorn's access log prints it: %({h5serve.caller}e)s


def install_auth(app: Flask, settings: Settings) -> None:
    """With AUTH=keys, check every request to a closed endpoint before it runs."""
    if settings.AUTH != "keys":
        return
    assert settings.keys_file is not None  # Settings.validate
    keys = KeyFile(settings.keys_file)

    @app.before_request
    def _require_key() -> None:
        if request.endpoint is None or request.endpoint in OPEN_ENDPOINTS:
            return  # unknown paths answer 404 as before; open ones need no key
        if is_automatic_options():
            return  # a preflight: answered by Flask and flask-cors, no view runs
        keys.refresh()
        key = presented_key()
        caller = keys.caller(key) if key else None
        if caller is None:
            raise ApiError(401, "unauthorized", (
                "An API key is required: send it as 'Authorization: Bearer <key>' or "
                "'X-API-Key: <key>'." if not key else "The API key is not valid."),
                headers={"WWW-Authenticate": 'Bearer realm="h5serve"'})
        request.environ[CALLER_ENVIRON] = caller.name
        g.caller = caller


def is_automatic_options() -> bool:
    """An OPTIONS request Flask answers by itself (the Allow header): never a view's."""
    return request.method == "OPTIONS" and bool(
        getattr(request.url_rule, "provide_automatic_options", False))


def presented_key() -> str:
    """The key the request carries, or "" (only the upload form may use a form field)."""
    key = presented(request.headers.get("Authorization", ""),
                    request.headers.get("X-API-Key", ""))
    if not key and request.endpoint == "pages.upload":
        key = form_field("api_key").strip()
    return key
