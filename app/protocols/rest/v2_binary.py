"""Triton's binary tensor data extension of the V2 HTTP API, both ways.

Request: with `Inference-Header-Content-Length: N`, the first N bytes of the body are the
JSON inference request and the rest the inputs' raw bytes, in input order; an input sent
so says how many in `"parameters": {"binary_data_size": k}`. FP32 and UINT8 values are
little-endian and row-major; a BYTES element is a 4-byte little-endian length and that
many bytes (here: an encoded image file itself, not base64; app.protocols.v2_codec).

Response: an output goes binary when it asks (`"parameters": {"binary_data": true}`) or,
when it does not say, when the request does (`"parameters": {"binary_data_output":
true}`, tritonclient's default). Its JSON then carries `binary_data_size` instead of
`data`, its bytes follow the JSON, and `Inference-Header-Content-Length` says where the
JSON ends. Sizes that disagree with shapes are 400s naming the tensor, never a 500.
"""

from __future__ import annotations

from typing import Any

import orjson
from flask import Response

from app.runtime.errors import invalid_argument

HEADER = "Inference-Header-Content-Length"


class BinaryData:
    """The bytes after the JSON header, handed out to the inputs in order."""

    def __init__(self, data: bytes, start: int) -> None:
        self._data = data
        self._at = start

    def take(self, size: Any, what: str) -> bytes:
        """The next `size` bytes for input `what`."""
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise invalid_argument(f"{what}: binary_data_size must be a non-negative integer")
        if size > len(self._data) - self._at:
            raise invalid_argument(f"{what}: binary_data_size is {size} bytes but only "
                                   f"{len(self._data) - self._at} bytes of binary data are left")
        chunk = self._data[self._at:self._at + size]
        self._at += size
        return chunk

    def finish(self) -> None:
        """Every byte must belong to an input: leftovers mean sizes the client got wrong."""
        if self._at != len(self._data):
            raise invalid_argument(f"{len(self._data) - self._at} bytes of binary data belong to "
                                   "no input (check each input's binary_data_size)")


def split_body(body: bytes, header_length: str) -> tuple[bytes, BinaryData]:
    """The JSON header and the binary rest of a request body."""
    if not header_length.isdigit() or not 0 < int(header_length) <= len(body):
        raise invalid_argument(f"{HEADER} must be the JSON header's size in bytes, from 1 to the "
                               f"body's {len(body)}; got {header_length[:40]!r}")
    size = int(header_length)
    return body[:size], BinaryData(body, size)


def wants_binary(request_parameters: dict[str, Any], output_parameters: dict[str, Any]
                 ) -> bool:
    """The output's own `binary_data`, else the request's `binary_data_output`."""
    own = output_parameters.get("binary_data")
    chosen = request_parameters.get("binary_data_output", False) if own is None else own
    if not isinstance(chosen, bool):
        raise invalid_argument("binary_data and binary_data_output must be true or false")
    return chosen


def binary_response(document: dict[str, Any], buffers: list[bytes]) -> Response:
    """The JSON header, then the outputs' bytes; the header's size in its own header."""
    header = orjson.dumps(document)
    response = Response(header + b"".join(buffers), content_type="application/octet-stream")
    response.headers[HEADER] = str(len(header))
    return response
