"""The gRPC door (GRPC_BIND): KServe V2 and TF Serving, in every gunicorn worker.

Each worker starts its own gRPC server on GRPC_BIND with SO_REUSEPORT (gRPC's default on
Linux), so the kernel spreads gRPC connections over the workers as gunicorn's shared
socket spreads HTTP ones. Under gevent, grpc.experimental.gevent makes gRPC's polling
cooperate with the hub: handlers run as greenlets of the worker, beside the HTTP
requests, and reach the same model thread and micro-batcher. Messages may be as big as
MAX_CONTENT_LENGTH (gRPC's default is 4 MiB). With AUTH=keys every method but health and
liveness/readiness wants the key as `authorization: Bearer <key>` (or `x-api-key`)
metadata, else UNAUTHENTICATED.
"""

from __future__ import annotations

import atexit
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc
from tritonclient.grpc import service_pb2_grpc

from app.config import Settings
from app.http.keys import KeyFile, presented
from app.protocols.grpc_calls import ready
from app.protocols.grpc_tfserving import ModelStatusServicer, PredictionServicer
from app.protocols.grpc_v2 import SERVICE, InferenceServicer
from app.runtime.offload import gevent_active
from app.runtime.repository import ModelRepository

log = logging.getLogger(__name__)
HANDLERS = 64  # gRPC calls one worker handles at once (greenlets under gevent)
OPEN_METHODS = frozenset({"/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch",
                          SERVICE + "ServerLive", SERVICE + "ServerReady"})


class HealthServicer(health_pb2_grpc.HealthServicer):
    """grpc.health.v1 Check, answered like /readyz (Watch: UNIMPLEMENTED)."""

    def __init__(self, models: ModelRepository) -> None:
        self.models = models

    def Check(self, request: Any, context: grpc.ServicerContext) -> Any:
        known = ("", "inference.GRPCInferenceService", "tensorflow.serving.PredictionService",
                 "tensorflow.serving.ModelService")
        if request.service not in known:
            context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {request.service!r}")
        status = health_pb2.HealthCheckResponse
        return status(status=status.SERVING if ready(self.models) else status.NOT_SERVING)


class KeyInterceptor(grpc.ServerInterceptor):
    """AUTH=keys: the same keys as HTTP, from the call's metadata."""

    def __init__(self, keys: KeyFile) -> None:
        self.keys = keys

    def intercept_service(self, continuation: Any, details: Any) -> Any:
        if details.method in OPEN_METHODS:
            return continuation(details)
        metadata = {k.lower(): v for k, v in details.invocation_metadata or ()}
        key = presented(metadata.get("authorization", ""), metadata.get("x-api-key", ""))
        self.keys.refresh()
        if key and self.keys.caller(key) is not None:
            return continuation(details)
        message = ("An API key is required: send it as 'authorization: Bearer <key>' "
                   "metadata." if not key else "The API key is not valid.")

        def refuse(_: Any, context: grpc.ServicerContext) -> Any:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

        return grpc.unary_unary_rpc_method_handler(refuse)


def start_grpc(settings: Settings, models: ModelRepository) -> grpc.Server:
    """Serve gRPC on GRPC_BIND in this worker (the factory calls it only when it is set)."""
    if gevent_active():
        from grpc.experimental import gevent as grpc_gevent

        grpc_gevent.init_gevent()
    interceptors = [KeyInterceptor(KeyFile(settings.keys_file))] \
        if settings.AUTH == "keys" and settings.keys_file else []
    server = grpc.server(ThreadPoolExecutor(max_workers=HANDLERS), interceptors=interceptors,
                         options=[("grpc.max_receive_message_length",
                                   settings.MAX_CONTENT_LENGTH),
                                  ("grpc.max_send_message_length", settings.MAX_CONTENT_LENGTH),
                                  ("grpc.so_reuseport", 1)])
    service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(InferenceServicer(models),
                                                                server)
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionServicer(models), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelStatusServicer(models),
                                                              server)
    health_pb2_grpc.add_HealthServicer_to_server(HealthServicer(models), server)
    if server.add_insecure_port(settings.GRPC_BIND) == 0:
        raise RuntimeError(f"GRPC_BIND={settings.GRPC_BIND}: cannot listen there")
    server.start()
    atexit.register(server.stop, 5)
    log.info("gRPC (KServe V2, TF Serving, health) on %s", settings.GRPC_BIND)
    return server
