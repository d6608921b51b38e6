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

import numpy as np
from flask import Blueprint, Response, jsonify

from app.protocols import request_ids
from app.protocols.bodies import read_json_body
from app.protocols.context import inference, repository
from app.protocols.errors import answer_errors_as_protocol, invalid_argument
from app.protocols.explanations import MAX_EXPLAIN_ROWS, chosen_label, explanation_body
from app.protocols.rows import check_row_count
from app.protocols.tensors import (
    OUTPUT_NAME,
    decode_b64,
    encoded_images,
    numeric_rows,
    raw_outputs,
)
from app.runtime.errors import UnknownModel

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
    states = {v: st for (n, v), st in repository().states.items() if n == name}
    if label is not None or version is not None:
        wanted = inference(name, version, label).version
        states = {v: st for v, st in states.items() if v == wanted}
    if not states:
        raise UnknownModel(f"unknown model {name!r}")
    return jsonify({"model_version_status": [{
        "version": str(v), "state": st.state,
        "status": {"error_code": "UNKNOWN" if st.error else "OK", "error_message": st.error}}
        for v, st in sorted(states.items(), reverse=True)]})


@_routes("GET", "/metadata")
def metadata(name: str, version: str | None = None, label: str | None = None) -> Response:
    service = inference(name, version, label)
    input_name = service.classifier.input_name
    outputs = 1 if service.classifier.output_spec.binary else len(service.labels)  # type: ignore[union-attr]
    signature = {
        "inputs": {input_name: {"dtype": "DT_FLOAT", "name": f"serving_default_{input_name}:0",
                                "tensor_shape": _dims((None, *service.spec.model_shape))}},
        "outputs": {OUTPUT_NAME: {"dtype": "DT_FLOAT", "name": "StatefulPartitionedCall:0",
                                  "tensor_shape": _dims((None, outputs))}},
        "method_name": "tensorflow/serving/predict",
    }
    return jsonify({"model_spec": {"name": name, "signature_name": "",
                                   "version": str(service.version)},
                    "metadata": {"signature_def": {"signature_def": {
                        "serving_default": signature}}}})


@_routes("POST", ":predict")
def predict(name: str, version: str | None = None, label: str | None = None) -> Response:
    service = inference(name, version, label)
    batch, columnar, _ = _request_batch()
    outputs = raw_outputs(service.classify_model_input(batch),
                          service.classifier.output_spec.binary)  # type: ignore[union-attr]
    return jsonify({"outputs": outputs.tolist()} if columnar
                   else {"predictions": outputs.tolist()})


@_routes("POST", ":explain")
def explain(name: str, version: str | None = None, label: str | None = None) -> Response:
    """KServe V1's verb: the :predict answer plus one explanation per instance."""
    service = inference(name, version, label)
    batch, columnar, images = _request_batch(MAX_EXPLAIN_ROWS)
    probabilities = service.classify_model_input(batch)
    explained = service.explain_model_input(batch, probabilities,
                                            [chosen_label()] * len(batch))
    overlays = {i: service.overlay(data, explained[i].heatmap) for i, data in images.items()}
    outputs = raw_outputs(probabilities, service.classifier.output_spec.binary)  # type: ignore[union-attr]
    return jsonify({"outputs" if columnar else "predictions": outputs.tolist(),
                    "explanations": [explanation_body(e, service.labels, p, overlays.get(i))
                                     for i, (e, p) in enumerate(zip(explained, probabilities,
                                                                    strict=True))]})


def _request_batch(max_rows: int | None = None) -> tuple[np.ndarray, bool, dict[int, bytes]]:
    """The :predict body as a model-input batch, whether it was columnar, and the
    encoded images it held by row."""
    body = read_json_body(strict_content_type=False)
    if not isinstance(body, dict) or ("instances" in body) == ("inputs" in body):
        raise invalid_argument('Request body must be an object with either "instances" (row '
                               'format) or "inputs" (columnar format)')
    columnar = "inputs" in body
    values = body["inputs"] if columnar else body["instances"]
    if columnar and isinstance(values, dict):
        values = _named(values, "inputs")
    what = "inputs" if columnar else "instances"
    if max_rows is not None and isinstance(values, list):
        check_row_count(len(values), max_rows, what)
    images: dict[int, bytes] = {}
    return _batch(values, what, images), columnar, images


def _named(value: dict[str, Any], what: str) -> Any:
    """The one named input of a single-input model ({"<input name>": value})."""
    input_name = inference().classifier.input_name
    if set(value) != {input_name} and "b64" not in value:
        raise invalid_argument(f"{what}: this model has one input, named {input_name!r}; "
                               f"got {sorted(value)}")
    return value if "b64" in value else value[input_name]


def _batch(values: Any, what: str, images_out: dict[int, bytes]) -> np.ndarray:
    """Rows (numbers and/or {"b64": ...} images) -> float32 batch in the model's shape;
    the decoded image files go to images_out by row."""
    service = inference()
    if not isinstance(values, list) or not values:
        raise invalid_argument(f"{what} must be a non-empty list")
    check_row_count(len(values), service.settings.MAX_PREDICT_ROWS, what)
    rows = [_named(v, what) if isinstance(v, dict) else v for v in values]
    images = [i for i, row in enumerate(rows) if isinstance(row, dict)]
    if not images:
        return numeric_rows(rows, service, what)
    batch = np.empty((len(rows), *service.spec.model_shape), np.float32)
    images_out.update({i: decode_b64(rows[i]["b64"], f"{what}[{i}].b64") for i in images})
    batch[images] = encoded_images(list(images_out.values()), service)
    image_rows = set(images)
    numeric = [i for i in range(len(rows)) if i not in image_rows]
    if numeric:
        batch[numeric] = numeric_rows([rows[i] for i in numeric], service, what)
    return batch
