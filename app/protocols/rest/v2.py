"""The Open Inference Protocol (KServe V2) REST API, JSON or binary tensors.

GET  /v2                              server metadata
GET  /v2/health/live, /v2/health/ready
GET  /v2/models/<name>[/versions/<v>]   model metadata
GET  /v2/models/<name>[/versions/<v>]/ready
POST /v2/models/<name>[/versions/<v>]/infer

The tensors: app.protocols.rest.v2_tensors; Triton's binary tensor data extension, both
ways: app.protocols.rest.v2_binary. Errors are `{"error": "..."}`.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from app.protocols.rest.bodies import parse_json
from app.protocols.rest.context import call, dataplane
from app.protocols.rest.errors import answer_errors_as_protocol
from app.protocols.rest.v2_binary import HEADER, BinaryData, binary_response, split_body
from app.protocols.rest.v2_tensors import infer_input, output_json, requested_outputs
from app.runtime.dataplane.types import InferRequest
from app.runtime.errors import invalid_argument

bp = Blueprint("v2", __name__, url_prefix="/v2")
answer_errors_as_protocol(bp)


def _health(**state: object) -> tuple[Response, int]:
    """KServe's health bodies ({"live": true}, {"ready": false}, ...): its own client reads
    them; Triton's reads the status alone. 503 when not ready."""
    return jsonify(state), 200 if all(v for v in state.values() if isinstance(v, bool)) \
        else 503


@bp.get("")
def server_metadata() -> Response:
    server = dataplane().server_metadata()
    return jsonify({"name": server.name, "version": server.version,
                    "extensions": list(server.extensions)})


@bp.get("/health/live")
def live() -> tuple[Response, int]:
    return _health(live=True)


@bp.get("/health/ready")
def ready() -> tuple[Response, int]:
    return _health(ready=dataplane().ready())


@bp.get("/models/<name>")
@bp.get("/models/<name>/versions/<version>")
def model_metadata(name: str, version: str | None = None) -> Response:
    model = dataplane().model_metadata(call(), name, version)
    return jsonify({
        "name": name, "versions": [str(v) for v in model.versions], "platform": model.platform,
        "inputs": [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)}
                   for t in model.inputs],
        "outputs": [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)}
                    for t in model.outputs],
    })


@bp.get("/models/<name>/ready")
@bp.get("/models/<name>/versions/<version>/ready")
def model_ready(name: str, version: str | None = None) -> tuple[Response, int]:
    return _health(name=name, ready=dataplane().model_ready(call(), name, version))


@bp.post("/models/<name>/infer")
@bp.post("/models/<name>/versions/<version>/infer")
def infer(name: str, version: str | None = None) -> Response:
    """JSON tensors, or binary ones (app.protocols.rest.v2_binary) both ways."""
    input_name = dataplane().model_metadata(call(), name, version).inputs[0].name
    body, binary = _request_body()
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
        raise invalid_argument('The body must be an object with an "inputs" list')
    if len(body["inputs"]) != 1 or not isinstance(body["inputs"][0], dict):
        raise invalid_argument(f"expected exactly one input tensor, named {input_name!r}")
    tensor = body["inputs"][0]
    if not isinstance(tensor.get("name"), str):
        raise invalid_argument(f"unexpected input {tensor.get('name')!r}: this model's input "
                               f"is {input_name!r}")
    inputs = (infer_input(tensor, binary, dataplane().max_rows),)
    if binary is not None:
        binary.finish()
    answer = dataplane().infer(call(), InferRequest(name, version, inputs=inputs,
                                                    outputs=requested_outputs(body)))
    outputs, buffers = output_json(body, answer.outputs)
    response: dict[str, Any] = {"model_name": name, "model_version": str(answer.model_version),
                                "outputs": outputs}
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
