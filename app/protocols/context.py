"""The process's InferenceService, as every route reaches it.

The app factory installs it once in `app.extensions` (Flask's place for such state);
routes of every protocol and page read it through `inference()`.
"""

from __future__ import annotations

from flask import Flask, current_app

from app.runtime.inference import InferenceService

_EXTENSION = "h5serve"


def install(app: Flask, service: InferenceService) -> None:
    """Make `service` the one the app's routes use."""
    app.extensions[_EXTENSION] = service


def inference() -> InferenceService:
    """The process's inference service, set up by the app factory."""
    return current_app.extensions[_EXTENSION]
