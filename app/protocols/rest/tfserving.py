"""TensorFlow Serving's REST API, so TF Serving clients can talk to h5serve unchanged.

GET  /v1/models/<name>            status of each version (served, loading, refused)
GET  /v1/models/<name>/metadata   signature: input/output names, dtypes, shapes
POST /v1/models/<name>:predict    {"instances": [...]} (row) or {"inputs": ...} (columnar)
POST /v1/models/<name>:explain    KServe V1: the same body -> predictions and explanations

Each also as /v1/models/<name>/versions/<v>... and /v1/models/<name>/labels/<label>...
(the model card's "version_labels"); without either, the latest served version answers.
As in TF Serving, numeric values are the model's own input tensor (already scaled);
`{"b64": "..."}` values are encoded images, decoded and preprocessed like uploads.
Errors are `{"error": "..."}`.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

from app.protocols.rest import request_ids
from app.protocols.rest.bodies import read_json_body
from app.protocols.rest.context import call, dataplane
from app.protocols.rest.errors import answer_errors_as_protocol
from app.protocols.rest.explanations import MAX_EXPLAIN_ROWS, chosen_label, explanation_body
from app.protocols.rest.tensors import decode_b64, number_rows
from app.runtime.dataplane.batches import check_row_count, model_output
from app.runtime.dataplane.types import InferInput, InferRequest
from app.runtime.errors import UnknownModel, invalid_argument

bp = Blueprint("tfserving", __name__, url_prefix="/v1/models")
answer_errors_as_protocol(bp)


@bp.errorhandler(UnknownModel)
def _servable_not_found(error: UnknownModel) -> tuple[Response, int]:
    """TF Serving's own words first, which its clients' logs and scripts look for."""
    return jsonify({"error": f"Servable not found for request: {error.message}",
                    "request_id": request_ids.current()}), 404


def _dims(shape: tuple[int | None, ...]) -> dict[str, object]:
    return {"dim": [{"size": str(-1 if d is None else d), "name": ""} for d in shape],
            "unknown_rank": False}


def _routes(method: str, suffix: str) -> Any:
    """The route for the latest version, a numbered one and a labelled one."""
    def register(view: Any) -> Any:
        for prefix in ("/<name>", "/<name>/versions/<version>", "/<name>/labels/<label>"):
            bp.route(prefix + suffix, methods=[method])(view)
        return view
    return register


@_routes("GET", "")
def status(name: str, version: str | None = None, label: str | None = None) -> Response:
    """Every version TF Serving would list: AVAILABLE, LOADING, UNLOADING, END (+ error)."""
    states = dataplane().version_states(call(), name, version, label)
    return jsonify({"model_version_status": [{
        "version": str(v), "state": st.state,
        "status": {"error_code": "UNKNOWN" if st.error else "OK", "error_message": st.error}}
        for v, st in sorted(states.items(), reverse=True)]})


@_routes("GET", "/metadata")
def metadata(name: str, version: str | None = None, label: str | None = None) -> Response:
    model = dataplane().model_metadata(call(), name, version, label)
    [tensor] = model.inputs
    outputs = 1 if model.binary else model.outputs[0].shape[1]
    signature = {
        "inputs": {tensor.name: {"dtype": "DT_FLOAT", "name": f"serving_default_{tensor.name}:0",
                                 "tensor_shape": _dims((None, *tensor.shape[1:]))}},
        "outputs": {model.outputs[0].name: {"dtype": "DT_FLOAT",
                                            "name": "StatefulPartitionedCall:0",
                                            "tensor_shape": _dims((None, outputs))}},
        "method_name": "tensorflow/serving/predict",
    }
    return jsonify({"model_spec": {"name": name, "signature_name": "",
                                   "version": str(model.version)},
                    "metadata": {"signature_def": {"signature_def": {
                        "serving_default": signature}}}})


@_routes("POST", ":predict")
def predict(name: str, version: str | None = None, label: str | None = None) -> Response:
    model = dataplane().model_metadata(call(), name, version, label)
    inputs, columnar = _request_inputs(model.inputs[0].name)
    answer = dataplane().infer(call(), InferRequest(name, version, label, inputs))
    outputs = model_output(answer.probabilities, model.binary)
    return jsonify({"outputs": outputs.tolist()} if columnar
                   else {"predictions": outputs.tolist()})


@_routes("POST", ":explain")
def explain(name: str, version: str | None = None, label: str | None = None) -> Response:
    """KServe V1's verb: the :predict answer plus one explanation per instance."""
    model = dataplane().model_metadata(call(), name, version, label)
    inputs, columnar = _request_inputs(model.inputs[0].name, MAX_EXPLAIN_ROWS)
    answer, explained, overlays = dataplane().explain(
        call(), InferRequest(name, version, label, inputs), chosen_label())
    outputs = model_output(answer.probabilities, model.binary)
    return jsonify({"outputs" if columnar else "predictions": outputs.tolist(),
                    "explanations": [explanation_body(e, answer.labels, p, overlay)
                                     for e, p, overlay in zip(explained, answer.probabilities,
                                                              overlays, strict=True)]})


def _request_inputs(input_name: str, max_rows: int | None = None
                    ) -> tuple[tuple[InferInput, ...], bool]:
    """The :predict body as input blocks (runs of number rows and of image rows, in
    order), and whether it was columnar."""
    body = read_json_body(strict_content_type=False)
    if not isinstance(body, dict) or ("instances" in body) == ("inputs" in body):
        raise invalid_argument('Request body must be an object with either "instances" (row '
                               'format) or "inputs" (columnar format)')
    columnar = "inputs" in body
    values = body["inputs"] if columnar else body["instances"]
    what = "inputs" if columnar else "instances"
    if columnar and isinstance(values, dict):
        values = _named(values, input_name, what)
    if max_rows is not None and isinstance(values, list):
        check_row_count(len(values), max_rows, what)
    if not isinstance(values, list) or not values:
        raise invalid_argument(f"{what} must be a non-empty list")
    rows = [_named(v, input_name, what) if isinstance(v, dict) else v for v in values]
    blocks: list[InferInput] = []
    start = 0
    for end in range(1, len(rows) + 1):  # each run of rows of one kind is a block
        if end < len(rows) and isinstance(rows[end], dict) == isinstance(rows[start], dict):
            continue
        run = rows[start:end]
        if isinstance(run[0], dict):
            files = [decode_b64(row["b64"], f"{what}[{start + i}].b64")
                     for i, row in enumerate(run)]
            blocks.append(InferInput("BYTES", (len(files),), files, source=what))
        else:
            array = number_rows(run, what)
            blocks.append(InferInput("FP32", array.shape, array, source=what))
        start = end
    return tuple(blocks), columnar


def _named(value: dict[str, Any], input_name: str, what: str) -> Any:
    """The one named input of a single-input model ({"<input name>": value})."""
    if set(value) != {input_name} and "b64" not in value:
        raise invalid_argument(f"{what}: this model has one input, named {input_name!r}; "
                               f"got {sorted(value)}")
    return value if "b64" in value else value[input_name]
