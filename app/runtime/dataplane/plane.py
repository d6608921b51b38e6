"""The operations every door needs, once: inference, explanations, metadata, readiness and
the model repository, on the worker's ModelRepository and its Rollout.

A door calls these inside a Call (app.runtime.dataplane.calls), which holds the model
version the request leased; errors are the runtime's kinds (app.runtime.errors). Answers
to requests that named no version feed the model's roll-out (app.runtime.canary).
"""

from __future__ import annotations

import time
from typing import Any

from app.config import VERSION
from app.runtime.canary.rules import PROMOTE, ROLL_BACK
from app.runtime.dataplane.batches import model_batch, outputs
from app.runtime.dataplane.calls import Call, Origin, Watcher, version_number
from app.runtime.dataplane.types import (
    OUTPUT_NAME,
    InferRequest,
    InferResponse,
    ModelMetadata,
    ModelSummary,
    RepositoryEntry,
    ServerMetadata,
    TensorMetadata,
)
from app.runtime.errors import Forbidden, InvalidInput, Overloaded, ServingError, UnknownModel
from app.runtime.explain import Explanation
from app.runtime.repository import ModelRepository, VersionState
from app.runtime.rollout import Rollout

EXTENSIONS = ("classification", "model_repository", "binary_tensor_data")
_V2_STATES = {"LOADING": "LOADING", "UNLOADING": "UNLOADING"}


class DataPlane:
    """The served models, as every door sees them."""

    def __init__(self, models: ModelRepository, rollout: Rollout) -> None:
        self.models = models
        self.rollout = rollout
        self.watchers: list[Watcher] = []  # see every answer: inference events, drift

    def call(self, origin: Origin | None = None) -> Call:
        """A new request's Call: its lease, metrics and trace. `origin.client` says who
        asks (the API key's caller, else X-Client-Id, else the address): a canary sticks
        to it."""
        return Call(self.models, origin or Origin(), self.rollout.trials.route, self.watchers)

    @property
    def max_rows(self) -> int:
        """Rows one request may carry (MAX_PREDICT_ROWS): doors check it before they
        convert a big tensor."""
        return self.models.settings.MAX_PREDICT_ROWS

    # Inference

    def infer(self, call: Call, request: InferRequest) -> InferResponse:
        """Decode and preprocess the inputs, run them through the version's batcher, and
        build the outputs asked for."""
        service = call.lease(request.model, request.version, request.label)
        started = time.perf_counter()
        try:
            batch, images = model_batch(service, request.inputs, request.keep_pictures)
            call.stage("decode")
            probabilities = service.classify(batch, image=images[0] if len(images) == 1
                                             else None, trace=call.trace)
        except Exception as error:
            if call.routed and (not isinstance(error, ServingError)
                                or isinstance(error, Overloaded)):  # the server's fault
                self.rollout.trials.observe(service, None, 0.0, _rerun(request))
            raise
        if call.routed:
            self.rollout.trials.observe(service, probabilities, time.perf_counter() - started,
                                        _rerun(request))
        return call.answered(request, InferResponse(
            service.name, service.version, service.labels, probabilities,
            outputs(service.labels, probabilities, request.outputs), batch, images))

    def explain(self, call: Call, request: InferRequest, label: str | None
                ) -> tuple[InferResponse, list[Explanation], list[bytes | None]]:
        """`infer`, then a heatmap per row for `label` (None: each row's top label), and
        per uploaded row a PNG of it over the picture (None for numeric rows)."""
        answer = self.infer(call, InferRequest(request.model, request.version, request.label,
                                               request.inputs, request.outputs,
                                               keep_pictures=True))
        service = call.lease()
        explained = service.explain_model_input(answer.batch, answer.probabilities,
                                                [label] * len(answer.batch))
        overlays = [None if image is None or image.display is None
                    else service.overlay(image.display, explanation.heatmap)
                    for image, explanation in zip(answer.images, explained, strict=True)]
        return answer, explained, overlays

    # Metadata and readiness

    def server_metadata(self) -> ServerMetadata:
        return ServerMetadata("h5serve", VERSION, EXTENSIONS)

    def model_metadata(self, call: Call, name: str | None = None,
                       version: int | str | None = None, label: str | None = None
                       ) -> ModelMetadata:
        """The leased version's input and output, and every served version of its model."""
        service = call.lease(name, version, label)
        served = self.models.table.get(service.name)
        binary = bool(service.classifier.output_spec and service.classifier.output_spec.binary)
        return ModelMetadata(
            service.name, service.version, tuple(sorted(served.versions)) if served else (),
            "keras_h5",
            (TensorMetadata(service.classifier.input_name, "FP32",
                            (-1, *service.spec.model_shape)),),
            (TensorMetadata(OUTPUT_NAME, "FP32", (-1, len(service.labels))),), binary)

    def ready(self) -> bool:
        """The server is ready: every served version loaded, warmed up, batcher running."""
        table = self.models.table
        return bool(table) and all(s.ready for m in table.values() for s in m.versions.values())

    def model_ready(self, call: Call, name: str | None, version: int | str | None = None
                    ) -> bool:
        return call.lease(name, version).ready

    def default_model(self) -> str | None:
        """The model the seed routes and the page answer with."""
        return self.models.default_name

    def served_models(self) -> list[ModelSummary]:
        return [ModelSummary(m.name, tuple(sorted(m.versions)), dict(m.labels))
                for m in self.models.table.values()]

    def version_states(self, call: Call, name: str, version: int | str | None = None,
                       label: str | None = None) -> dict[int, VersionState]:
        """TF Serving's model status: every version of `name` it knows (served, loading,
        ended), or the one asked for by number or by label; UnknownModel when none."""
        wanted = call.lease(name, None, label).version if label \
            else version_number(name, version or None)
        states = {v: st for (n, v), st in self.models.states.items()
                  if n == name and wanted in (None, v)}
        if not states:
            raise UnknownModel(f"unknown model {name!r}")
        return states

    # The model repository

    def repository_index(self) -> list[RepositoryEntry]:
        """Every version this worker knows: READY (served), LOADING, UNLOADING or
        UNAVAILABLE, with the reason it failed."""
        served = {(m.name, v) for m in self.models.table.values() for v in m.versions}
        trials = {name: self.rollout_status(name) for name, _ in self.models.states}
        return [RepositoryEntry(name, version, "READY" if (name, version) in served
                                else _V2_STATES.get(state.state, "UNAVAILABLE"), state.error,
                                trial if trial and trial["candidate"] == version else None)
                for (name, version), state in sorted(self.models.states.items())
                for trial in (trials[name],)]

    def rollout_status(self, name: str) -> dict[str, Any] | None:
        """The model's roll-out: its candidate, state, bounds and pooled evidence."""
        return self.rollout.trials.status(name)

    def decide_rollout(self, name: str, promote: bool, admin: bool, who: str
                       ) -> dict[str, Any]:
        """An admin promotes the candidate, or aborts the roll-out (rolled back), in
        every worker: this one at once, the others within a second."""
        if not admin:
            raise Forbidden("roll-out promote and abort need AUTH=keys and a key marked "
                            "admin in API_KEYS_FILE")
        status = self.rollout.trials.decide(
            name, PROMOTE if promote else ROLL_BACK,
            "promoted by hand" if promote else "aborted by hand", f"admin {who}")
        if status is None:
            raise UnknownModel(f"model {name!r} has no roll-out: its card names no "
                               "candidate beside a current version")
        self.rollout.reconcile()
        return status

    def set_loaded(self, name: str, loaded: bool, admin: bool) -> None:
        """Serve a model on disk again, or stop serving it (after its requests), in every
        worker: this one at once, the others at their next look at the repository."""
        if not admin:
            raise Forbidden("repository load and unload need AUTH=keys and a key marked "
                            "admin in API_KEYS_FILE")
        if loaded and name not in self.rollout.sources():
            raise UnknownModel(f"unknown model {name!r}: not in the model repository")
        self.rollout.set_unloaded(name, not loaded)
        if loaded and name not in self.models.table:
            state = next((s for (n, _), s in self.models.states.items() if n == name
                          and s.error), None)
            raise InvalidInput("load_failed", f"failed to load {name!r}: "
                               f"{state.error if state else 'no version the policy serves'}")


def _rerun(request: InferRequest) -> Any:
    """The request's inputs through another version's own preprocessing and model (a
    roll-out's mirror run)."""
    return lambda other: other.batcher.submit(model_batch(other, request.inputs)[0])
