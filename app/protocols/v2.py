"""The Open Inference Protocol (KServe V2) REST API, JSON tensors only.

GET  /v2                              server metadata
GET  /v2/health/live, /v2/health/ready
GET  /v2/models/<name>[/versions/<v>]   model metadata
GET  /v2/models/<name>[/versions/<v>]/ready
POST /v2/models/<name>[/versions/<v>]/infer

Inputs: one tensor named like the model's input, FP32 (the model's own input, already
scaled) or UINT8 (raw 0-255 pixels, scaled like uploads) in the model's shape, or BYTES
of shape [N] holding base64-encoded image files. Outputs: FP32 "probabilities" [N, K]
in label order, and with the classification extension (`"parameters":
{"classification": k}` on a requested output) the top k as "score:index:label" BYTES.
Errors are `{"error": "..."}`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from flask import Blueprint, Response, jsonify, request

from app.config import VERSION as SERVER_VERSION
from app.protocols.bodies import read_json_body
from app.protocols.context import inference, repository
from app.protocols.errors import ApiError, answer_errors_as_protocol
from app.protocols.rows import check_row_count
from app.protocols.tensors import (
    OUTPUT_NAME,
    decode_b64,
    encoded_images,
    numeric_rows,
)

bp = Blueprint("v2", __name__, url_prefix="/v2")
answer_errors_as_protocol(bp)


def _health(**state: object) -> tuple[Response, int]:
    """KServe's health bodies ({"live": true}, {"ready": false}, ...): its own client reads
    them; Triton's reads the status alone. 503 when not ready."""
    return jsonify(state), 200 if all(v for v in state.values() if isinstance(v, bool)) \
        else 503


@bp.get("")
def server_metadata() -> Response:
    return jsonify({"name": "h5serve", "version": SERVER_VERSION,
                    "extensions": ["classification", "model_repository"]})


@bp.get("/health/live")
def live() -> tuple[Response, int]:
    return _health(live=True)


@bp.get("/health/ready")
def ready() -> tuple[Response, int]:
    table = repository().table
    return _health(ready=bool(table) and all(s.ready for m in table.values()
                                             for s in m.versions.values()))


@bp.get("/models/<name>")
@bp.get("/models/<name>/versions/<version>")
def model_metadata(name: str, version: str | None = None) -> Response:
    service = inference(name, version)
    versions = sorted(repository().table[name].versions) if name in repository().table else []
    return jsonify({
        "name": name, "versions": [str(v) for v in versions], "platform": "keras_h5",
        "inputs": [{"name": service.classifier.input_name, "datatype": "FP32",
                    "shape": [-1, *service.spec.model_shape]}],
        "outputs": [{"name": OUTPUT_NAME, "datatype": "FP32",
                     "shape": [-1, len(service.labels)]}],
    })


@bp.get("/models/<name>/ready")
@bp.get("/models/<name>/versions/<version>/ready")
def model_ready(name: str, version: str | None = None) -> tuple[Response, int]:
    return _health(name=name, ready=inference(name, version).ready)


@bp.post("/models/<name>/infer")
@bp.post("/models/<name>/versions/<version>/infer")
def infer(name: str, version: str | None = None) -> Response:
    service = inference(name, version)
    if "Inference-Header-Content-Length" in request.headers:
        raise ApiError(400, "invalid_argument", "the binary tensor data extension is not "
                       "supported: send JSON tensors (tritonclient: binary_data=False)")
    body = read_json_body(strict_content_type=False)
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
        raise ApiError(400, "invalid_argument", 'The body must be an object with an "inputs" list')
    if len(body["inputs"]) != 1 or not isinstance(body["inputs"][0], dict):
        raise ApiError(400, "invalid_argument",
                       f"expected exactly one input tensor, named "
                       f"{service.classifier.input_name!r}")
    probabilities = service.classify_model_input(_input_batch(body["inputs"][0]))
    response: dict[str, Any] = {"model_name": name, "model_version": str(service.version),
                                "outputs": _outputs(body.get("outputs"), probabilities)}
    if "id" in body:
        response["id"] = body["id"]
    return jsonify(response)


def _input_batch(tensor: dict[str, Any]) -> np.ndarray:
    service = inference()
    name, datatype, shape = tensor.get("name"), tensor.get("datatype"), tensor.get("shape")
    if name != service.classifier.input_name:
        raise ApiError(400, "invalid_argument", f"unexpected input {name!r}: this model's "
                       f"input is {service.classifier.input_name!r}")
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape) \
            or not shape:
        raise ApiError(400, "invalid_argument", "input shape must be a list of sizes")
    check_row_count(shape[0], service.settings.MAX_PREDICT_ROWS, f"input {name!r}")
    data = np.asarray(tensor.get("data"), dtype=object).ravel()
    if datatype == "BYTES":
        if (len(shape) not in (1, 2) or int(np.prod(shape)) != shape[0]
                or len(data) != shape[0] or not shape[0]):
            raise ApiError(400, "invalid_argument",
                           "BYTES input: shape [N] (or [N, 1]), N > 0 base64 image strings")
        return encoded_images([decode_b64(item, f"{name}[{i}]") for i, item in enumerate(data)],
                              service)
    if datatype not in ("FP32", "UINT8"):
        raise ApiError(400, "invalid_argument",
                       f"datatype {datatype!r} is not supported: use FP32, UINT8 or BYTES")
    if len(data) != int(np.prod(shape)):
        raise ApiError(400, "invalid_argument",
                       f"input has {len(data)} values but shape {shape} needs {np.prod(shape)}")
    try:
        rows = data.astype(np.float64).reshape(shape)
    except (TypeError, ValueError):
        raise ApiError(400, "invalid_argument", "input data must be numbers") from None
    batch = numeric_rows(rows, service, name)
    if datatype == "UINT8":
        if batch.min(initial=0) < 0 or batch.max(initial=0) > 255 or (batch % 1).any():
            raise ApiError(400, "invalid_argument", "UINT8 values must be integers 0-255")
        return service.spec.to_model_input(service.spec.from_model_layout(batch))
    return batch


def _outputs(requested: Any, probabilities: np.ndarray) -> list[dict[str, Any]]:
    labels = inference().labels
    if requested is None:
        requested = [{"name": OUTPUT_NAME}]
    if not isinstance(requested, list) or not all(isinstance(o, dict) for o in requested):
        raise ApiError(400, "invalid_argument", '"outputs" must be a list of objects')
    outputs = []
    for output in requested:
        if output.get("name") != OUTPUT_NAME:
            raise ApiError(400, "invalid_argument", f"unknown output {output.get('name')!r}: "
                           f"this model's output is {OUTPUT_NAME!r}")
        top_k = (output.get("parameters") or {}).get("classification")
        if top_k is None:
            outputs.append({"name": OUTPUT_NAME, "datatype": "FP32",
                            "shape": list(probabilities.shape),
                            "data": probabilities.ravel().tolist()})
            continue
        if not isinstance(top_k, int) or not 1 <= top_k <= len(labels):
            raise ApiError(400, "invalid_argument",
                           f"classification must be an integer from 1 to {len(labels)}")
        order = np.argsort(-probabilities, axis=1, kind="stable")[:, :top_k]
        data = [f"{probabilities[row, i]:f}:{i}:{labels[i]}"
                for row in range(len(order)) for i in order[row]]
        outputs.append({"name": OUTPUT_NAME, "datatype": "BYTES",
                        "shape": [len(order), top_k], "data": data})
    return outputs
