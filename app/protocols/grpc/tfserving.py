"""TensorFlow Serving's gRPC API: PredictionService/Predict and ModelService/GetModelStatus.

The messages of the `tensorflow-serving-api` package, so `PredictionServiceStub` clients
(port 8500 by convention) work unchanged. As on TF Serving's REST door: a numeric input
tensor is the model's own input (already scaled), a DT_STRING tensor holds encoded image
files (decoded and preprocessed like uploads); the output is "probabilities" (a sigmoid
model's p alone). Not implemented: Classify, Regress, MultiInference, GetModelMetadata
(UNIMPLEMENTED).
"""

from __future__ import annotations

from typing import Any

import grpc

from app.protocols.grpc.calls import answer
from app.protocols.grpc.tf_protos import (
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    to_array,
    to_tensor,
)
from app.runtime.dataplane import Call, DataPlane
from app.runtime.dataplane.batches import model_output
from app.runtime.dataplane.types import OUTPUT_NAME, InferInput, InferRequest
from app.runtime.errors import UnknownModel, invalid_argument

PREDICTION = "/tensorflow.serving.PredictionService/"
MODEL = "/tensorflow.serving.ModelService/"
SIGNATURES = ("", "serving_default")


def _version(spec: Any) -> int | None:
    return spec.version.value if spec.HasField("version") else None


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    """Predict on the worker's data plane."""

    def __init__(self, plane: DataPlane) -> None:
        self.plane = plane

    def Predict(self, request: Any, context: grpc.ServicerContext) -> Any:
        return answer(self.plane, PREDICTION + "Predict", context,
                      lambda call: self._predict(call, request))

    def _predict(self, call: Call, request: Any) -> Any:
        spec = request.model_spec
        if spec.signature_name not in SIGNATURES:
            raise invalid_argument(f"unknown signature {spec.signature_name!r}: this model "
                                   "has one, serving_default")
        model = self.plane.model_metadata(call, spec.name, _version(spec), spec.version_label)
        name = model.inputs[0].name
        if list(request.inputs) != [name]:
            raise invalid_argument(f"this model has one input, named {name!r}; got "
                                   f"{sorted(request.inputs)}")
        unknown = set(request.output_filter) - {OUTPUT_NAME}
        if unknown:
            raise invalid_argument(f"unknown outputs {sorted(unknown)}: the output is "
                                   f"{OUTPUT_NAME!r}")
        try:
            values = to_array(request.inputs[name])
        except (TypeError, ValueError) as exc:
            raise invalid_argument(f"input {name!r} is not a valid tensor ({exc})") from None
        if values.ndim == 0:
            raise invalid_argument(f"input {name!r} needs a batch axis")
        if values.dtype.kind in "SO":  # DT_STRING: encoded image files
            block = InferInput("BYTES", values.shape, [bytes(v) for v in values.ravel()], name)
        else:
            block = InferInput("FP32", values.shape, values, name)
        result = self.plane.infer(call, InferRequest(spec.name, _version(spec),
                                                     spec.version_label, (block,)))
        outputs = model_output(result.probabilities, model.binary)
        response = predict_pb2.PredictResponse(outputs={
            OUTPUT_NAME: to_tensor(outputs)})
        response.model_spec.name = result.model_name
        response.model_spec.version.value = result.model_version
        response.model_spec.signature_name = "serving_default"
        return response


class ModelStatusServicer(model_service_pb2_grpc.ModelServiceServicer):
    """GetModelStatus: every version TF Serving would list, with its state."""

    def __init__(self, plane: DataPlane) -> None:
        self.plane = plane

    def GetModelStatus(self, request: Any, context: grpc.ServicerContext) -> Any:
        return answer(self.plane, MODEL + "GetModelStatus", context,
                      lambda call: self._status(call, request))

    def _status(self, call: Call, request: Any) -> Any:
        spec = request.model_spec
        try:
            states = self.plane.version_states(call, spec.name, _version(spec),
                                               spec.version_label)
        except UnknownModel as error:  # TF Serving's own words, as on its REST door
            raise UnknownModel(f"Servable not found for request: {error.message}") from None
        status = get_model_status_pb2.GetModelStatusResponse()
        for version, state in sorted(states.items(), reverse=True):
            entry = status.model_version_status.add(
                version=version,
                state=get_model_status_pb2.ModelVersionStatus.State.Value(state.state))
            entry.status.error_code = 2 if state.error else 0  # tensorflow.error UNKNOWN / OK
            entry.status.error_message = state.error
        return status
