"""The data plane's requests and answers: what each door converts its wire format into.

The shapes follow the Open Inference Protocol (named, typed tensors with a shape), which
the other formats map onto: TF Serving's rows are FP32 or BYTES blocks, an upload is one
BYTES element, the seed API's pixel rows are PIXELS.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.runtime.imaging import DecodedImage

OUTPUT_NAME = "probabilities"


@dataclass(frozen=True)
class InferInput:
    """A block of rows of the model's one input.

    `datatype`: FP32 is the model's own input (already scaled), UINT8 0-255 pixels in the
    model's layout, BYTES encoded image files, PIXELS 0-255 values in (N, H, W, C) that
    the door has already checked (the seed API's rows). `data` is a numeric array or the
    files. `name` None means the model's one input, whatever it is called; `source` is how
    the client named the block, for error messages ("input 'x'", "instances").
    """

    datatype: str
    shape: tuple[int, ...]
    data: np.ndarray | list[bytes]
    name: str | None = None
    source: str = ""

    @property
    def what(self) -> str:
        return self.source or f"input {self.name!r}"


@dataclass(frozen=True)
class RequestedOutput:
    """An output a client asked for: "probabilities", or its top k with `classification`
    (the classification extension); `parameters` are the door's own (e.g. binary_data)."""

    name: str
    classification: int | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class InferRequest:
    """Which model version, the input blocks (their rows concatenated in order), the
    outputs wanted (None: probabilities), and whether uploads' pictures are kept for an
    explanation's overlay."""

    model: str | None = None
    version: int | str | None = None
    label: str | None = None
    inputs: tuple[InferInput, ...] = ()
    outputs: tuple[RequestedOutput, ...] | None = None
    keep_pictures: bool = False


@dataclass(frozen=True)
class OutputTensor:
    """One answered output: FP32 probabilities [N, K] or BYTES "score:index:label" [N, k]."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    data: np.ndarray | list[str]
    requested: RequestedOutput


@dataclass(frozen=True)
class InferResponse:
    """The version that answered, its probabilities in label order, the outputs asked
    for, the model-input batch, and the uploads as decoded (None for numeric rows)."""

    model_name: str
    model_version: int
    labels: tuple[str, ...]
    probabilities: np.ndarray
    outputs: tuple[OutputTensor, ...]
    batch: np.ndarray
    images: tuple[DecodedImage | None, ...]


@dataclass(frozen=True)
class TensorMetadata:
    name: str
    datatype: str
    shape: tuple[int, ...]  # -1 for the batch axis


@dataclass(frozen=True)
class ModelMetadata:
    """A served version as clients see it: its versions, one input, one output."""

    name: str
    version: int
    versions: tuple[int, ...]
    platform: str
    inputs: tuple[TensorMetadata, ...]
    outputs: tuple[TensorMetadata, ...]
    binary: bool  # a sigmoid model: its raw output is p alone (TF Serving's answer)


@dataclass(frozen=True)
class ServerMetadata:
    name: str
    version: str
    extensions: tuple[str, ...]


@dataclass(frozen=True)
class RepositoryEntry:
    """One version the repository knows: READY, LOADING, UNLOADING or UNAVAILABLE; a
    roll-out's candidate also carries the roll-out's status."""

    name: str
    version: int
    state: str
    reason: str
    rollout: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class ModelSummary:
    """A served model: its versions and version labels."""

    name: str
    versions: tuple[int, ...]
    labels: Mapping[str, int]
