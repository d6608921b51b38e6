"""The model version serving the current request, as every route reaches it.

The app factory installs the worker's ModelRepository in `app.extensions` (Flask's
place for such state). A route's first `inference(...)` call picks the version its URL
asks for and holds it until the request ends, so a version being replaced is unloaded
only after the requests it started are answered; every response that used a model
names it in `X-Model-Name` and `X-Model-Version` (the seed routes' JSON stays as is).
"""

from __future__ import annotations

from flask import Flask, Response, current_app, g

from app.runtime.errors import UnknownModel
from app.runtime.inference import InferenceService
from app.runtime.repository import ModelRepository
from app.runtime.rollout import Rollout

_EXTENSION = "h5serve"


def install(app: Flask, models: ModelRepository, rollout: Rollout) -> None:
    """Make `models` the repository the app's routes use; leases end with the request."""
    app.extensions[_EXTENSION] = models
    app.extensions[_EXTENSION + ".rollout"] = rollout

    @app.after_request
    def _name_the_model(response: Response) -> Response:
        service = g.get("h5serve_service")
        if service is not None:
            response.headers["X-Model-Name"] = service.name
            response.headers["X-Model-Version"] = str(service.version)
        return response

    @app.teardown_request
    def _release(_: BaseException | None) -> None:
        service = g.pop("h5serve_service", None)
        if service is not None:
            repository().release(service)


def repository() -> ModelRepository:
    """The worker's model repository, set up by the app factory."""
    return current_app.extensions[_EXTENSION]


def rollout() -> Rollout:
    """What keeps the repository in step with the disk (for load/unload requests)."""
    return current_app.extensions[_EXTENSION + ".rollout"]


def inference(name: str | None = None, version: int | str | None = None,
              label: str | None = None) -> InferenceService:
    """The version this request uses (default: the default model's latest).

    Resolved on the first call and held for the rest of the request; raises
    UnknownModel (404) for a model, version or label that is not served.
    """
    held = g.get("h5serve_service")
    if held is None:
        held = repository().acquire(name, version_number(name, version), label)
        g.h5serve_service = held
    return held


def version_number(name: str | None, version: int | str | None) -> int | None:
    """A version from a URL or a message as a number (None: the latest); UnknownModel
    for one that is not a positive integer."""
    if version is None or isinstance(version, int):
        return version
    if not version.isdigit():
        raise UnknownModel(f"unknown model {name!r} version {version!r}: versions are "
                           "positive integers")
    return int(version)
