"""Explanations (blueprint "explain"): what the model looked at, as JSON.

`POST /explain` takes the same multipart upload as `/predictlabel` (and
`/models/<name>[/versions/<v>]/explain` for any served model) and answers the
`/predictlabel` shape plus an "explanation" for the top label, or for `?label=<name>`.
TF Serving's `:explain` verb (KServe V1) answers the same content per instance
(app.protocols.rest.tfserving).
"""

from __future__ import annotations

import base64

import numpy as np
from flask import Blueprint, Response, jsonify, request

from app.protocols.rest.bodies import read_image_upload
from app.protocols.rest.context import call, dataplane
from app.protocols.rest.seed import label_response, prediction, upload_request
from app.runtime.explain import Explanation

bp = Blueprint("explain", __name__)
HEATMAP_DECIMALS = 3  # a 224 x 224 heatmap is then about 300 KB of JSON
MAX_EXPLAIN_ROWS = 8  # instances per :explain request: each is a forward and backward pass


def explanation_body(explanation: Explanation, labels: tuple[str, ...],
                     probabilities: np.ndarray, overlay: bytes | None) -> dict[str, object]:
    """One explanation as clients read it; `overlay` is None where no image was sent."""
    heatmap = explanation.heatmap
    return {
        "label": labels[explanation.index],
        "probability": float(probabilities[explanation.index]),
        "method": explanation.method,
        "layer": explanation.layer,
        "samples": explanation.samples,
        "height": int(heatmap.shape[0]),
        "width": int(heatmap.shape[1]),
        "heatmap": np.round(heatmap, HEATMAP_DECIMALS).tolist(),
        "overlay_png": None if overlay is None else base64.b64encode(overlay).decode(),
    }


def chosen_label() -> str | None:
    """`?label=<name>`: explain that label instead of the most probable one."""
    return request.args.get("label") or None


@bp.post("/explain")
@bp.post("/models/<name>/explain")
@bp.post("/models/<name>/versions/<version>/explain")
def explain(name: str | None = None, version: str | None = None) -> Response:
    """Multipart image upload -> the /predictlabel answer plus a heatmap and an overlay."""
    answer, [explained], [overlay] = dataplane().explain(
        call(), upload_request(name, version, read_image_upload()), chosen_label())
    return jsonify({**label_response(prediction(answer)), "explanation": explanation_body(
        explained, answer.labels, answer.probabilities[0], overlay)})
