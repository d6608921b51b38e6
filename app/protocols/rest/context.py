"""Each HTTP request's Call on the data plane, as every route reaches it.

The app factory installs the worker's DataPlane in `app.extensions` (Flask's place for
such state). Every request gets a Call (app.runtime.dataplane.calls) before anything else
may refuse it: a route's first `inference(...)` leases the version its URL asks for and
holds it until the request ends, and the Call records the request in the metrics once.
Every response that used a model names it in `X-Model-Name` and `X-Model-Version` (the
seed routes' JSON stays as is). A model's canary routes each client the same way: by its
API key's caller, else its `X-Client-Id` header, else its address. A traced request's
span is named after its route and its trace ID is echoed in `X-Trace-ID`.
"""

from __future__ import annotations

from flask import Flask, Response, current_app, g, request

from app.protocols.rest import request_ids
from app.runtime.dataplane import Call, DataPlane
from app.runtime.dataplane.calls import Origin
from app.runtime.drift import DriftMonitor
from app.runtime.inference import InferenceService

_EXTENSION = "h5serve"
_DRIFT = "h5serve.drift"


def install(app: Flask) -> None:
    """Give every request a Call; name the model in the response, end the Call with it."""

    @app.before_request
    def _open() -> None:
        rule = request.url_rule.rule if request.url_rule else "unmatched"
        g.h5serve_call = dataplane().call(Origin(client, request_ids.current,
                                                 f"{request.method} {rule}",
                                                 lambda: request.headers))

    @app.after_request
    def _answered(response: Response) -> Response:
        held: Call = g.h5serve_call
        if held.served is not None:
            response.headers["X-Model-Name"] = held.served.name
            response.headers["X-Model-Version"] = str(held.served.version)
        if held.trace is not None:
            response.headers["X-Trace-ID"] = held.trace.trace_id
        held.end(request.url_rule.rule if request.url_rule else "unmatched", request.method,
                 response.status_code)
        return response

    @app.teardown_request
    def _release(_: BaseException | None) -> None:
        held = g.pop("h5serve_call", None)
        if held is not None:
            held.release()


def client() -> str:
    """Who asks, for a canary's sticky routing (read when a request is routed: after
    the API key is checked)."""
    caller = g.get("caller")
    if caller is not None:
        return f"key:{caller.name}"
    given = request.headers.get("X-Client-Id", "")
    return f"id:{given}" if given else f"addr:{request.remote_addr or ''}"


def serve(app: Flask, plane: DataPlane) -> None:
    """Make `plane` the data plane the app's routes use."""
    app.extensions[_EXTENSION] = plane


def watch_drift(app: Flask, monitor: DriftMonitor) -> None:
    """Show `monitor`'s figures in GET /models/<name> (DRIFT_REFERENCE)."""
    app.extensions[_DRIFT] = monitor


def drift() -> DriftMonitor | None:
    """The worker's drift monitor, None when drift is off."""
    return current_app.extensions.get(_DRIFT)


def dataplane() -> DataPlane:
    """The worker's data plane, set up by the app factory."""
    return current_app.extensions[_EXTENSION]


def call() -> Call:
    """This request's Call."""
    return g.h5serve_call


def inference(name: str | None = None, version: int | str | None = None,
              label: str | None = None) -> InferenceService:
    """The version this request uses (default: the default model's latest), leased on the
    first call and held for the rest of the request; UnknownModel (404) for a model,
    version or label that is not served."""
    return call().lease(name, version, label)
