"""The Open Inference Protocol (KServe V2) REST API, JSON or binary tensors.

GET  /v2                              server metadata
GET  /v2/health/live, /v2/health/ready
GET  /v2/models/<name>[/versions/<v>]   model metadata
GET  /v2/models/<name>[/versions/<v>]/ready
POST /v2/models/<name>[/versions/<v>]/infer

The tensors: app.protocols.v2_tensors; Triton's binary tensor data extension, both
ways: app.protocols.v2_binary. Errors are `{"error": "..."}`.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from app.config import VERSION as SERVER_VERSION
from app.protocols.bodies import parse_json
from app.protocols.context import inference, repository
from app.protocols.errors import answer_errors_as_protocol, invalid_argument
from app.protocols.tensors import OUTPUT_NAME
from app.protocols.v2_binary import HEADER, BinaryData, binary_response, split_body
from app.protocols.v2_tensors import input_batch, outputs

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
                    "extensions": ["classification", "model_repository",
                                   "binary_tensor_data"]})


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
    """JSON tensors, or binary ones (app.protocols.v2_binary) both ways."""
    service = inference(name, version)
    body, binary = _request_body()
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
        raise invalid_argument('The body must be an object with an "inputs" list')
    if len(body["inputs"]) != 1 or not isinstance(body["inputs"][0], dict):
        raise invalid_argument(f"expected exactly one input tensor, named "
                               f"{service.classifier.input_name!r}")
    batch = input_batch(service, body["inputs"][0], binary)
    if binary is not None:
        binary.finish()
    answers, buffers = outputs(service.labels, body, service.classify_model_input(batch))
    response: dict[str, Any] = {"model_name": name, "model_version": str(service.version),
                                "outputs": answers}
    if "id" in body:
        response["id"] = body["id"]
    return binary_response(response, buffers) if buffers else jsonify(response)


def _request_body() -> tuple[Any, BinaryData | None]:
    """The JSON inference request, and the binary data after it if the client sent some.
    Read whatever the content type: tritonclient sends none."""
    data = request.get_data(cache=False)
    header_length = request.headers.get(HEADER)
    if header_length is None:
        return parse_json(data), None
    header, binary = split_body(data, header_length)
    return parse_json(header), binary
