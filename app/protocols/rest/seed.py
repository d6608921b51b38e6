"""The seed JSON API (blueprint "api"): predictions, health and model description.

`/predictlabel` answers in the deeplearning_flask shape that curl users already parse;
`/predict` takes raw pixel rows. Both serve the default model; `/models/<name>/...` (and
`/models/<name>/versions/<v>/...`) any served one, in the same shapes. Routes stay thin:
read the request, ask the data plane, shape the response.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from app.metrics import exposition
from app.protocols.rest.bodies import read_image_upload, read_json_body
from app.protocols.rest.context import call, dataplane, drift, inference
from app.protocols.rest.errors import ApiError
from app.protocols.rest.openapi import openapi_document
from app.protocols.rest.rows import parse_pixel_rows
from app.runtime.dataplane.types import InferInput, InferRequest, InferResponse
from app.runtime.errors import NotReady
from app.runtime.inference import Prediction

bp = Blueprint("api", __name__)


def upload_request(name: str | None, version: str | None, data: bytes) -> InferRequest:
    """One uploaded image file, for the model version a URL names."""
    return InferRequest(name, version, inputs=(InferInput("BYTES", (1,), [data]),))


def prediction(answer: InferResponse, row: int = 0) -> Prediction:
    return Prediction(answer.labels, answer.probabilities[row])


def label_response(prediction: Prediction) -> dict[str, object]:
    """The deeplearning_flask response shape: top label, then every class in label order."""
    return {
        "success": True,
        "most_probable_label": prediction.top_label,
        "predictions": [{"label": label, "probability": p}  # tolist: floats in one call
                        for label, p in zip(prediction.labels,
                                            prediction.probabilities.tolist(), strict=True)],
    }


@bp.post("/predictlabel")
@bp.post("/models/<name>/predictlabel")
@bp.post("/models/<name>/versions/<version>/predictlabel")
def predict_label(name: str | None = None, version: str | None = None) -> Response:
    """Multipart image upload -> most probable label and every class probability."""
    answer = dataplane().infer(call(), upload_request(name, version, read_image_upload()))
    return jsonify(label_response(prediction(answer)))


@bp.post("/predict")
@bp.post("/models/<name>/predict")
@bp.post("/models/<name>/versions/<version>/predict")
def predict_rows(name: str | None = None, version: str | None = None) -> Response:
    """`{"input": [row, ...]}` raw 0-255 pixel rows -> one probability list per row."""
    body = read_json_body()
    if not isinstance(body, dict) or "input" not in body:
        raise ApiError(400, "missing_field",
                       'The JSON body must be an object with an "input" list of pixel rows.')
    service = inference(name, version)
    pixels = parse_pixel_rows(body["input"], service.spec, service.settings.MAX_PREDICT_ROWS)
    answer = dataplane().infer(call(), InferRequest(
        name, version, inputs=(InferInput("PIXELS", pixels.shape, pixels, source='"input"'),)))
    return jsonify(answer.probabilities.tolist())


@bp.get("/healthz")
def healthz() -> Response:
    """Liveness: the process answers."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> Response:
    """Readiness: every served version is loaded, warmed up and its batcher running."""
    if not dataplane().ready():
        raise NotReady("The model is not ready to serve.")
    return jsonify({"status": "ready", "model": dataplane().default_model(),
                    "models": {m.name: list(m.versions) for m in dataplane().served_models()}})


@bp.get("/model")
@bp.get("/models/<name>")
@bp.get("/models/<name>/versions/<version>")
def model_info(name: str | None = None, version: str | None = None) -> Response:
    """Name, version, input spec, labels, preprocessing and library versions; for a
    model on a roll-out, its state and evidence too; with DRIFT_REFERENCE, its drift."""
    service = inference(name, version)
    description = service.classifier.describe()
    rollout = dataplane().rollout_status(description["name"])
    if (monitor := drift()) is not None:
        description["drift"] = monitor.figures(service.name, service.version,
                                               service.drift_reference)
    return jsonify({**description, "rollout": rollout} if rollout else description)


@bp.get("/models/<name>/drift_reference")
@bp.get("/models/<name>/versions/<version>/drift_reference")
def drift_reference(name: str, version: str | None = None) -> Response:
    """The version's drift reference in this worker, as the file that, shipped beside the
    model, makes it the reference from the first request on (app.runtime.drift_reference)."""
    service = inference(name, version)
    if (monitor := drift()) is None:
        raise ApiError(404, "drift_off", "Drift is off on this server (DRIFT_REFERENCE=0).")
    reference = monitor.reference(service.name, service.version) or service.drift_reference
    if reference is None:
        figures = monitor.figures(service.name, service.version, None)
        raise NotReady(f"The drift reference of {service.name} version {service.version} is "
                       f"not complete yet: {figures['reference_rows']} of "
                       f"{figures['reference_size']} rows.", retry_after_s=60)
    return jsonify(reference.to_json(service.labels))


@bp.get("/models")
def models() -> Response:
    """Every served model: its versions, version labels, and which one the seed routes use."""
    return jsonify({"default": dataplane().default_model(), "models": [
        {"name": m.name, "versions": list(m.versions), "version_labels": m.labels,
         "latest": max(m.versions)} for m in dataplane().served_models()]})


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus metrics of every worker (nginx keeps this off the internet)."""
    body, content_type = exposition()
    return Response(body, content_type=content_type)


@bp.get("/openapi.json")
def openapi() -> Response:
    """The OpenAPI 3 document of every JSON endpoint (readable at /docs)."""
    return jsonify(openapi_document(inference().classifier))
