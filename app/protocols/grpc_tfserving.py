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
from tensorflow_serving.apis import (
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from app.protocols.errors import invalid_argument
from app.protocols.grpc_calls import answer, leased
from app.protocols.rows import check_row_count
from app.protocols.tensors import OUTPUT_NAME, encoded_images, numeric_rows, raw_outputs
from app.runtime.errors import UnknownModel
from app.runtime.repository import ModelRepository

PREDICTION = "/tensorflow.serving.PredictionService/"
MODEL = "/tensorflow.serving.ModelService/"
SIGNATURES = ("", "serving_default")



def _version(spec: Any) -> int | None:
    return spec.version.value if spec.HasField("version") else None


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    """Predict on the worker's model repository."""

    def __init__(self, models: ModelRepository) -> None:
        self.models = models

    def Predict(self, request: Any, context: grpc.ServicerContext) -> Any:
        return answer(PREDICTION + "Predict", context, lambda: self._predict(request))

    def _predict(self, request: Any) -> Any:
        import tensorflow as tf

        spec = request.model_spec
        if spec.signature_name not in SIGNATURES:
            raise invalid_argument(f"unknown signature {spec.signature_name!r}: this model "
                                   "has one, serving_default")
        with leased(self.models, spec.name, _version(spec), spec.version_label) as service:
            name = service.classifier.input_name
            if list(request.inputs) != [name]:
                raise invalid_argument(f"this model has one input, named {name!r}; got "
                                       f"{sorted(request.inputs)}")
            unknown = set(request.output_filter) - {OUTPUT_NAME}
            if unknown:
                raise invalid_argument(f"unknown outputs {sorted(unknown)}: the output is "
                                       f"{OUTPUT_NAME!r}")
            try:
                values = tf.make_ndarray(request.inputs[name])
            except (TypeError, ValueError) as exc:
                raise invalid_argument(f"input {name!r} is not a valid tensor ({exc})") from None
            if values.ndim == 0:
                raise invalid_argument(f"input {name!r} needs a batch axis")
            check_row_count(len(values), service.settings.MAX_PREDICT_ROWS, f"input {name!r}")
            if values.dtype.kind in "SO":  # DT_STRING: encoded image files
                batch = encoded_images([bytes(v) for v in values.ravel()], service)
            else:
                batch = numeric_rows(values, service, f"input {name!r}")
            probabilities = service.classify_model_input(batch)
            outputs = raw_outputs(probabilities, service.classifier.output_spec.binary)  # type: ignore[union-attr]
            response = predict_pb2.PredictResponse(outputs={
                OUTPUT_NAME: tf.make_tensor_proto(outputs.astype("float32"))})
            response.model_spec.name = service.name
            response.model_spec.version.value = service.version
            response.model_spec.signature_name = "serving_default"
            return response


class ModelStatusServicer(model_service_pb2_grpc.ModelServiceServicer):
    """GetModelStatus: every version TF Serving would list, with its state."""

    def __init__(self, models: ModelRepository) -> None:
        self.models = models

    def GetModelStatus(self, request: Any, context: grpc.ServicerContext) -> Any:
        return answer(MODEL + "GetModelStatus", context, lambda: self._status(request))

    def _status(self, request: Any) -> Any:
        spec = request.model_spec
        wanted = _version(spec)
        if spec.version_label:
            with leased(self.models, spec.name, None, spec.version_label) as service:
                wanted = service.version
        states = {v: st for (n, v), st in self.models.states.items()
                  if n == spec.name and wanted in (None, v)}
        if not states:
            raise UnknownModel(f"Servable not found for request: unknown model {spec.name!r}")
        status = get_model_status_pb2.GetModelStatusResponse()
        for version, state in sorted(states.items(), reverse=True):
            entry = status.model_version_status.add(
                version=version,
                state=get_model_status_pb2.ModelVersionStatus.State.Value(state.state))
            entry.status.error_code = 2 if state.error else 0  # tensorflow.error UNKNOWN / OK
            entry.status.error_message = state.error
        return status
