"""The OpenAPI document's shared schemas: errors, models, predictions, explanations."""

from __future__ import annotations

from typing import Any

SCHEMAS: dict[str, Any] = {
    "Error": {"description": "h5serve's error, or the protocols' {\"error\": message}",
              "anyOf": [
                  {"type": "object", "required": ["success", "error"], "properties": {
                      "success": {"const": False},
                      "error": {"type": "object", "required": ["code", "message"],
                                "properties": {"code": {"type": "string"},
                                               "message": {"type": "string"}}}}},
                  {"type": "object", "required": ["error"],
                   "properties": {"error": {"type": "string"}}}]},
    "Model": {"type": "object", "required": ["name", "version", "labels", "input"]},
    "TFStatus": {"type": "object", "required": ["model_version_status"]},
    "TFPredictions": {"type": "object", "minProperties": 1, "maxProperties": 1, "properties": {
        "predictions": {"type": "array"}, "outputs": {"type": "array"}}},
    "V2Server": {"type": "object", "required": ["name", "version", "extensions"]},
    "V2Model": {"type": "object", "required": ["name", "platform", "inputs", "outputs"]},
    "Explanation": {"type": "object", "required": [
        "label", "probability", "method", "heatmap", "height", "width", "overlay_png"],
        "properties": {
            "method": {"enum": ["grad-cam", "saliency"]},
            "layer": {"type": ["string", "null"],
                      "description": "The convolutional layer Grad-CAM used"},
            "samples": {"type": "integer", "description": "Passes per image (SmoothGrad)"},
            "heatmap": {"type": "array", "description": "height rows of width values, 0-1",
                        "items": {"type": "array", "items": {"type": "number"}}},
            "overlay_png": {"type": ["string", "null"], "description":
                            "Base64 PNG of the heatmap over the image sent (null for "
                            "numeric tensors)"}}},
    "V1Explanations": {"type": "object", "required": ["predictions", "explanations"],
                       "properties": {"explanations": {"type": "array", "items": {
                           "$ref": "#/components/schemas/Explanation"}}}},
    "V2Response": {"type": "object", "required": ["model_name", "outputs"], "properties": {
        "outputs": {"type": "array", "items": {
            "type": "object", "required": ["name", "shape", "datatype", "data"]}}}},
}


# What "probability" means for each output kind (app.runtime.output_head.infer_head).
SCORES = {
    "softmax": "The model's softmax: the probabilities of all labels sum to 1.",
    "binary": "One sigmoid unit p: the second label has p, the first 1 - p.",
    "multilabel": "Multi-label: an independent sigmoid score per label, from 0 to 1; the "
                  "scores need not sum to 1 and several labels can be present at once.",
    "logits": "The model answers logits; softmax is applied, so the probabilities sum to 1.",
}


def prediction_schema(kind: str) -> dict[str, Any]:
    """The seed response, its `probability` described for the served output kind."""
    return {"type": "object", "required": ["success", "most_probable_label", "predictions"],
            "properties": {
                "success": {"const": True},
                "most_probable_label": {"type": "string"},
                "predictions": {"type": "array", "items": {
                    "type": "object", "required": ["label", "probability"],
                    "properties": {"label": {"type": "string"},
                                   "probability": {"type": "number", "minimum": 0,
                                                   "maximum": 1,
                                                   "description": SCORES[kind]}}}}}}


def explained_schema(kind: str) -> dict[str, Any]:
    """The /explain answer: the seed response plus its explanation."""
    seed = prediction_schema(kind)
    return {**seed, "required": [*seed["required"], "explanation"],
            "properties": {**seed["properties"],
                           "explanation": {"$ref": "#/components/schemas/Explanation"}}}
