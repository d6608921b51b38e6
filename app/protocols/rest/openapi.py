"""The OpenAPI 3 description of every JSON endpoint, served at /openapi.json and /docs.

Written here beside the routes; tests/protocols/rest/test_protocols.py fails when a route and this
document disagree (paths and methods), and schemathesis checks live responses against
the schemas, so the document cannot drift from the code.
"""

from __future__ import annotations

from typing import Any

from app.config import VERSION
from app.protocols.rest.openapi_schemas import (
    SCHEMAS,
    SCORES,
    explained_schema,
    prediction_schema,
)
from app.runtime.classifier import Classifier

_ERRORS = {"description": "An error the client can act on", "content": {
    "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _responses(ok: dict[str, Any], *statuses: int) -> dict[str, Any]:
    return {"200": ok, **{str(status): _ERRORS for status in statuses}}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _name(model: str) -> dict[str, Any]:
    return {"name": "name", "in": "path", "required": True, "description": "The model's name",
            "schema": {"type": "string", "examples": [model]}, "example": model}


_VERSION = {"name": "version", "in": "path", "required": True, "example": "1",
            "schema": {"type": "string", "examples": ["1"]}}
_LABEL = {"name": "label", "in": "path", "required": True, "example": "stable",
          "description": "A version label from the model card's version_labels",
          "schema": {"type": "string"}}
_EXPLAIN_LABEL = {"name": "label", "in": "query", "required": False,
                  "description": "The label to explain (default: the most probable one)",
                  "schema": {"type": "string"}}
_UPLOAD = {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["image"],
    "properties": {"image": {"type": "string", "format": "binary"}}}}}}
_JSON_BODY = {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}
_PREDICTION_ERRORS = (400, 404, 413, 415, 422, 503)


def _tfserving(model: str) -> dict[str, Any]:
    name = _name(model)
    status = {"get": {"summary": "TF Serving: model version status", "parameters": [name],
                      "responses": _responses(_json(_ref("TFStatus")), 404)}}
    metadata = {"get": {"summary": "TF Serving: signature metadata", "parameters": [name],
                        "responses": _responses(_json({"type": "object"}), 404)}}
    predict = {"post": {
        "summary": "TF Serving: predict",
        "description": '{"instances": [...]} or {"inputs": ...}; numbers are the model\'s '
                       'input tensor, {"b64": "..."} values encoded images.',
        "parameters": [name], "requestBody": _JSON_BODY,
        "responses": _responses(_json(_ref("TFPredictions")), *_PREDICTION_ERRORS)}}
    explain = {"post": {
        "summary": "KServe V1: predict and explain",
        "description": 'The :predict body; answers {"predictions": [...], '
                       '"explanations": [...]}, one explanation per instance.',
        "parameters": [name, _EXPLAIN_LABEL], "requestBody": _JSON_BODY,
        "responses": _responses(_json(_ref("V1Explanations")), *_PREDICTION_ERRORS)}}
    paths: dict[str, Any] = {}
    for prefix, extra in (("/v1/models/{name}", []),
                          ("/v1/models/{name}/versions/{version}", [_VERSION]),
                          ("/v1/models/{name}/labels/{label}", [_LABEL])):
        for suffix, operation in (("", status), ("/metadata", metadata), (":predict", predict),
                                  (":explain", explain)):
            method, body = next(iter(operation.items()))
            paths[prefix + suffix] = {method: {**body, "parameters": [
                name, *extra, *body["parameters"][1:]]}}
    return paths


def _v2(model: str) -> dict[str, Any]:
    name = _name(model)
    health = _json({"type": "object"}, "200 with {\"live\"|\"ready\": true}; 503 when not ready")
    paths: dict[str, Any] = {
        "/v2": {"get": {"summary": "Open Inference Protocol: server metadata",
                        "responses": {"200": _json(_ref("V2Server"))}}},
        "/v2/health/live": {"get": {"summary": "Server live", "responses": {"200": health}}},
        "/v2/health/ready": {"get": {"summary": "Server ready",
                                     "responses": {"200": health, "503": health}}},
        "/v2/repository/index": {"post": {
            "summary": "Model repository: every version and its state",
            "responses": {"200": _json({"type": "array", "items": {
                "type": "object", "required": ["name", "version", "state", "reason"]}})}}},
        **{f"/v2/repository/models/{{name}}/{verb}": {"post": {
            "summary": f"Model repository: {what} (an admin key)",
            "parameters": [name], "responses": _responses(health, 400, 403, 404)}}
           for verb, what in (("load", "load a model"), ("unload", "unload a model"),
                              ("rollout/promote", "promote a roll-out's candidate"),
                              ("rollout/abort", "roll a roll-out's candidate back"))},
    }
    for prefix, params in (("/v2/models/{name}", [name]),
                           ("/v2/models/{name}/versions/{version}", [name, _VERSION])):
        paths[prefix] = {"get": {"summary": "Model metadata", "parameters": params,
                                 "responses": _responses(_json(_ref("V2Model")), 404)}}
        paths[prefix + "/ready"] = {"get": {"summary": "Model ready", "parameters": params,
                                            "responses": {"200": health, "503": health,
                                                          "404": _ERRORS}}}
        paths[prefix + "/infer"] = {"post": {
            "summary": "Inference (FP32 / UINT8 tensors, BYTES base64 images)",
            "parameters": params, "requestBody": _JSON_BODY,
            "responses": _responses(_json(_ref("V2Response")), *_PREDICTION_ERRORS)}}
    return paths


def _seed_api(model: str) -> dict[str, Any]:
    operations = {
        "/predictlabel": {"post": {
            "summary": "Classify one uploaded image", "requestBody": _UPLOAD,
            "responses": _responses(_json(_ref("Prediction")), *_PREDICTION_ERRORS)}},
        "/explain": {"post": {
            "summary": "Classify one uploaded image and show what the model looked at",
            "description": "The /predictlabel answer plus an explanation of the top label "
                           "(or ?label=): Grad-CAM for CNNs, gradient x input saliency "
                           "(SmoothGrad) for other models.",
            "requestBody": _UPLOAD, "parameters": [_EXPLAIN_LABEL],
            "responses": _responses(_json(_ref("Explained")), *_PREDICTION_ERRORS)}},
        "/predict": {"post": {
            "summary": "Classify raw 0-255 pixel rows",
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["input"],
                "properties": {"input": {"type": "array", "items": {"type": "array"}}}}}}},
            "responses": _responses(_json({"type": "array", "items": {
                "type": "array", "items": {"type": "number"}}}), *_PREDICTION_ERRORS)}},
        "": {"get": {"summary": "Model description",
                     "responses": _responses(_json(_ref("Model")), 404)}},
    }
    paths: dict[str, Any] = {}
    for prefix, params in (("/models/{name}", [_name(model)]),
                           ("/models/{name}/versions/{version}", [_name(model), _VERSION])):
        for suffix, operation in operations.items():
            method, body = next(iter(operation.items()))
            paths[prefix + suffix] = {method: {
                **body, "parameters": [*params, *body.get("parameters", [])]}}
        paths[prefix + "/drift_reference"] = {"get": {
            "summary": "The version's drift reference, as the file to ship beside the model",
            "parameters": params, "responses": _responses(_json({"type": "object", "required": [
                "h5serve_drift_reference", "rows", "labels", "statistics"]}), 404, 503)}}
    return {
        **{path: op for path, op in operations.items() if path},
        **paths,
        "/models": {"get": {"summary": "Every served model, its versions and version labels",
                            "responses": {"200": _json({"type": "object",
                                                        "required": ["default", "models"]})}}},
        "/healthz": {"get": {"summary": "Liveness",
                             "responses": {"200": _json({"type": "object"})}}},
        "/readyz": {"get": {"summary": "Readiness",
                            "responses": {"200": _json({"type": "object"}), "503": _ERRORS}}},
        "/model": {"get": {"summary": "The default model's description",
                           "responses": {"200": _json(_ref("Model"))}}},
        "/metrics": {"get": {"summary": "Prometheus metrics (all workers)", "responses": {
            "200": {"description": "Prometheus text format",
                    "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
        "/openapi.json": {"get": {"summary": "This document",
                                  "responses": {"200": _json({"type": "object"})}}},
    }


def openapi_document(classifier: Classifier) -> dict[str, Any]:
    """The whole document for the served model (built per call: small, never hot)."""
    assert classifier.output_spec is not None
    model, output_kind = classifier.name, classifier.output_spec.kind
    return {
        "openapi": "3.1.0",
        "info": {"title": "h5serve", "version": VERSION,
                 "description": "Production serving for Keras image classifiers. "
                                f"Model {model}: {SCORES[output_kind]}"},
        "paths": {**_seed_api(model), **_tfserving(model), **_v2(model)},
        "components": {"schemas": {**SCHEMAS, "Prediction": prediction_schema(output_kind),
                                   "Explained": explained_schema(output_kind)}},
    }
