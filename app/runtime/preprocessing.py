"""How a model wants its pixels and what its output means, read from the model itself.

Tutorials build models that prepare their own input (`Rescaling(1/255)` first, the way
`image_dataset_from_directory` examples do), adapt a `Normalization` layer, or wrap a
`keras.applications` backbone that expects its own `preprocess_input`. Feeding such a model
pixels scaled for another one gives a confident wrong answer for every image. So the
layers are read, past the augmentation layers that are inactive at inference and into
nested models, and each choice comes with the reason shown in the log and `/model`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

# keras.applications families and the `preprocess_input` mode of each (keras/src/
# applications/*.py): "tf" scales to [-1, 1], "caffe" is BGR minus the ImageNet means,
# "torch" is ImageNet mean/std on 0-1, and the families that include their own
# preprocessing layers take raw 0-255 pixels. Matched against the backbone's model name.
BACKBONE_SCALES: tuple[tuple[str, str], ...] = (
    (r"mobilenetv3", "raw"),
    (r"mobilenet(v2)?_", "symmetric"),
    (r"(resnet\d+v2|inception_v3|inception_resnet_v2|xception|nasnet)", "symmetric"),
    (r"(resnet(50|101|152)$|vgg1[69])", "caffe"),
    (r"densenet", "torch"),
    (r"(efficientnet|convnext|regnet)", "raw"),
)
# Layers that change nothing at inference (augmentation) or nothing about the pixel domain.
_PASS_THROUGH = re.compile(r"^(InputLayer|Random\w+|Resizing|CenterCrop|Dropout|"
                           r"GaussianNoise|Permute|Reshape|Lambda)$")


@dataclass(frozen=True)
class Choice:
    """A decision about the model and the reason people can check it by."""

    value: str
    reason: str


def infer_scale(model: Any) -> Choice:
    """The pixel scaling the model expects: "raw", "unit", "symmetric", "caffe", "torch"."""
    for layer in _leading_layers(model):
        kind = type(layer).__name__
        if kind == "Rescaling":
            return Choice("raw", f"the model's first layer is Rescaling"
                          f"({_number(getattr(layer, 'scale', ''))}): it scales raw "
                          "0-255 pixels itself")
        if kind == "Normalization":
            mean = _mean_of(layer)
            if mean is None:
                break
            value = "raw" if mean > 2 else "unit"
            return Choice(value, f"the model's first layer is Normalization adapted on "
                          f"{'0-255' if value == 'raw' else '0-1'} data (mean {mean:.3g})")
        name = str(getattr(layer, "name", "")).lower() if hasattr(layer, "layers") else ""
        for pattern, scale in BACKBONE_SCALES:
            if name and re.match(pattern, name):
                return Choice(scale, f"the model is built on keras.applications {layer.name}, "
                              f"whose preprocess_input mode is {_MODE_NAMES[scale]}")
    return Choice("unit", "nothing in the model says otherwise: 0-255 pixels divided by "
                  "255, the most common training setup")


_MODE_NAMES = {"symmetric": '"tf" ([-1, 1])', "caffe": '"caffe" (BGR minus ImageNet means)',
               "torch": '"torch" (ImageNet mean and std)', "raw": "none (raw 0-255)"}


def _leading_layers(model: Any) -> list[Any]:
    """The layers an input meets first: into nested models, past pass-through layers.

    A nested model is yielded itself (it may be a known backbone) before its own layers.
    """
    found: list[Any] = []
    layers = list(getattr(model, "layers", []))
    for layer in layers:
        kind = type(layer).__name__
        if _PASS_THROUGH.match(kind):
            continue
        found.append(layer)
        if hasattr(layer, "layers"):
            found += _leading_layers(layer)
        break
    return found


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


def infer_head(model: Any, classes: int) -> Choice:
    """What the output means: "softmax", "binary", "multilabel" or "logits"."""
    activation = _last_activation(model)
    if classes == 1:
        return Choice("binary", f"one output unit ({activation or 'sigmoid'}): p is the "
                      "second label's probability, 1 - p the first's")
    if activation == "sigmoid":
        return Choice("multilabel", f"{classes} sigmoid units: independent scores, "
                      "one per label (multi-label); they need not sum to 1")
    if activation == "linear":
        return Choice("logits", "the last layer has no activation (logits): softmax applied")
    return Choice("softmax", "a softmax over the classes"
                  if activation == "softmax" else "assumed softmax (checked at warm-up)")


def check_softmax(output: Any, head: Choice) -> Choice:
    """A "softmax" whose warm-up output does not sum to 1 is something else: say what."""
    total = float(output.sum())
    if head.value != "softmax" or abs(total - 1) < 1e-3:
        return head
    if ((output >= 0) & (output <= 1)).all():
        return Choice("multilabel", f"the output sums to {total:.3g}, not 1, at warm-up: "
                      "read as independent scores")
    return Choice("logits", f"the output sums to {total:.3g}, not 1, at warm-up: read as "
                  "logits, softmax applied")


def _last_activation(model: Any) -> str | None:
    """The name of the activation that produces the model's output, where it can be read."""
    layer = model
    while hasattr(layer, "layers") and layer.layers:
        layer = layer.layers[-1]
    kind = type(layer).__name__
    if kind == "Softmax":
        return "softmax"
    activation = getattr(layer, "activation", None)
    name = getattr(activation, "__name__", None) or (activation if isinstance(activation, str)
                                                     else None)
    return str(name).lower() if name else None
