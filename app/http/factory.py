"""The app factory, as a list of steps: settings, model, routes, errors, proxy trust.

gunicorn calls it in each worker through `app:create_app()` (app/__init__.py), so the
model is loaded after the fork, never in the master.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask
from flask_cors import CORS
from werkzeug.middleware.proxy_fix import ProxyFix

from app import metrics
from app.config import PROJECT_ROOT, Settings, mebibytes
from app.http import pages
from app.http.auth import install_auth
from app.http.cli import register_commands
from app.http.errors import register_error_handlers
from app.http.json_provider import OrjsonProvider
from app.http.keys import KeyFile
from app.http.logs import configure_logging
from app.protocols.rest import (
    context,
    explanations,
    request_ids,
    seed,
    tfserving,
    v2,
    v2_repository,
)
from app.runtime.dataplane import DataPlane
from app.runtime.drift import DriftMonitor
from app.runtime.events import InferenceEvents
from app.runtime.offload import skip_processor_probe
from app.runtime.prediction_log import PredictionLog
from app.runtime.repository import ModelRepository
from app.runtime.rollout import Rollout
from app.runtime.tracing import configure as configure_tracing


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the service: settings, model, routes, error handlers, proxy trust."""
    settings = load_config(config)
    configure_logging(settings.LOG_LEVEL, settings.LOG_FORMAT)
    configure_tracing(settings.OTEL_EXPORTER_OTLP_ENDPOINT)
    app = Flask("app", static_folder=str(PROJECT_ROOT / "static"),
                template_folder=str(PROJECT_ROOT / "templates"))
    app.json = OrjsonProvider(app)  # keys in the seed response's order, as written
    app.config.update(MAX_CONTENT_LENGTH=settings.MAX_CONTENT_LENGTH)
    app.jinja_env.filters["mebibytes"] = mebibytes
    request_ids.install(app)  # first: every later hook, log line and error has the ID
    context.install(app)  # then each request's Call: refused ones are counted too
    install_auth(app, settings)  # before the models: a bad keys file fails at once
    init_models(app, settings)
    register_blueprints(app, settings)
    register_error_handlers(app)
    apply_proxy_fix(app, settings)
    register_commands(app)
    metrics.WORKER_STARTS.inc()
    return app


def load_config(overrides: Mapping[str, Any] | None) -> Settings:
    """Environment variables, then the caller's overrides (tests pass their own)."""
    return Settings.load(overrides)


def init_models(app: Flask, settings: Settings) -> None:
    """Load and warm every served model version once per process (MODEL_PATH's one file,
    or MODEL_REPOSITORY's models), then keep watching the repository for new versions,
    and open the gRPC door on the same models (GRPC_BIND). Fails fast with a clear
    message when nothing can be served."""
    skip_processor_probe()
    predictions = PredictionLog(settings.PREDICTION_LOG, settings.PREDICTION_LOG_SAMPLE,
                                request_id=request_ids.current)
    models = ModelRepository(settings, examples_dir=PROJECT_ROOT / "static" / "examples",
                             prediction_log=predictions)
    watcher = Rollout(models, settings)
    watcher.start()
    plane = DataPlane(models, watcher)
    if settings.EVENTS_URL:
        plane.watchers.append(InferenceEvents(settings))
    if settings.DRIFT_REFERENCE:
        plane.watchers.append(drift := DriftMonitor(settings.DRIFT_REFERENCE,
                                                    settings.DRIFT_WINDOW))
        context.watch_drift(app, drift)
    context.serve(app, plane)
    if settings.GRPC_BIND:  # gRPC's modules only where it is served
        from app.http.grpc_keys import KeyInterceptor
        from app.protocols.grpc.server import start_grpc

        keys = settings.AUTH == "keys" and settings.keys_file
        start_grpc(settings, plane,
                   [KeyInterceptor(KeyFile(settings.keys_file))] if keys else [])


def register_blueprints(app: Flask, settings: Settings) -> None:
    """HTML pages and the JSON APIs; CORS only on the JSON APIs."""
    for blueprint in (pages.bp, seed.bp, explanations.bp, tfserving.bp, v2.bp, v2_repository.bp):
        app.register_blueprint(blueprint)
    if settings.cors_origins:
        CORS(app, resources={r"/predict.*": {}, r"/explain": {}, r"/models?(/.*)?": {},
                             r"/v[12](/.*)?": {}},
             origins=settings.cors_origins, supports_credentials=False,
             always_send=False,  # only answers with an Origin get CORS headers
             send_wildcard=settings.cors_origins == ["*"])


def apply_proxy_fix(app: Flask, settings: Settings) -> None:
    """Trust exactly one proxy hop (nginx) for client address, scheme and host."""
    if settings.TRUST_PROXY:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)  # type: ignore[method-assign]
