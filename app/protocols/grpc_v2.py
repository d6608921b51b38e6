"""The Open Inference Protocol over gRPC: KServe's and Triton's GRPCInferenceService.

ServerLive, ServerReady, ModelReady, ServerMetadata, ModelMetadata and ModelInfer, with
the messages of tritonclient's generated module (`tritonclient.grpc.service_pb2`, the
KServe `inference` package). A ModelInfer request is turned into the HTTP door's tensor
(its `raw_input_contents`, or its typed `contents`, as binary data) and answered by the
same code, so the same request gives the same answer by either door; outputs come back
in `raw_output_contents`, as Triton sends them.
"""

from __future__ import annotations

from typing import Any

import grpc
import numpy as np
from tritonclient.grpc import service_pb2 as pb
from tritonclient.grpc import service_pb2_grpc

from app.config import VERSION
from app.protocols.errors import invalid_argument
from app.protocols.grpc_calls import answer, leased, ready
from app.protocols.tensors import OUTPUT_NAME
from app.protocols.v2_binary import BinaryData, pack_bytes
from app.protocols.v2_tensors import input_batch, outputs
from app.runtime.repository import ModelRepository

SERVICE = "/inference.GRPCInferenceService/"
_TYPED = {"FP32": ("fp32_contents", "<f4"), "UINT8": ("uint_contents", "<u1")}


def _parameter(value: Any) -> Any:
    """An InferParameter's value (bool, int, string or float)."""
    kind = value.WhichOneof("parameter_choice")
    return None if kind is None else getattr(value, kind)


def _tensor(message: Any, raw: bytes | None) -> tuple[dict[str, Any], BinaryData]:
    """One gRPC input as the HTTP door's tensor, its data as binary data."""
    if raw is None:
        if message.datatype == "BYTES":
            raw = pack_bytes(list(message.contents.bytes_contents))
        elif message.datatype in _TYPED:
            field, dtype = _TYPED[message.datatype]
            raw = np.asarray(getattr(message.contents, field), dtype).tobytes()
        else:
            raw = b""
    parameters = {key: _parameter(value) for key, value in message.parameters.items()}
    tensor = {"name": message.name, "datatype": message.datatype, "shape": list(message.shape),
              "parameters": {**parameters, "binary_data_size": len(raw)}}
    return tensor, BinaryData(raw, 0)


class InferenceServicer(service_pb2_grpc.GRPCInferenceServiceServicer):
    """The V2 methods, on the worker's model repository."""

    def __init__(self, models: ModelRepository) -> None:
        self.models = models

    def ServerLive(self, request: Any, context: grpc.ServicerContext) -> Any:
        return answer(SERVICE + "ServerLive", context, lambda: pb.ServerLiveResponse(live=True))

    def ServerReady(self, request: Any, context: grpc.ServicerContext) -> Any:
        return answer(SERVICE + "ServerReady", context,
                      lambda: pb.ServerReadyResponse(ready=ready(self.models)))

    def ModelReady(self, request: Any, context: grpc.ServicerContext) -> Any:
        def check() -> Any:
            with leased(self.models, request.name, request.version) as service:
                return pb.ModelReadyResponse(ready=service.ready)
        return answer(SERVICE + "ModelReady", context, check)

    def ServerMetadata(self, request: Any, context: grpc.ServicerContext) -> Any:
        return answer(SERVICE + "ServerMetadata", context, lambda: pb.ServerMetadataResponse(
            name="h5serve", version=VERSION,
            extensions=["classification", "model_repository", "binary_tensor_data"]))

    def ModelMetadata(self, request: Any, context: grpc.ServicerContext) -> Any:
        def describe() -> Any:
            with leased(self.models, request.name, request.version) as service:
                versions = sorted(self.models.table[service.name].versions)
                return pb.ModelMetadataResponse(
                    name=service.name, versions=[str(v) for v in versions],
                    platform="keras_h5",
                    inputs=[pb.ModelMetadataResponse.TensorMetadata(
                        name=service.classifier.input_name, datatype="FP32",
                        shape=[-1, *service.spec.model_shape])],
                    outputs=[pb.ModelMetadataResponse.TensorMetadata(
                        name=OUTPUT_NAME, datatype="FP32", shape=[-1, len(service.labels)])])
        return answer(SERVICE + "ModelMetadata", context, describe)

    def ModelInfer(self, request: Any, context: grpc.ServicerContext) -> Any:
        return answer(SERVICE + "ModelInfer", context, lambda: self._infer(request))

    def _infer(self, request: Any) -> Any:
        if len(request.inputs) != 1:
            raise invalid_argument(f"expected exactly one input tensor, "
                                   f"got {len(request.inputs)}")
        raws = list(request.raw_input_contents)
        if raws and len(raws) != len(request.inputs):
            raise invalid_argument("raw_input_contents must hold one entry "
                                   "per input")
        tensor, binary = _tensor(request.inputs[0], raws[0] if raws else None)
        wanted = [{"name": o.name, "parameters": {
            **{k: _parameter(v) for k, v in o.parameters.items()}, "binary_data": True}}
            for o in request.outputs] or None
        with leased(self.models, request.model_name, request.model_version) as service:
            batch = input_batch(service, tensor, binary)
            binary.finish()
            body = {"outputs": wanted} if wanted else {"parameters": {"binary_data_output": True}}
            answers, buffers = outputs(service.labels, body,
                                       service.classify_model_input(batch))
            return pb.ModelInferResponse(
                model_name=service.name, model_version=str(service.version), id=request.id,
                outputs=[pb.ModelInferResponse.InferOutputTensor(
                    name=a["name"], datatype=a["datatype"], shape=a["shape"]) for a in answers],
                raw_output_contents=buffers)
