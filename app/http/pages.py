"""The browser pages: the upload form and its server-rendered result.

Works with JavaScript off: the form posts here and the result is rendered on the
server. Errors are shown on the same page, in words, with the form ready again. With
several models served, `?model=<name>` picks one (plain links, so no script is needed).
"""

from __future__ import annotations

import base64
import time
from pathlib import Path

from flask import Blueprint, current_app, render_template, request, url_for

from app.protocols.bodies import read_image_upload
from app.protocols.context import inference, repository
from app.protocols.errors import CLIENT_ERRORS, as_api_error
from app.protocols.openapi import openapi_document
from app.runtime.imaging import sniff_mimetype
from app.runtime.model_card import Example

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
                           models=sorted(repository().table),
                           action=url_for("pages.upload", model=chosen),
                           api=url_for("api.predict_label", name=chosen) if chosen
                           else url_for("api.predict_label"),
                           auth=service.settings.AUTH == "keys",
                           max_bytes=service.settings.MAX_CONTENT_LENGTH,
                           max_pixels=service.settings.MAX_IMAGE_PIXELS,
                           examples=_examples(), **context)


@bp.get("/")
def index() -> str:
    """The upload form."""
    return _page()


@bp.post("/")
def upload() -> tuple[str, int]:
    """Plain form POST (no JavaScript): classify and render the result page."""
    started = time.perf_counter()
    try:
        data = read_image_upload()
        prediction = inference(_chosen()).classify_image(data)
    except CLIENT_ERRORS as raised:
        error = as_api_error(raised)
        return _page(error=error), error.status
    preview = f"data:{sniff_mimetype(data)};base64,{base64.b64encode(data).decode()}"
    return _page(prediction=prediction, preview=preview,
                 latency_ms=(time.perf_counter() - started) * 1000), 200


@bp.get("/docs")
def docs() -> str:
    """The API reference, rendered from /openapi.json (no external assets)."""
    return render_template("docs.html", spec=openapi_document(inference().classifier))
