"""What a model's output means, read from its last layer and checked at warm-up.

A `Dense(10, activation="sigmoid")` head gives independent scores, not a distribution;
a head without an activation gives logits. Describing either as softmax gives users
"probabilities" that do not sum to 1, so the head is read, and a "softmax" whose warm-up
output does not sum to 1 is taken for what it is.
"""

from __future__ import annotations

from typing import Any

from app.runtime.preprocessing import Choice


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


OUTPUT_NAMES = {"softmax": "softmax", "binary": "sigmoid (binary)",
                "multilabel": "sigmoid (multi-label: independent scores)",
                "logits": "logits (softmax applied)"}  # as GET /model says each kind
