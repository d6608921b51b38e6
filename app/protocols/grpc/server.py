"""The gRPC server (GRPC_BIND): KServe V2, TF Serving and health, in every gunicorn worker.

Each worker starts its own gRPC server on GRPC_BIND with SO_REUSEPORT (gRPC's default on
Linux), so the kernel spreads gRPC connections over the workers as gunicorn's shared
socket spreads HTTP ones. Under gevent, grpc.experimental.gevent makes gRPC's polling
cooperate with the hub: handlers run as greenlets of the worker, beside the HTTP
requests, and reach the same model thread and micro-batcher. Messages may be as big as
MAX_CONTENT_LENGTH (gRPC's default is 4 MiB). The caller adds its interceptors (the API
keys: app.http.grpc_keys); OPEN_METHODS are those that never want a key.
"""

from __future__ import annotations

import atexit
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tritonclient.grpc import service_pb2_grpc

from app.config import Settings
from app.protocols.grpc.tf_protos import model_service_pb2_grpc, prediction_service_pb2_grpc
from app.protocols.grpc.tfserving import ModelStatusServicer, PredictionServicer
from app.protocols.grpc.v2 import SERVICE, InferenceServicer
from app.runtime.dataplane import DataPlane
from app.runtime.offload import gevent_active

log = logging.getLogger(__name__)
HANDLERS = 64  # gRPC calls one worker handles at once (greenlets under gevent)
OPEN_METHODS = frozenset({"/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch",
                          SERVICE + "ServerLive", SERVICE + "ServerReady"})


class HealthServicer(health_pb2_grpc.HealthServicer):
    """grpc.health.v1 Check, answered like /readyz (Watch: UNIMPLEMENTED)."""

    def __init__(self, plane: DataPlane) -> None:
        self.plane = plane

    def Check(self, request: Any, context: grpc.ServicerContext) -> Any:
        known = ("", "inference.GRPCInferenceService", "tensorflow.serving.PredictionService",
                 "tensorflow.serving.ModelService")
        if request.service not in known:
            context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {request.service!r}")
        status = health_pb2.HealthCheckResponse
        return status(status=status.SERVING if self.plane.ready() else status.NOT_SERVING)


def start_grpc(settings: Settings, plane: DataPlane,
               interceptors: list[grpc.ServerInterceptor]) -> grpc.Server:
    """Serve gRPC on GRPC_BIND in this worker (the factory calls it only when it is set)."""
    if gevent_active():
        from grpc.experimental import gevent as grpc_gevent

        grpc_gevent.init_gevent()
    server = grpc.server(ThreadPoolExecutor(max_workers=HANDLERS), interceptors=interceptors,
                         options=[("grpc.max_receive_message_length",
                                   settings.MAX_CONTENT_LENGTH),
                                  ("grpc.max_send_message_length", settings.MAX_CONTENT_LENGTH),
                                  ("grpc.so_reuseport", 1)])
    service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(InferenceServicer(plane),
                                                                server)
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionServicer(plane), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelStatusServicer(plane),
                                                              server)
    health_pb2_grpc.add_HealthServicer_to_server(HealthServicer(plane), server)
    if server.add_insecure_port(settings.GRPC_BIND) == 0:
        raise RuntimeError(f"GRPC_BIND={settings.GRPC_BIND}: cannot listen there")
    server.start()
    atexit.register(server.stop, 5)
    log.info("gRPC (KServe V2, TF Serving, health) on %s", settings.GRPC_BIND)
    return server
