"""h5serve: production serving for Keras image classifiers.

`create_app()` is the factory gunicorn calls in each worker (`app:create_app()`); the
model is loaded there, after the fork, never in the master.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask
from flask_cors import CORS
from werkzeug.middleware.proxy_fix import ProxyFix

from app import api, pages, tfserving, v2
from app.classifier import Classifier
from app.config import PROJECT_ROOT, Settings
from app.errors import register_error_handlers
from app.inference import InferenceService
from app.metrics import init_metrics, observe_batch
from app.uploads import InMemoryRequest

log = logging.getLogger(__name__)


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the service: settings, model, routes, error handlers, proxy trust."""
    settings = load_config(config)
    configure_logging(settings)
    app = Flask(__name__, static_folder=str(PROJECT_ROOT / "static"),
                template_folder=str(PROJECT_ROOT / "templates"))
    app.request_class = InMemoryRequest
    app.config.update(MAX_CONTENT_LENGTH=settings.MAX_CONTENT_LENGTH)
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep the seed response's key order
    init_model(app, settings)
    register_blueprints(app, settings)
    register_error_handlers(app)
    apply_proxy_fix(app, settings)
    return app


def load_config(overrides: Mapping[str, Any] | None) -> Settings:
    """Environment variables, then the caller's overrides (tests pass their own)."""
    return Settings.load(overrides)


def configure_logging(settings: Settings) -> None:
    """Log to stderr (gunicorn and Docker collect it) unless a handler is already set."""
    logging.basicConfig(level=settings.LOG_LEVEL.upper(),
                        format="%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s")
    logging.getLogger("app").setLevel(settings.LOG_LEVEL.upper())


def init_model(app: Flask, settings: Settings) -> None:
    """Load and warm up the model once per process; fails fast with a clear message."""
    classifier = Classifier(settings.MODEL_PATH)
    classifier.load()
    app.extensions["h5serve"] = InferenceService(classifier, settings, observer=observe_batch)
    init_metrics(app, classifier)


def register_blueprints(app: Flask, settings: Settings) -> None:
    """HTML pages and the JSON API; CORS only on the JSON API."""
    for blueprint in (pages.bp, api.bp, tfserving.bp, v2.bp):
        app.register_blueprint(blueprint)
    if settings.cors_origins:
        CORS(app, resources={r"/predict.*": {}, r"/model": {}, r"/v[12]/.*": {}},
             origins=settings.cors_origins, supports_credentials=False,
             send_wildcard=settings.cors_origins == ["*"])


def apply_proxy_fix(app: Flask, settings: Settings) -> None:
    """Trust exactly one proxy hop (nginx) for client address, scheme and host."""
    if settings.TRUST_PROXY:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)  # type: ignore[method-assign]
