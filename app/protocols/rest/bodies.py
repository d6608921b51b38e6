"""Reading request bodies: the one image of a multipart upload, JSON parsed safely.

Shared by every protocol's routes and the upload page. The body is read into memory
once (MAX_CONTENT_LENGTH bounds it) and its parts split there (app.protocols.rest.multipart):
nothing a client sends is written to disk.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from flask import g, request

from app.protocols.rest.errors import ApiError
from app.protocols.rest.multipart import Part, parse_multipart

IMAGE_FIELDS = ("image", "file")


def read_image_upload() -> bytes:
    """The bytes of the single image in a multipart request (field `image` or `file`)."""
    if request.mimetype != "multipart/form-data":
        raise ApiError(415, "unsupported_media_type",
                       "Send the image as multipart/form-data, e.g. "
                       "curl -F image=@photo.png .../predictlabel "
                       f"(got {request.mimetype or 'no content type'}).")
    files = [part for part in form_parts() if part.filename is not None
             and part.name in IMAGE_FIELDS]
    if not files:
        raise ApiError(400, "missing_file",
                       "No image in the request: send it in the multipart field 'image'.")
    if len(files) > 1:
        raise ApiError(400, "too_many_files",
                       "Send exactly one image per request (field 'image').")
    return files[0].content


def form_field(name: str) -> str:
    """A text field of the multipart form ("" when absent), e.g. the page's `explain`."""
    found = [part for part in form_parts() if part.filename is None and part.name == name]
    return found[0].content.decode("utf-8", "replace") if found else ""


def form_parts() -> list[Part]:
    """The request's multipart parts, parsed once (app.protocols.rest.multipart)."""
    if "h5serve_parts" not in g:
        boundary = request.mimetype_params.get("boundary", "")
        is_form = request.mimetype == "multipart/form-data" and boundary
        g.h5serve_parts = parse_multipart(request.get_data(), boundary) if is_form else []
    return g.h5serve_parts


def read_json_body(strict_content_type: bool = True) -> Any:
    """The request's JSON document; 415 for another content type, 400 if malformed.

    The TF Serving and V2 protocols read the body as JSON whatever the content type
    (their clients, tritonclient among them, often send none): strict_content_type=False.
    """
    if strict_content_type and not request.is_json:
        raise ApiError(415, "unsupported_media_type",
                       "Send JSON with Content-Type: application/json "
                       f"(got {request.mimetype or 'no content type'}).")
    return parse_json(request.get_data(cache=False))


def parse_json(data: bytes) -> Any:
    """Bytes -> JSON value; any malformed input (bad UTF-8, too deep, ...) is a 400.

    orjson first (8x faster on a V2 tensor); what it refuses goes to the json module,
    whose answers the protocols were built on: NaN, Infinity and huge numbers parse
    (and are refused as values later, 422), and its error messages name the position.
    """
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:
        detail = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise ApiError(400, "invalid_json", f"The body is not valid JSON: {detail}.") from None
