"""The Open Inference Protocol over gRPC: KServe's and Triton's GRPCInferenceService.

ServerLive, ServerReady, ModelReady, ServerMetadata, ModelMetadata and ModelInfer, with
the messages of tritonclient's generated module (`tritonclient.grpc.service_pb2`, the
KServe `inference` package). A ModelInfer input's values come from its
`raw_input_contents` or its typed `contents` (BYTES as the bytes they are); outputs go
back in `raw_output_contents`, as Triton sends them. The same request gives the same
answer by either door: both go through app.protocols.v2_codec and the data plane.
"""

from __future__ import annotations

from typing import Any

import grpc
from tritonclient.grpc import service_pb2 as pb
from tritonclient.grpc import service_pb2_grpc

from app.protocols import v2_codec
from app.protocols.grpc.calls import answer
from app.runtime.dataplane import Call, DataPlane
from app.runtime.dataplane.types import InferInput, InferRequest, RequestedOutput
from app.runtime.errors import invalid_argument

SERVICE = "/inference.GRPCInferenceService/"
_TYPED = {"FP32": "fp32_contents", "UINT8": "uint_contents"}


def _parameter(value: Any) -> Any:
    """An InferParameter's value (bool, int, string or float)."""
    kind = value.WhichOneof("parameter_choice")
    return None if kind is None else getattr(value, kind)


def infer_input(message: Any, raw: bytes | None, max_rows: int) -> InferInput:
    """One ModelInferRequest input as the data plane's."""
    name, datatype = message.name, message.datatype
    shape = v2_codec.check_shape(name, list(message.shape), max_rows)
    v2_codec.check_parameters(name, {k: _parameter(v) for k, v in message.parameters.items()},
                              has_binary=True)
    if raw is not None:
        return v2_codec.from_raw(name, datatype, shape, raw)
    if datatype == "BYTES":
        return v2_codec.from_files(name, shape, list(message.contents.bytes_contents))
    return v2_codec.from_numbers(name, datatype, shape,
                                 list(getattr(message.contents, _TYPED.get(datatype, ""), [])))


def infer_request(request: Any, max_rows: int) -> InferRequest:
    """A ModelInferRequest as the data plane's (outputs asked for by name, top k)."""
    if len(request.inputs) != 1:
        raise invalid_argument(f"expected exactly one input tensor, got {len(request.inputs)}")
    raws = list(request.raw_input_contents)
    if raws and len(raws) != len(request.inputs):
        raise invalid_argument("raw_input_contents must hold one entry per input")
    outputs = tuple(RequestedOutput(o.name, _parameter(o.parameters["classification"])
                                    if "classification" in o.parameters else None)
                    for o in request.outputs) or None
    return InferRequest(request.model_name, request.model_version,
                        inputs=(infer_input(request.inputs[0], raws[0] if raws else None,
                                            max_rows),),
                        outputs=outputs)


class InferenceServicer(service_pb2_grpc.GRPCInferenceServiceServicer):
    """The V2 methods, on the worker's data plane."""

    def __init__(self, plane: DataPlane) -> None:
        self.plane = plane

    def ServerLive(self, request: Any, context: grpc.ServicerContext) -> Any:
        return answer(self.plane, SERVICE + "ServerLive", context,
                      lambda _: pb.ServerLiveResponse(live=True))

    def ServerReady(self, request: Any, context: grpc.ServicerContext) -> Any:
        return answer(self.plane, SERVICE + "ServerReady", context,
                      lambda _: pb.ServerReadyResponse(ready=self.plane.ready()))

    def ModelReady(self, request: Any, context: grpc.ServicerContext) -> Any:
        return answer(self.plane, SERVICE + "ModelReady", context,
                      lambda call: pb.ModelReadyResponse(ready=self.plane.model_ready(
                          call, request.name, request.version)))

    def ServerMetadata(self, request: Any, context: grpc.ServicerContext) -> Any:
        server = self.plane.server_metadata()
        return answer(self.plane, SERVICE + "ServerMetadata", context,
                      lambda _: pb.ServerMetadataResponse(name=server.name,
                                                          version=server.version,
                                                          extensions=list(server.extensions)))

    def ModelMetadata(self, request: Any, context: grpc.ServicerContext) -> Any:
        def describe(call: Call) -> Any:
            model = self.plane.model_metadata(call, request.name, request.version)
            tensor = pb.ModelMetadataResponse.TensorMetadata
            return pb.ModelMetadataResponse(
                name=model.name, versions=[str(v) for v in model.versions],
                platform=model.platform,
                inputs=[tensor(name=t.name, datatype=t.datatype, shape=t.shape)
                        for t in model.inputs],
                outputs=[tensor(name=t.name, datatype=t.datatype, shape=t.shape)
                         for t in model.outputs])
        return answer(self.plane, SERVICE + "ModelMetadata", context, describe)

    def ModelInfer(self, request: Any, context: grpc.ServicerContext) -> Any:
        def infer(call: Call) -> Any:
            result = self.plane.infer(call, infer_request(request, self.plane.max_rows))
            return pb.ModelInferResponse(
                model_name=result.model_name, model_version=str(result.model_version),
                id=request.id,
                outputs=[pb.ModelInferResponse.InferOutputTensor(
                    name=o.name, datatype=o.datatype, shape=o.shape) for o in result.outputs],
                raw_output_contents=[v2_codec.output_bytes(o) for o in result.outputs])
        return answer(self.plane, SERVICE + "ModelInfer", context, infer)
