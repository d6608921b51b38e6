"""How a model wants its pixels, read from the model itself (its output: output_head).

Tutorials build models that prepare their own input (`Rescaling(1/255)` first, the way
`image_dataset_from_directory` examples do, often behind a nested augmentation model),
adapt a `Normalization` layer, call `preprocess_input` inside the graph, or wrap a
`keras.applications` backbone that expects its own `preprocess_input`. Feeding such a
model pixels scaled for another one gives a confident wrong answer for every image. So
the layers an input meets first are read, past augmentation (inactive at inference) and
into nested models, and each choice comes with the reason shown in the log and `/model`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.runtime.backbones import Backbone, identify_backbone
from app.runtime.model_card import numbered_labels

# Layers that leave the pixel domain alone at inference (augmentation, reshaping) or that
# prepare the input (scaling, resizing): the input path goes on past them.
_PREPARING = re.compile(r"^(InputLayer|Random\w+|RandAugment|AugMix|MixUp|CutMix|Resizing|"
                        r"CenterCrop|\w*Dropout|Gaussian\w+|Permute|Reshape|Lambda|Cast|"
                        r"Rescaling|Normalization)$")
# Arithmetic in the graph itself, as `x = preprocess_input(x)` inside a model leaves it:
# TFOpLambda layers in Keras 2 ("tf.math.truediv"), operations in Keras 3 (TrueDivide).
_ARITHMETIC = re.compile(r"^(TrueDivide|Divide|Subtract|Multiply|Add|GetItem)$")
_ARITHMETIC_TF = re.compile(r"truediv|divide|multiply|subtract|add|getitem")
_CAST_TF = re.compile(r"^tf\.(dtypes\.)?cast")


@dataclass(frozen=True)
class Choice:
    """A decision about the model and the reason people can check it by."""

    value: str
    reason: str


def infer_scale(model: Any, model_path: Path | None = None) -> Choice:
    """The pixel scaling the model expects: "raw", "unit", "symmetric", "caffe", "torch".

    Layer evidence decides; a Teachable Machine `labels.txt` beside `model_path` only
    when no layer does."""
    path = [model, *_input_path(model)]
    for i, step in enumerate(path):
        found = _own_scaling(step)
        if found is not None:
            return found
        if type(step).__name__ == "Normalization":
            break  # a Normalization whose statistics cannot be read: nothing to go by
        backbone = identify_backbone(step, by_name=i > 0) if hasattr(step, "layers") else None
        if backbone is not None:
            return _backbone_scale(backbone, path[i + 1:])
    return export_hint(model_path) or Choice(
        "unit", "nothing in the model says otherwise: 0-255 pixels divided by 255, the "
        "most common training setup")


_MODE_NAMES = {"symmetric": '"tf" ([-1, 1])', "caffe": '"caffe" (BGR minus ImageNet means)',
               "torch": '"torch" (ImageNet mean and std)', "raw": "none (raw 0-255)",
               "unit": "[0, 1]"}


def _own_scaling(layer: Any) -> Choice | None:
    """Raw pixels when this layer scales them itself; None when it says nothing."""
    kind = type(layer).__name__
    if kind == "Rescaling":
        offset = _number(getattr(layer, "offset", 0))
        return Choice("raw", f"the model's first layer (past augmentation) is Rescaling("
                      f"{_number(getattr(layer, 'scale', ''))}"
                      f"{'' if offset == '0' else f', offset={offset}'}): it scales raw "
                      "0-255 pixels itself")
    if kind == "Normalization":
        mean = _mean_of(layer)
        if mean is None:
            return None
        value = "raw" if mean > 2 else "unit"
        return Choice(value, f"the model's first layer is Normalization adapted on "
                      f"{'0-255' if value == 'raw' else '0-1'} data (mean {mean:.3g})")
    if _is_arithmetic(layer):
        return Choice("raw", f"the model computes its own input scaling ({layer.name}, as "
                      "preprocess_input does inside a model): it takes raw 0-255 pixels")
    return None


def _backbone_scale(backbone: Backbone, inside: list[Any]) -> Choice:
    """A backbone's own first layers decide if they scale; else its family's mode."""
    family = backbone.family
    about = (f"keras.applications {family.name} ({backbone.name}, recognised by "
             f"{backbone.evidence})")
    own = next((c for c in map(_own_scaling, inside) if c is not None), None)
    if own is not None:
        return Choice(own.value, f"the model is built on {about}; "
                      + own.reason.replace("the model's", "its", 1))
    if family.includes_preprocessing:
        return Choice(family.scale, f"the model is built on {about} without its "
                      f"preprocessing layers (include_preprocessing=False): it expects "
                      f"{_MODE_NAMES[family.scale]}")
    return Choice(family.scale, f"the model is built on {about}, whose preprocess_input "
                  f"mode is {_MODE_NAMES[family.scale]}")


def export_hint(model_path: Path | None) -> Choice | None:
    """[-1, 1] for a Teachable Machine export, known by its numbered labels.txt."""
    labels = model_path.with_name("labels.txt") if model_path else None
    if labels is None or not labels.is_file():
        return None
    if not numbered_labels(labels.read_text(encoding="utf-8", errors="replace")):
        return None
    return Choice("symmetric", "no layer says how pixels are scaled, and labels.txt beside "
                  "the model has Teachable Machine's numbered lines (\"0 Rock\"): its "
                  "exports take [-1, 1]")


def infer_input_size(model: Any) -> tuple[int, int] | None:
    """The size a leading `Resizing` layer gives the image, for open input shapes."""
    for step in _input_path(model):
        if type(step).__name__ == "Resizing":
            return int(step.height), int(step.width)
    return None


def _input_path(model: Any) -> list[Any]:
    """The layers an input meets first: into nested models, past augmentation and the
    layers that prepare the input, up to the first layer that does the model's work.
    A nested model comes before its own layers (it may be a known backbone); one that
    holds only augmentation is passed like a layer."""
    return _walk(model)[0]


def _walk(model: Any) -> tuple[list[Any], bool]:
    found: list[Any] = []
    operations = getattr(model, "operations", None)  # Keras 3 Functional: ops included
    for step in operations if operations is not None else getattr(model, "layers", []):
        kind = type(step).__name__
        if kind == "InputLayer":
            continue
        found.append(step)
        if hasattr(step, "layers"):
            inner, done = _walk(step)
            found += inner
            if done:
                return found, True
        elif not (_PREPARING.match(kind) or _is_arithmetic(step)
                  or _CAST_TF.match(str(getattr(step, "name", "")))):
            return found, True
    return found, False


def _is_arithmetic(layer: Any) -> bool:
    kind = type(layer).__name__
    if kind in ("TFOpLambda", "SlicingOpLambda"):
        return bool(_ARITHMETIC_TF.search(str(getattr(layer, "name", ""))))
    return bool(_ARITHMETIC.match(kind)) and not hasattr(layer, "layers")


def _mean_of(layer: Any) -> float | None:
    import numpy as np

    mean = getattr(layer, "mean", None)
    try:
        return float(np.mean(np.asarray(mean))) if mean is not None else None
    except (TypeError, ValueError):
        return None


def _number(value: Any) -> str:
    try:
        return f"{float(value):.4g}"
    except (TypeError, ValueError):
        return str(value)
