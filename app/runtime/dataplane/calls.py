"""One request's life in the data plane: its lease on a model version and its metrics.

A door opens a Call when a request arrives and ends it when the answer is sent. The
first `lease` picks the version the request asked for (one naming none goes where the
model's roll-out routes its client) and holds it until the end, so a version being
replaced is unloaded only after the requests it started are answered; `end` records the
request in the metrics, for every door alike, and lets go. With tracing on, a Call also
carries the request's trace (app.runtime.tracing): its span and its stages.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app import metrics
from app.runtime.errors import UnknownModel
from app.runtime.inference import InferenceService
from app.runtime.repository import ModelRepository, ServedModel
from app.runtime.tracing import RequestTrace, enabled

if TYPE_CHECKING:
    from app.runtime.dataplane.types import InferRequest, InferResponse

# (served model, who asks: read only for a model on a roll-out) -> version
Router = Callable[[ServedModel, Callable[[], str]], int | None]
Watcher = Callable[["Call", "InferRequest", "InferResponse"], None]
_WELL_FORMED_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def request_id(offered: str) -> str:
    """A request's ID: the one offered (by nginx, or a client) when well formed, else new."""
    return offered if _WELL_FORMED_ID.match(offered) else uuid.uuid4().hex


@dataclass(frozen=True)
class Origin:
    """What a door says of a request, each part read only when it is needed: who asks,
    the request's ID, and its name and headers (or metadata) for its trace."""

    client: Callable[[], str] = str
    request_id: Callable[[], str] = str
    name: str = ""
    headers: Callable[[], Mapping[str, Any]] | None = None


class Call:
    """A request from its first look at a model to its answer."""

    def __init__(self, models: ModelRepository, origin: Origin | None = None,
                 router: Router | None = None, watchers: Sequence[Watcher] = ()) -> None:
        self._models = models
        self._started = time.perf_counter()
        self._held = False
        self.origin = origin = origin or Origin()  # client: asked only when routing
        self._router = router
        self._watchers = watchers
        self.served: InferenceService | None = None  # names the answer's model and version
        self.routed = False  # the version was the roll-out's choice, not the request's
        self.trace = RequestTrace(origin.name, origin.headers()) \
            if origin.headers is not None and enabled() else None

    def lease(self, name: str | None = None, version: int | str | None = None,
              label: str | None = None) -> InferenceService:
        """The version this request uses (default: the default model's latest), resolved
        on the first call and held until `end`; UnknownModel (a 404) for a model, version
        or label that is not served."""
        if self.served is None:
            number = version_number(name, version or None)
            router, client = self._router, self.origin.client
            self.routed = router is not None and number is None and not label
            self.served = self._models.acquire(
                name or None, number, label or None,
                (lambda model: router(model, client)) if self.routed else None)  # type: ignore[misc]
            self._held = True
            if self.trace is not None:  # all until now read and parsed the request
                self.trace.describe(self.served.name, self.served.version,
                                    self.served.classifier.runtime.engine.name)  # type: ignore[union-attr]
                self.trace.stage("read")
        return self.served

    def answered(self, request: InferRequest, answer: InferResponse) -> InferResponse:
        """The answer, once every watcher has seen it (each only queues what it keeps)."""
        for watch in self._watchers:
            watch(self, request, answer)
        return answer

    def stage(self, name: str) -> None:
        """The request's last stage ended now (when it is traced)."""
        if self.trace is not None:
            self.trace.stage(name)

    def end(self, endpoint: str, method: str, status: int, protocol: str = "http") -> None:
        """Count the request (`status` the HTTP status its answer has, or would have over
        HTTP) and let go of its version."""
        served = self.served
        if self.trace is not None:
            self.trace.end(status)
        metrics.record_request(endpoint, method, status, time.perf_counter() - self._started,
                               protocol=protocol, model=served.name if served else "",
                               version=served.version if served else None)
        self.release()

    def release(self) -> None:
        """Let go of the version (once; a request that failed early may never `end`)."""
        if self._held and self.served is not None:
            self._held = False
            self._models.release(self.served)


def version_number(name: str | None, version: int | str | None) -> int | None:
    """A version from a URL or a message as a number (None: the latest); UnknownModel
    for one that is not a positive integer."""
    if version is None or isinstance(version, int):
        return version
    if not version.isdigit():
        raise UnknownModel(f"unknown model {name!r} version {version!r}: versions are "
                           "positive integers")
    return int(version)
