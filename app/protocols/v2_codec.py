"""Open Inference Protocol tensors, for both of its doors (REST and gRPC): the wire's
tensors as data-plane inputs, and outputs as bytes.

An input is FP32 (the model's own input, already scaled) or UINT8 (raw 0-255 pixels,
scaled like uploads) in the model's shape, or BYTES of shape [N] (or [N, 1]) holding
encoded image files. Its values come as numbers (JSON `data`, gRPC's typed contents), as
raw little-endian bytes (binary data, `raw_input_contents`), or, for BYTES, as files. A
raw BYTES element is a 4-byte little-endian length and that many bytes. Sizes that
disagree with shapes are errors naming the tensor.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from app.runtime.dataplane.batches import check_row_count
from app.runtime.dataplane.types import InferInput, OutputTensor
from app.runtime.errors import invalid_argument

DTYPES = {"FP32": np.dtype("<f4"), "UINT8": np.dtype(np.uint8)}


def check_shape(name: str, shape: Any, max_rows: int) -> tuple[int, ...]:
    """A tensor's shape: a non-empty list of non-negative sizes, at most `max_rows` rows
    (checked before its values are read)."""
    if not isinstance(shape, list | tuple) or not shape \
            or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise invalid_argument("input shape must be a list of sizes")
    check_row_count(shape[0], max_rows, f"input {name!r}")
    return tuple(shape)


def check_parameters(name: str, parameters: dict[str, Any], has_binary: bool) -> None:
    """No shared memory; binary_data_size only where binary data came with the request."""
    if "shared_memory_region" in parameters:
        raise invalid_argument("the shared-memory extensions are not supported: send the tensor "
                               "as JSON or binary data")
    if parameters.get("binary_data_size") is not None and not has_binary:
        raise invalid_argument(f"input {name!r} has binary_data_size but the request has no "
                               "binary data (no Inference-Header-Content-Length header)")


def from_raw(name: str, datatype: str, shape: tuple[int, ...], raw: bytes) -> InferInput:
    """A tensor sent as raw bytes."""
    if datatype == "BYTES":
        return InferInput("BYTES", shape, unpack_bytes(raw, bytes_count(shape),
                                                       f"input {name!r}"), name)
    dtype = _dtype(datatype)
    count = math.prod(shape)
    if len(raw) != count * dtype.itemsize:
        raise invalid_argument(f"input {name!r}: {len(raw)} bytes of binary data, but shape "
                               f"{list(shape)} of {datatype} needs {count * dtype.itemsize}")
    values = np.frombuffer(raw, dtype).astype(np.float64).reshape(shape)
    return InferInput(datatype, shape, values, name)


def from_numbers(name: str, datatype: str, shape: tuple[int, ...], data: Any) -> InferInput:
    """A numeric tensor sent as numbers (flat or nested lists), straight into numpy (no
    Python object array on the way)."""
    _dtype(datatype)
    count = math.prod(shape)
    try:
        values = np.asarray(data, dtype=np.float64).ravel()
    except (TypeError, ValueError, OverflowError):
        values = np.asarray(data, dtype=object).ravel()  # ragged, or not numbers: say which
        if len(values) == count:
            raise invalid_argument("input data must be numbers") from None
    if len(values) != count:
        raise invalid_argument(f"input has {len(values)} values but shape {list(shape)} "
                               f"needs {count}")
    return InferInput(datatype, shape, values.reshape(shape), name)


def from_files(name: str, shape: tuple[int, ...], items: Sequence[Any],
               read: Callable[[Any, int], bytes] = lambda item, _: item) -> InferInput:
    """A BYTES tensor sent as its elements, each `read` into an encoded image file (JSON's
    are base64 text)."""
    if len(items) != bytes_count(shape):
        raise invalid_argument(f"BYTES input: {len(items)} strings for shape {list(shape)}")
    return InferInput("BYTES", shape, [read(item, i) for i, item in enumerate(items)], name)


def bytes_count(shape: tuple[int, ...]) -> int:
    """The number of files a BYTES shape holds: [N] or [N, 1], N > 0."""
    count = shape[0] if shape else 0
    if len(shape) not in (1, 2) or math.prod(shape) != count or not count:
        raise invalid_argument("BYTES input: shape [N] (or [N, 1]), N > 0 encoded images")
    return count


def _dtype(datatype: str) -> np.dtype:
    if datatype not in DTYPES:
        raise invalid_argument(f"datatype {datatype!r} is not supported: use FP32, UINT8 or "
                               "BYTES")
    return DTYPES[datatype]


def output_bytes(output: OutputTensor) -> bytes:
    """An output's values as raw bytes: little-endian FP32, or length-prefixed BYTES."""
    if isinstance(output.data, np.ndarray):
        return output.data.astype("<f4").tobytes()
    return pack_bytes([value.encode() for value in output.data])


def unpack_bytes(raw: bytes, count: int, what: str) -> list[bytes]:
    """`count` length-prefixed BYTES elements, exactly filling `raw`."""
    items, at = [], 0
    for index in range(count):
        if at + 4 > len(raw):
            raise invalid_argument(f"{what}: binary BYTES data ends before element {index}")
        (size,) = struct.unpack_from("<I", raw, at)
        if at + 4 + size > len(raw):
            raise invalid_argument(f"{what}: element {index} says {size} bytes; only "
                                   f"{len(raw) - at - 4} are left")
        items.append(raw[at + 4:at + 4 + size])
        at += 4 + size
    if at != len(raw):
        raise invalid_argument(f"{what}: {len(raw) - at} bytes after the {count} BYTES elements "
                               "its shape has")
    return items


def pack_bytes(items: list[bytes]) -> bytes:
    """BYTES elements, each prefixed with its 4-byte little-endian length."""
    return b"".join(struct.pack("<I", len(item)) + item for item in items)
