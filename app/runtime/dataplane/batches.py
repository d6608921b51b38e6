"""Input blocks -> the model's float32 batch, and probabilities -> the outputs asked for.

What every door's tensors have in common, checked against the leased model: the input's
name, the row count (MAX_PREDICT_ROWS), each row's shape, finite values, UINT8 range;
encoded images go through the same decode and preprocessing as uploads. Errors are
InvalidInput("invalid_argument") or TooLarge("too_many_rows") naming the block.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from app.runtime.dataplane.types import OUTPUT_NAME, InferInput, OutputTensor, RequestedOutput
from app.runtime.errors import TooLarge, invalid_argument
from app.runtime.imaging import DecodedImage
from app.runtime.inference import InferenceService


def check_row_count(count: int, max_rows: int, what: str) -> None:
    """Every door's limit on rows per request (MAX_PREDICT_ROWS)."""
    if count > max_rows:
        raise TooLarge("too_many_rows",
                       f"{what} has {count} rows; the limit is {max_rows} per request.")


def model_batch(service: InferenceService, inputs: Sequence[InferInput],
                keep_pictures: bool = False
                ) -> tuple[np.ndarray, tuple[DecodedImage | None, ...]]:
    """The blocks' rows, in order, as one float32 batch in the model's input shape, and
    each row's decoded upload (None for a numeric row)."""
    if not inputs:
        raise invalid_argument("the request has no input")
    check_row_count(sum(block.shape[0] if block.shape else 0 for block in inputs),
                    service.settings.MAX_PREDICT_ROWS, inputs[0].what)
    batches, images = [], []
    for block in inputs:
        batch, decoded = _block(service, block, keep_pictures)
        batches.append(batch)
        images += decoded
    return (batches[0] if len(batches) == 1 else np.concatenate(batches)), tuple(images)


def _block(service: InferenceService, block: InferInput, keep_pictures: bool
           ) -> tuple[np.ndarray, list[DecodedImage | None]]:
    input_name = service.classifier.input_name
    if block.name is not None and block.name != input_name:
        raise invalid_argument(f"unexpected input {block.name!r}: this model's input is "
                               f"{input_name!r}")
    if block.datatype == "BYTES":
        assert isinstance(block.data, list)
        if not block.data:
            raise invalid_argument("BYTES input: shape [N] (or [N, 1]), N > 0 encoded images")
        decoded = [service.decode(data, keep_pictures) for data in block.data]
        pixels = decoded[0].pixels[None] if len(decoded) == 1 \
            else np.stack([d.pixels for d in decoded])  # one upload: no copy
        return service.spec.to_model_input(pixels), decoded
    assert isinstance(block.data, np.ndarray)
    if block.datatype == "PIXELS":
        return service.spec.to_model_input(block.data), [None] * len(block.data)
    batch = numeric_rows(block.data, service, block.what)
    if block.datatype == "UINT8":
        if batch.min(initial=0) < 0 or batch.max(initial=0) > 255 or (batch % 1).any():
            raise invalid_argument("UINT8 values must be integers 0-255")
        batch = service.spec.to_model_input(service.spec.from_model_layout(batch))
    return batch, [None] * len(batch)


def numeric_rows(array: np.ndarray, service: InferenceService, what: str) -> np.ndarray:
    """Numeric rows in the model's input shape -> float32 (N, *model_shape)."""
    shape = service.spec.model_shape
    if array.ndim == 0 or array.shape[1:] != shape:
        raise invalid_argument(f"{what}: expected rows of shape {list(shape)}, "
                               f"got shape {list(array.shape[1:]) if array.ndim else []}")
    array = array.astype(np.float32)
    if not np.isfinite(array).all():
        raise invalid_argument(f"{what}: NaN and Infinity are not valid inputs")
    return array


def outputs(labels: tuple[str, ...], probabilities: np.ndarray,
            requested: Sequence[RequestedOutput] | None) -> tuple[OutputTensor, ...]:
    """The outputs asked for (default: the probabilities), top k as "score:index:label"."""
    answers = []
    for wanted in requested or (RequestedOutput(OUTPUT_NAME),):
        if wanted.name != OUTPUT_NAME:
            raise invalid_argument(f"unknown output {wanted.name!r}: this model's output is "
                                   f"{OUTPUT_NAME!r}")
        top_k = wanted.classification
        if top_k is None:
            answers.append(OutputTensor(OUTPUT_NAME, "FP32", probabilities.shape,
                                        probabilities, wanted))
            continue
        if not isinstance(top_k, int) or not 1 <= top_k <= len(labels):
            raise invalid_argument(f"classification must be an integer from 1 to {len(labels)}")
        order = np.argsort(-probabilities, axis=1, kind="stable")[:, :top_k]
        ranked = [f"{probabilities[row, i]:f}:{i}:{labels[i]}"
                  for row in range(len(order)) for i in order[row]]
        answers.append(OutputTensor(OUTPUT_NAME, "BYTES", (len(order), top_k), ranked, wanted))
    return tuple(answers)


def model_output(probabilities: np.ndarray, binary: bool) -> np.ndarray:
    """The model's own output, as TF Serving answers it: a sigmoid model's p, a softmax
    as is."""
    return probabilities[:, 1:2] if binary else probabilities
