"""What every gRPC method shares: its Call on the data plane, and errors as status codes.

A gRPC request takes the same path as an HTTP one: a Call holds the model version it
leased until the answer is built and records it in the request metrics (`endpoint` the
method's full name, `method` and `protocol` "grpc", `status` the one the same answer gets
over HTTP, so the alert rules hold for every door); a canary routes it by its API key
(as a digest), else its `x-client-id` metadata, else its peer's address. The runtime's
error kinds become status codes from one table, with their messages; anything else is
INTERNAL, logged.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from typing import TypeVar

import grpc

from app.protocols.status import http_status
from app.runtime.dataplane import Call, DataPlane
from app.runtime.dataplane.calls import Origin
from app.runtime.dataplane.calls import request_id as new_or_offered
from app.runtime.errors import (
    Forbidden,
    InvalidInput,
    NotReady,
    Overloaded,
    ServingError,
    TooLarge,
    UnknownModel,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
CODES: dict[type[ServingError], grpc.StatusCode] = {
    InvalidInput: grpc.StatusCode.INVALID_ARGUMENT,
    Forbidden: grpc.StatusCode.PERMISSION_DENIED,
    UnknownModel: grpc.StatusCode.NOT_FOUND,
    TooLarge: grpc.StatusCode.RESOURCE_EXHAUSTED,  # as gRPC's own message-size refusal
    Overloaded: grpc.StatusCode.RESOURCE_EXHAUSTED,  # load shedding
    NotReady: grpc.StatusCode.UNAVAILABLE,
}


def status_of(error: Exception) -> tuple[grpc.StatusCode, str, int]:
    """The gRPC status, its message, and the HTTP status the same error gets over HTTP."""
    if isinstance(error, ServingError):
        code = next((CODES[kind] for kind in type(error).__mro__ if kind in CODES),
                    grpc.StatusCode.INVALID_ARGUMENT)
        return code, error.message, http_status(error)
    return grpc.StatusCode.INTERNAL, "internal error: the details are in the server log", 500


def client(context: grpc.ServicerContext) -> str:
    """Who asks: the key's digest (never the key), else x-client-id, else the address."""
    metadata = {k.lower(): v for k, v in context.invocation_metadata() or ()}
    key = metadata.get("authorization") or metadata.get("x-api-key")
    if key:
        return "key:" + hashlib.sha256(str(key).encode()).hexdigest()[:16]
    given = metadata.get("x-client-id", "")
    return f"id:{given}" if given else f"addr:{context.peer().rsplit(':', 1)[0]}"


def request_id(context: grpc.ServicerContext) -> str:
    """nginx's X-Request-ID (a client's own if well formed), else a new one."""
    return new_or_offered(str(dict(context.invocation_metadata() or ()).get("x-request-id",
                                                                          "")))


def answer(plane: DataPlane, method: str, context: grpc.ServicerContext,
           handler: Callable[[Call], T]) -> T:
    """Run one call in its own Call: errors become its status; it is counted once."""
    call = plane.call(Origin(lambda: client(context), lambda: request_id(context), method,
                             lambda: dict(context.invocation_metadata() or ())))
    status = 200
    try:
        return handler(call)
    except Exception as error:  # every failure becomes a status, none a crash
        code, message, status = status_of(error)
        if code is grpc.StatusCode.INTERNAL:
            log.exception("gRPC %s failed", method)
        context.abort(code, message)
        raise  # abort() raises; for type checkers
    finally:
        call.end(method, "grpc", status, protocol="grpc")
