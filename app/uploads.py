"""Reading the request: uploads kept in memory, one image field, JSON parsed safely.

Werkzeug spools uploads over 500 kB to temporary files; a serving process should not
write client data to disk, and MAX_CONTENT_LENGTH already bounds the memory, so
`InMemoryRequest` keeps every part in a BytesIO.
"""

from __future__ import annotations

import io
import json
from typing import IO, Any

from flask import Request, request

from app.errors import ApiError

IMAGE_FIELDS = ("image", "file")


class InMemoryRequest(Request):
    """A Flask request whose multipart file parts never touch the disk."""

    def _get_file_stream(self, total_content_length: int | None, content_type: str | None,
                         filename: str | None = None,
                         content_length: int | None = None) -> IO[bytes]:
        return io.BytesIO()


def read_image_upload() -> bytes:
    """The bytes of the single image in a multipart request (field `image` or `file`)."""
    if request.mimetype != "multipart/form-data":
        raise ApiError(415, "unsupported_media_type",
                       "Send the image as multipart/form-data, e.g. "
                       "curl -F image=@digit.png .../predictlabel "
                       f"(got {request.mimetype or 'no content type'}).")
    files = [f for name in IMAGE_FIELDS for f in request.files.getlist(name)]
    if not files:
        raise ApiError(400, "missing_file",
                       "No image in the request: send it in the multipart field 'image'.")
    if len(files) > 1:
        raise ApiError(400, "too_many_files",
                       "Send exactly one image per request (field 'image').")
    # InMemoryRequest made the part a BytesIO: getvalue() hands over its buffer, where
    # read() would copy it (a 4 MB upload: one more 4 MB allocation and copy).
    return files[0].stream.getvalue()


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
    """Bytes -> JSON value; any malformed input (bad UTF-8, too deep, ...) is a 400."""
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:
        detail = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise ApiError(400, "invalid_json", f"The body is not valid JSON: {detail}.") from None
