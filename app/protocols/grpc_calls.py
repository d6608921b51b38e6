"""What every gRPC method shares: the model lease, errors as gRPC status codes, metrics.

A gRPC request takes the same path as an HTTP one from the model on: the repository's
lease (a version being replaced is unloaded only after its requests are answered), the
InferenceService and its micro-batcher. The protocols' errors become status codes with
their messages: 400 -> INVALID_ARGUMENT, 404 -> NOT_FOUND, 413 -> RESOURCE_EXHAUSTED (as
gRPC's own message-size refusal), 503 overloaded -> RESOURCE_EXHAUSTED (load shedding),
not ready -> UNAVAILABLE.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar

import grpc

from app import metrics
from app.protocols.context import version_number
from app.protocols.errors import ApiError
from app.runtime.errors import Overloaded, ServingError, UnknownModel
from app.runtime.inference import InferenceService
from app.runtime.repository import ModelRepository

log = logging.getLogger(__name__)
T = TypeVar("T")
_HELD: ContextVar[list[InferenceService]] = ContextVar("grpc_leased_version")
_CODES = {400: grpc.StatusCode.INVALID_ARGUMENT, 401: grpc.StatusCode.UNAUTHENTICATED,
          403: grpc.StatusCode.PERMISSION_DENIED, 404: grpc.StatusCode.NOT_FOUND,
          413: grpc.StatusCode.RESOURCE_EXHAUSTED, 415: grpc.StatusCode.INVALID_ARGUMENT,
          422: grpc.StatusCode.INVALID_ARGUMENT, 503: grpc.StatusCode.UNAVAILABLE}


def status_of(error: Exception) -> tuple[grpc.StatusCode, str, int]:
    """The gRPC status, its message, and the HTTP status the same error gets on HTTP (the
    metrics count that one, so the alert rules hold for every door)."""
    if isinstance(error, Overloaded):
        return grpc.StatusCode.RESOURCE_EXHAUSTED, error.message, 503
    if isinstance(error, UnknownModel):
        return grpc.StatusCode.NOT_FOUND, error.message, 404
    if isinstance(error, ApiError):
        code = _CODES.get(error.status, grpc.StatusCode.INVALID_ARGUMENT)
        return code, error.message, error.status
    if isinstance(error, ServingError):
        return grpc.StatusCode.INVALID_ARGUMENT, error.message, 400
    return grpc.StatusCode.INTERNAL, "internal error: the details are in the server log", 500


def answer(method: str, context: grpc.ServicerContext, call: Callable[[], T]) -> T:
    """Run one call: errors become its status, and it is counted like an HTTP request
    (`endpoint` the method's full name, `method` "grpc", `protocol` "grpc", and the model
    version it leased)."""
    started = time.perf_counter()
    status = 200
    held: list[InferenceService] = []
    # Each handler runs in its own greenlet or pooled thread, with its own context; the
    # reset lets go of the version with the call (a pooled thread outlives it).
    token = _HELD.set(held)
    try:
        return call()
    except Exception as error:  # every failure becomes a status, none a crash
        code, message, status = status_of(error)
        if code is grpc.StatusCode.INTERNAL:
            log.exception("gRPC %s failed", method)
        context.abort(code, message)
        raise  # abort() raises; for type checkers
    finally:
        _HELD.reset(token)
        served = held[0] if held else None
        metrics.record_request(method, "grpc", status, time.perf_counter() - started,
                               protocol="grpc", model=served.name if served else "",
                               version=served.version if served else None)


@contextmanager
def leased(models: ModelRepository, name: str, version: str | int | None = None,
           label: str | None = None) -> Iterator[InferenceService]:
    """The version a request asked for ("" and 0, protobuf's unset, mean the latest),
    held until its answer is built."""
    service = models.acquire(name or None, version_number(name, version or None),
                             label or None)
    _HELD.get([]).append(service)
    try:
        yield service
    finally:
        models.release(service)


def ready(models: ModelRepository) -> bool:
    """What /readyz answers: every served version loaded and its batcher running."""
    table = models.table
    return bool(table) and all(s.ready for m in table.values() for s in m.versions.values())


