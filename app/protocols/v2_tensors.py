"""Open Inference Protocol tensors: the request's input as a model batch, the outputs back.

Inputs: one tensor named like the model's input, FP32 (the model's own input, already
scaled) or UINT8 (raw 0-255 pixels, scaled like uploads) in the model's shape, or BYTES
of shape [N] holding encoded image files (base64 in JSON, raw bytes in binary). Each as
JSON `data` or as binary data (app.protocols.v2_binary). Outputs: FP32 "probabilities"
[N, K] in label order, and with the classification extension (`"parameters":
{"classification": k}` on a requested output) the top k as "score:index:label" BYTES.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from app.protocols.errors import invalid_argument
from app.protocols.rows import check_row_count
from app.protocols.tensors import OUTPUT_NAME, decode_b64, encoded_images, numeric_rows
from app.protocols.v2_binary import BinaryData, pack_bytes, unpack_bytes, wants_binary
from app.runtime.inference import InferenceService

_DTYPES = {"FP32": np.dtype("<f4"), "UINT8": np.dtype(np.uint8)}



def input_batch(service: InferenceService, tensor: dict[str, Any],
                binary: BinaryData | None) -> np.ndarray:
    """The request's one input tensor -> float32 batch in the model's input shape (HTTP's
    JSON tensor, or gRPC's turned into one with its raw contents as binary data)."""
    name, datatype, shape = tensor.get("name"), tensor.get("datatype"), tensor.get("shape")
    if name != service.classifier.input_name:
        raise invalid_argument(f"unexpected input {name!r}: this model's input is "
                               f"{service.classifier.input_name!r}")
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape) \
            or not shape:
        raise invalid_argument("input shape must be a list of sizes")
    check_row_count(shape[0], service.settings.MAX_PREDICT_ROWS, f"input {name!r}")
    parameters = tensor.get("parameters") or {}
    if "shared_memory_region" in parameters:
        raise invalid_argument("the shared-memory extensions are not supported: send the tensor "
                               "as JSON or binary data")
    size = parameters.get("binary_data_size")
    if size is not None and binary is None:
        raise invalid_argument(f"input {name!r} has binary_data_size but the request has no "
                               "binary data (no Inference-Header-Content-Length header)")
    raw = None if size is None else binary.take(size, f"input {name!r}")  # type: ignore[union-attr]
    if datatype == "BYTES":
        return _images(service, name, shape, raw, tensor.get("data"))
    if datatype not in _DTYPES:
        raise invalid_argument(f"datatype {datatype!r} is not supported: use FP32, UINT8 or BYTES")
    count = int(np.prod(shape))
    if raw is not None:
        if len(raw) != count * _DTYPES[datatype].itemsize:
            needed = count * _DTYPES[datatype].itemsize
            raise invalid_argument(f"input {name!r}: {len(raw)} bytes of binary data, but "
                                   f"shape {shape} of {datatype} needs {needed}")
        values = np.frombuffer(raw, _DTYPES[datatype]).astype(np.float64)
    else:
        values = _json_numbers(tensor.get("data"), count, shape)
    batch = numeric_rows(values.reshape(shape), service, name)
    if datatype == "UINT8":
        if batch.min(initial=0) < 0 or batch.max(initial=0) > 255 or (batch % 1).any():
            raise invalid_argument("UINT8 values must be integers 0-255")
        return service.spec.to_model_input(service.spec.from_model_layout(batch))
    return batch


def _json_numbers(data: Any, count: int, shape: list[int]) -> np.ndarray:
    """JSON `data` (flat or nested lists of numbers) as a flat float64 array, straight
    into numpy (no Python object array on the way)."""
    try:
        values = np.asarray(data, dtype=np.float64).ravel()
    except (TypeError, ValueError, OverflowError):
        values = np.asarray(data, dtype=object).ravel()  # ragged, or not numbers: say which
        if len(values) == count:
            raise invalid_argument("input data must be numbers") from None
    if len(values) != count:
        raise invalid_argument(f"input has {len(values)} values but shape {shape} needs {count}")
    return values


def _images(service: InferenceService, name: str, shape: list[int], raw: bytes | None,
            data: Any) -> np.ndarray:
    """A BYTES tensor of N encoded image files -> their batch, preprocessed like uploads."""
    count = shape[0] if shape else 0
    if len(shape) not in (1, 2) or int(np.prod(shape)) != count or not count:
        raise invalid_argument("BYTES input: shape [N] (or [N, 1]), N > 0 encoded images")
    if raw is not None:
        files = unpack_bytes(raw, count, f"input {name!r}")
    else:
        items = np.asarray(data, dtype=object).ravel()
        if len(items) != count:
            raise invalid_argument(f"BYTES input: {len(items)} strings for shape {shape}")
        files = [decode_b64(item, f"{name}[{i}]") for i, item in enumerate(items)]
    return encoded_images(files, service)


def outputs(labels: tuple[str, ...], body: dict[str, Any], probabilities: np.ndarray
            ) -> tuple[list[dict[str, Any]], list[bytes]]:
    """The requested outputs (default: probabilities) and, for those sent binary, their
    bytes in order."""
    requested = body.get("outputs")
    if requested is None:
        requested = [{"name": OUTPUT_NAME}]
    if not isinstance(requested, list) or not all(isinstance(o, dict) for o in requested):
        raise invalid_argument('"outputs" must be a list of objects')
    request_parameters = body.get("parameters") or {}
    if not isinstance(request_parameters, dict):
        raise invalid_argument('"parameters" must be an object')
    answers, buffers = [], []
    for output in requested:
        if output.get("name") != OUTPUT_NAME:
            raise invalid_argument(f"unknown output {output.get('name')!r}: this model's output is "
                                   f"{OUTPUT_NAME!r}")
        top_k = (output.get("parameters") or {}).get("classification")
        if top_k is None:
            answer: dict[str, Any] = {"name": OUTPUT_NAME, "datatype": "FP32",
                                      "shape": list(probabilities.shape)}
            values: Any = probabilities
        else:
            if not isinstance(top_k, int) or not 1 <= top_k <= len(labels):
                raise invalid_argument(f"classification must be an integer from 1 to {len(labels)}")
            order = np.argsort(-probabilities, axis=1, kind="stable")[:, :top_k]
            values = [f"{probabilities[row, i]:f}:{i}:{labels[i]}"
                      for row in range(len(order)) for i in order[row]]
            answer = {"name": OUTPUT_NAME, "datatype": "BYTES", "shape": [len(order), top_k]}
        if wants_binary(request_parameters, output):
            chunk = (values.astype("<f4").tobytes() if top_k is None
                     else pack_bytes([v.encode() for v in values]))
            answer["parameters"] = {"binary_data_size": len(chunk)}
            buffers.append(chunk)
        else:
            answer["data"] = values.ravel().tolist() if top_k is None else values
        answers.append(answer)
    return answers, buffers
