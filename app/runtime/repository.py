"""The models a worker serves, by name and version, and the hand-over between versions.

Requests `acquire` a version and `release` it when answered. The table of served
versions is replaced whole, never edited in place, so a request sees either the old
table or the new one. A version leaves the table first and is closed only once no
request holds it (drained), so no request is cut off (app.runtime.rollout decides
what to load and when).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app import metrics
from app.config import Settings
from app.runtime.classifier import Classifier
from app.runtime.drift_sources import initial_reference
from app.runtime.errors import UnknownModel
from app.runtime.inference import InferenceService
from app.runtime.offload import ThreadRunner
from app.runtime.prediction_log import PredictionLog

log = logging.getLogger(__name__)
DRAIN_TIMEOUT_S = 60.0


def _inline(fn: Callable[..., Any], *args: Any) -> Any:
    return fn(*args)


@dataclass(frozen=True)
class ServedModel:
    """One model's served versions (at least one) and its version labels."""

    name: str
    versions: dict[int, InferenceService]
    labels: dict[str, int] = field(default_factory=dict)

    @property
    def latest(self) -> InferenceService:
        return self.versions[max(self.versions)]


@dataclass(frozen=True)
class VersionState:
    """TF Serving's ModelVersionStatus: LOADING, AVAILABLE, UNLOADING or END (+ error)."""

    state: str
    error: str = ""


class ModelRepository:
    """The served table, leases on its versions, and each version's state."""

    def __init__(self, settings: Settings, examples_dir: Path | None = None,
                 prediction_log: PredictionLog | None = None) -> None:
        self.settings = settings
        self.examples_dir = examples_dir
        self.prediction_log = prediction_log  # shared by every version
        self._table: dict[str, ServedModel] = {}
        self.states: dict[tuple[str, int], VersionState] = {}
        self._lock = threading.Lock()

    @property
    def table(self) -> dict[str, ServedModel]:
        return self._table

    @property
    def default_name(self) -> str | None:
        """DEFAULT_MODEL, else the only model, else the first by name."""
        if self.settings.DEFAULT_MODEL:
            return self.settings.DEFAULT_MODEL
        return min(self._table, default=None)

    def load(self, name: str, version: int, path: Path, shared_card: Path | None,
             run: ThreadRunner | None = None) -> InferenceService:
        """Load and warm one version (and, with DRIFT_REFERENCE, take the drift reference it
        starts with), the TensorFlow part through `run` (a real thread:
        seconds of C work must not stall the gevent hub). Its batcher is started here, on
        the caller's hub: a greenlet made in another thread would never run."""
        classifier = Classifier(path, self.settings,
                                examples_dir=self.examples_dir, name=name, version=version,
                                shared_card=shared_card)
        (run or _inline)(classifier.load)
        assert classifier.runtime is not None
        runtime = classifier.runtime.engine.name
        reference = (run or _inline)(initial_reference, classifier, self.settings) \
            if self.settings.DRIFT_REFERENCE else None
        service = InferenceService(classifier, self.settings,
                                   observer=metrics.batch_observer(name, version, runtime),
                                   prediction_log=self.prediction_log,
                                   drift_reference=reference)
        metrics.record_model(classifier.describe(), classifier.load_seconds or 0.0)
        return service

    def acquire(self, name: str | None = None, version: int | None = None,
                label: str | None = None,
                route: Callable[[ServedModel], int | None] | None = None) -> InferenceService:
        """The version a request asked for (default: the version `route` picks from the
        served ones, else the latest), held until `release`. Raises UnknownModel naming
        what is served."""
        name = name or self.default_name
        with self._lock:
            model = self._table.get(name or "")
            if model is None:
                raise UnknownModel(f"unknown model {name!r}; served: {self._served()}")
            if label is not None:
                if label not in model.labels:
                    raise UnknownModel(f"unknown version label {label!r} of model {name!r}; "
                                       f"labels: {', '.join(model.labels) or 'none'}")
                version = model.labels[label]
            elif version is None and route is not None:  # in the lock: it stays served
                version = route(model)
            service = model.latest if version is None else model.versions.get(version)
            if service is None:
                raise UnknownModel(f"unknown model {name!r} version {version}; "
                                   f"served: {self._served()}")
            service.leases += 1
            return service

    def release(self, service: InferenceService) -> None:
        with self._lock:
            service.leases -= 1

    def _served(self) -> str:
        return "; ".join(f"{m.name} (versions {', '.join(map(str, sorted(m.versions)))})"
                         for m in self._table.values()) or "none"

    def publish(self, table: dict[str, ServedModel]) -> None:
        """Switch traffic to `table`, then drain and close the versions it dropped."""
        with self._lock:
            before, self._table = self._table, table
        kept = {id(s) for m in table.values() for s in m.versions.values()}
        for model in before.values():
            for version, service in model.versions.items():
                if id(service) not in kept:
                    self._unload(model.name, version, service)

    def _unload(self, name: str, version: int, service: InferenceService) -> None:
        self.states[(name, version)] = VersionState("UNLOADING")
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while service.leases > 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        service.close()
        metrics.record_unload(name, version)
        self.states[(name, version)] = VersionState("END")
        log.info("model %s version %d unloaded (drained: %s)", name, version,
                 "yes" if service.leases <= 0 else f"no, {service.leases} still held")
