"""The browser pages: the upload form and its server-rendered result.

Works with JavaScript off: the form posts here and the result is rendered on the
server. Errors are shown on the same page, in words, with the form ready again. With
several models served, `?model=<name>` picks one (plain links, so no script is needed).
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

from flask import Blueprint, current_app, render_template, request, url_for

from app.protocols.rest.bodies import form_field, read_image_upload
from app.protocols.rest.context import call, dataplane, inference
from app.protocols.rest.errors import CLIENT_ERRORS, as_api_error
from app.protocols.rest.explanations import explanation_body
from app.protocols.rest.openapi import openapi_document
from app.protocols.rest.seed import prediction, upload_request
from app.runtime.model_card import Example
from app.runtime.overlay import COLOR_STOPS, OPACITY

bp = Blueprint("pages", __name__)


def _examples() -> list[Example]:
    """The model card's example images that exist in static/examples/."""
    card = inference().classifier.card
    folder = Path(current_app.static_folder or "") / "examples"
    return [example for example in (card.examples if card else ())
            if (folder / example.file).is_file()]


def _chosen() -> str | None:
    return request.args.get("model") or None


def _page(**context: object) -> str:
    service = inference(_chosen())
    chosen = _chosen()
    return render_template("index.html", model=service.classifier.describe(),
                           models=sorted(m.name for m in dataplane().served_models()),
                           action=url_for("pages.upload", model=chosen),
                           api=url_for("api.predict_label", name=chosen) if chosen
                           else url_for("api.predict_label"),
                           explain_api=url_for("explain.explain", name=chosen) if chosen
                           else url_for("explain.explain"),
                           legend=legend_gradient(), colors=json.dumps(COLOR_STOPS),
                           opacity=OPACITY,
                           auth=service.settings.AUTH == "keys",
                           max_bytes=service.settings.MAX_CONTENT_LENGTH,
                           max_pixels=service.settings.MAX_IMAGE_PIXELS,
                           examples=_examples(), **context)


def legend_gradient() -> str:
    """The heatmap colours as a CSS gradient, for the legend (the canvas reads them too)."""
    stops = ", ".join(f"rgb{color} {stop * 100:.0f}%" for stop, color in COLOR_STOPS)
    return f"linear-gradient(to right, {stops})"


@bp.get("/")
def index() -> str:
    """The upload form."""
    return _page()


@bp.post("/")
def upload() -> tuple[str, int]:
    """Plain form POST (no JavaScript): classify and render the result page."""
    started = time.perf_counter()
    explanation: dict[str, object] | None = None
    try:
        data = read_image_upload()
        wanted = upload_request(_chosen(), None, data)
        if form_field("explain"):
            answer, [explained], [overlay] = dataplane().explain(call(), wanted, None)
            explanation = explanation_body(explained, answer.labels, answer.probabilities[0],
                                           overlay)
        else:
            answer = dataplane().infer(call(), wanted)
    except CLIENT_ERRORS as raised:
        error = as_api_error(raised)
        return _page(error=error), error.status
    upload = answer.images[0]
    assert upload is not None
    preview = f"data:{upload.mimetype};base64,{base64.b64encode(data).decode()}"
    return _page(prediction=prediction(answer), preview=preview, explanation=explanation,
                 latency_ms=(time.perf_counter() - started) * 1000), 200


@bp.get("/docs")
def docs() -> str:
    """The API reference, rendered from /openapi.json (no external assets)."""
    return render_template("docs.html", spec=openapi_document(inference().classifier))
