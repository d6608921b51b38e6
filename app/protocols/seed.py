"""The seed JSON API (blueprint "api"): predictions, health and model description.

`/predictlabel` answers in the deeplearning_flask shape that curl users already parse;
`/predict` takes raw pixel rows. Routes stay thin: read the request, call the
inference service, shape the response.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from app.metrics import exposition
from app.protocols.bodies import read_image_upload, read_json_body
from app.protocols.context import inference
from app.protocols.errors import ApiError
from app.protocols.openapi import openapi_document
from app.protocols.rows import parse_pixel_rows
from app.runtime.inference import Prediction

bp = Blueprint("api", __name__)


def label_response(prediction: Prediction) -> dict[str, object]:
    """The deeplearning_flask response shape: top label, then every class in label order."""
    return {
        "success": True,
        "most_probable_label": prediction.top_label,
        "predictions": [{"label": label, "probability": float(p)}
                        for label, p in zip(prediction.labels, prediction.probabilities,
                                            strict=True)],
    }


@bp.post("/predictlabel")
def predict_label() -> Response:
    """Multipart image upload -> most probable label and every class probability."""
    prediction = inference().classify_image(read_image_upload())
    return jsonify(label_response(prediction))


@bp.post("/predict")
def predict_rows() -> Response:
    """`{"input": [row, ...]}` raw 0-255 pixel rows -> one probability list per row."""
    body = read_json_body()
    if not isinstance(body, dict) or "input" not in body:
        raise ApiError(400, "missing_field",
                       'The JSON body must be an object with an "input" list of pixel rows.')
    service = inference()
    pixels = parse_pixel_rows(body["input"], service.spec, service.settings.MAX_PREDICT_ROWS)
    return jsonify(service.classify_pixels(pixels).tolist())


@bp.get("/healthz")
def healthz() -> Response:
    """Liveness: the process answers."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> Response:
    """Readiness: the model is loaded, warmed up and its batcher is running."""
    if not inference().ready:
        raise ApiError(503, "not_ready", "The model is not ready to serve.",
                       headers={"Retry-After": "5"})
    return jsonify({"status": "ready", "model": inference().classifier.name})


@bp.get("/model")
def model_info() -> Response:
    """Name, input spec, labels, preprocessing and library versions."""
    return jsonify(inference().classifier.describe())


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus metrics of every worker (nginx keeps this off the internet)."""
    body, content_type = exposition()
    return Response(body, content_type=content_type)


@bp.get("/openapi.json")
def openapi() -> Response:
    """The OpenAPI 3 document of every JSON endpoint (readable at /docs)."""
    return jsonify(openapi_document(inference().classifier))
