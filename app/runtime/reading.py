"""Reading a model with TensorFlow: what it takes, how it is scaled, what its head is, whether
its card's examples come out right, and which runtime serves it.

This is what preparing a model does (app.runtime.prepared), in a child process or, where
TensorFlow is loaded anyway or serves the model itself, in the worker. The Keras model,
traced once (app.runtime.engines.tensorflow_engine), is the reference: warm-up, the
self-check and the runtimes' parity gate use it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from app.config import Settings
from app.runtime.calibrated_load import calibrate_on_load
from app.runtime.engines.choice import RuntimeRefused, Selection
from app.runtime.engines.selection import select_runtime
from app.runtime.engines.tensorflow_engine import tensorflow_engine, trace
from app.runtime.loading import LoadedModel, ModelLoadError, item_shape, load_keras_model
from app.runtime.model_card import ModelCard
from app.runtime.output_head import check_softmax, infer_head
from app.runtime.preprocessing import Choice, infer_input_size, infer_scale
from app.runtime.self_check import (
    LabelledExample,
    check_examples,
    decode_examples,
)
from app.runtime.spec import (
    ImageSpec,
    OutputSpec,
    UnservableModel,
    infer_image_spec,
    infer_output_spec,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reading:
    """A model read with TensorFlow, ready to serve."""

    loaded: LoadedModel
    card: ModelCard  # as applied (a labelled examples folder may give labels, scaling)
    image_spec: ImageSpec
    output_spec: OutputSpec
    choices: dict[str, Choice]  # scaling and output kind, with their reasons
    calibrated: dict[str, Any] | None  # what a labelled examples folder found
    runtime: Selection
    input_name: str  # as protocol clients address it
    versions: dict[str, str | None]  # the libraries that read it


def read_model(path: Path, card: ModelCard, examples: list[LabelledExample],
               settings: Settings) -> Reading:
    """Load, infer the specs, warm up, self-check, pick the runtime; ModelLoadError with a
    message that says what is wrong with the file."""
    loaded = load_keras_model(path)
    model = loaded.model
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ModelLoadError(
            f"{path}: the model has {len(model.inputs)} inputs and "
            f"{len(model.outputs)} outputs; an image classifier has one of each")
    scale = (Choice(card.scale, "the model card says so") if card.scale
             else infer_scale(model, path))
    output_shape = item_shape(model.outputs[0])
    head = infer_head(model, output_shape[0] or 0 if len(output_shape) == 1 else 0)
    try:
        image_spec = infer_image_spec(item_shape(model.inputs[0]), card, scale.value,
                                      infer_input_size(model))
        output_spec = infer_output_spec(output_shape, card, head.value)
    except UnservableModel as exc:
        raise ModelLoadError(f"{path}: {exc}") from None
    traced = trace(model, image_spec.model_shape)
    keras_engine = tensorflow_engine(traced)
    forward = keras_engine.forward
    warm = forward(np.zeros((1, *image_spec.model_shape), np.float32))
    if warm.shape[0] != 1 or not np.isfinite(warm).all():
        raise ModelLoadError(f"{path}: warm-up inference gave no finite output")
    head = check_softmax(warm[0], head)
    output_spec = replace(output_spec, kind=head.value)  # type: ignore[arg-type]
    calibrated = calibrate_on_load(path, card, image_spec, output_spec, forward, settings)
    if calibrated:  # labelled examples beside the model: app.runtime.calibrated_load
        card, image_spec, output_spec, scale = calibrated.applied
    _check_examples(path, forward, image_spec, output_spec, examples, settings)
    try:
        runtime = select_runtime(traced, keras_engine, output_spec.probabilities, image_spec,
                                 decode_examples(examples, image_spec), settings, path)
    except RuntimeRefused as exc:
        raise ModelLoadError(f"{path}: {exc}") from None
    import tensorflow as tf

    name = str(getattr(model.inputs[0], "name", "")).split(":")[0] or "input"
    return Reading(loaded, card, image_spec, output_spec, {"scale": scale, "output": head},
                   calibrated.describe() if calibrated else None, runtime, name,
                   {"keras_library": f"{loaded.library} {loaded.library_version}",
                    "written_by_keras": loaded.written_by or None, "tensorflow": tf.__version__})


def _check_examples(path: Path, forward: Any, spec: ImageSpec, output: OutputSpec,
                    examples: list[LabelledExample], settings: Settings) -> None:
    """The card's labelled examples must come out right (app.runtime.self_check)."""
    if settings.SELF_CHECK == "off" or not examples:
        return
    try:
        result = check_examples(lambda batch: output.probabilities(forward(batch)), spec,
                                output.labels, examples)
    except ValueError as exc:
        raise ModelLoadError(f"{path}: self-check: {exc}") from None
    if not result.wrong:
        log.info("self-check: all %d examples of the card right", result.checked)
    elif settings.SELF_CHECK == "warn":
        log.warning("%s: %s (SELF_CHECK=warn: serving it anyway)", path, result.message())
    else:
        raise ModelLoadError(f"{path}: {result.message()}; not served "
                             "(SELF_CHECK=warn serves it anyway)")
