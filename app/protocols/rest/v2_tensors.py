"""Open Inference Protocol REST tensors: the JSON request's inputs and outputs as the data
plane's, and its answers back as JSON or binary data.

An input's values are JSON `data` (numbers, or base64 strings for BYTES) or binary data
after the JSON (app.protocols.rest.v2_binary); app.protocols.v2_codec checks them against
the shape. Outputs: FP32 "probabilities" [N, K] in label order, and with the
classification extension (`"parameters": {"classification": k}` on a requested output)
the top k as "score:index:label" BYTES, each as JSON `data` or binary data.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from app.protocols import v2_codec
from app.protocols.rest.tensors import decode_b64
from app.protocols.rest.v2_binary import BinaryData, wants_binary
from app.runtime.dataplane.types import InferInput, OutputTensor, RequestedOutput
from app.runtime.errors import invalid_argument


def infer_input(tensor: dict[str, Any], binary: BinaryData | None, max_rows: int
                ) -> InferInput:
    """One JSON input tensor, its values from `data` or the binary data."""
    name, datatype = tensor.get("name"), tensor.get("datatype")
    shape = v2_codec.check_shape(name, tensor.get("shape"), max_rows)
    parameters = tensor.get("parameters") or {}
    v2_codec.check_parameters(name, parameters, binary is not None)
    size = parameters.get("binary_data_size")
    if size is not None:
        raw = binary.take(size, f"input {name!r}")  # type: ignore[union-attr]
        return v2_codec.from_raw(name, datatype, shape, raw)
    if datatype == "BYTES":
        return v2_codec.from_files(name, shape,
                                   np.asarray(tensor.get("data"), dtype=object).ravel(),
                                   lambda item, i: decode_b64(item, f"{name}[{i}]"))
    return v2_codec.from_numbers(name, datatype, shape, tensor.get("data"))


def requested_outputs(body: dict[str, Any]) -> tuple[RequestedOutput, ...] | None:
    """The outputs the request names (None: the default one)."""
    requested = body.get("outputs")
    if requested is None:
        return None
    if not isinstance(requested, list) or not all(isinstance(o, dict) for o in requested):
        raise invalid_argument('"outputs" must be a list of objects')
    return tuple(RequestedOutput(o.get("name"), (o.get("parameters") or {}).get("classification"),
                                 o.get("parameters") or {}) for o in requested)


def output_json(body: dict[str, Any], answers: tuple[OutputTensor, ...]
                ) -> tuple[list[dict[str, Any]], list[bytes]]:
    """The outputs as JSON and, for those sent binary, their bytes in order."""
    request_parameters = body.get("parameters") or {}
    if not isinstance(request_parameters, dict):
        raise invalid_argument('"parameters" must be an object')
    documents, buffers = [], []
    for output in answers:
        document: dict[str, Any] = {"name": output.name, "datatype": output.datatype,
                                    "shape": list(output.shape)}
        if wants_binary(request_parameters, dict(output.requested.parameters)):
            chunk = v2_codec.output_bytes(output)
            document["parameters"] = {"binary_data_size": len(chunk)}
            buffers.append(chunk)
        elif isinstance(output.data, np.ndarray):
            document["data"] = output.data.ravel().tolist()
        else:
            document["data"] = output.data
        documents.append(document)
    return documents, buffers
