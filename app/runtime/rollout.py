"""Keep the served table in step with the models on disk: look, load, switch, unload.

Each worker looks every MODEL_POLL_SECONDS on its own (SIGHUP to gunicorn's master would
restart every worker). A new version is loaded and warmed in a real thread while the old
one serves; traffic switches once it is ready. A file must look the same twice in a row
(size and mtime) before it is loaded, so a copy in progress is never read half-written;
one that sat on disk unchanged (the previous version, when the newest is deleted) loads
at once. A version that fails to load or its self-check, or gets fewer of its model's
labelled examples right than the one it replaces, is refused with a log line and a
metric. What was served stays served until the policy's versions are ready, even with
its files deleted. Policies and labels are read, and changes published, at each look.
MAX_MODELS counts the versions the new table serves (one being replaced only drains).
"""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from app import metrics
from app.config import Settings
from app.runtime.calibrated_load import scores_worse
from app.runtime.canary.control import RolloutControl
from app.runtime.hidden_models import HiddenModels
from app.runtime.inference import InferenceService
from app.runtime.loading import ModelLoadError
from app.runtime.model_sources import DiskModels
from app.runtime.offload import ThreadRunner
from app.runtime.repository import ModelRepository, ServedModel, VersionState
from app.runtime.repository_layout import ModelSource, fingerprint, stand_ins

log = logging.getLogger(__name__)
SECOND_LOOK_S = 1.0  # a load request's wait before it looks at new files again


class Rollout:
    """Loads what the repository's layout and policies want into `repository`."""

    def __init__(self, repository: ModelRepository, settings: Settings) -> None:
        self.repository = repository
        self.settings = settings
        self._load_in_thread = ThreadRunner(1)
        self._seen: dict[tuple[str, int], tuple[int, int] | None] = {}
        self._failed: dict[tuple[str, int], tuple[int, int]] = {}
        self._disk = DiskModels(settings)
        self.hidden = HiddenModels(settings.H5SERVE_STATE_DIR)
        self.trials = RolloutControl(repository, settings.H5SERVE_STATE_DIR)
        self._looking = threading.Lock()  # the watcher and a repository request, one at a time

    def start(self) -> None:
        """Load every wanted version before serving; then watch, if polling is on.

        Raises ModelLoadError when nothing at all can be served.
        """
        self.reconcile(initial=True)
        if not self.repository.table:
            problems = [s.error for s in self.repository.states.values() if s.error]
            raise ModelLoadError("; ".join(problems + sorted(self._disk.problems))
                                 or f"MODEL_REPOSITORY={self.settings.MODEL_REPOSITORY}: "
                                    "no model files (.h5 or .keras) in it")
        if self.settings.MODEL_PATH is None and self.settings.MODEL_POLL_SECONDS > 0:
            threading.Thread(target=self._watch, name="model-watcher", daemon=True).start()

    def _watch(self) -> None:
        while True:
            time.sleep(self.settings.MODEL_POLL_SECONDS)
            try:
                self.reconcile()
            except Exception:  # one bad look must not end the watching
                log.exception("looking at MODEL_REPOSITORY failed; trying again")

    def sources(self) -> dict[str, ModelSource]:
        """The models on disk (MODEL_PATH's one, or the repository's), each with the
        versions its roll-out serves now."""
        return self.trials.apply(self._disk.read())

    def set_unloaded(self, name: str, unloaded: bool) -> None:
        """A repository request: stop serving `name` (after its requests), or serve it
        now. Every look fingerprints its files, so unchanged ones load at once; files
        this look saw first (copied in since the last poll, or polling off) get a second
        look a moment later, the watcher's own check that they stopped changing."""
        self.hidden.set(name, unloaded)
        self.reconcile()
        if not unloaded and name not in self.repository.table:
            time.sleep(SECOND_LOOK_S)
            self.reconcile()

    def reconcile(self, initial: bool = False) -> None:
        """One look at the disk: load what is new, then publish the new table."""
        with self._looking:
            self._reconcile(initial)

    def _reconcile(self, initial: bool) -> None:
        before = self.repository.table
        sources = self.sources()
        earlier, self._seen = self._seen, {(name, v): fingerprint(path)
                                           for name, source in sources.items()
                                           for v, path in source.files.items()}
        hidden = self.hidden.names()
        sources = {name: s for name, s in sources.items() if name not in hidden}
        room = self.settings.MAX_MODELS - sum(
            _holding(before[name].versions if name in before else {}, source.wanted())
            for name, source in sources.items())
        table: dict[str, ServedModel] = {}
        for name, source in sources.items():
            wanted = source.wanted()
            versions = dict(before[name].versions) if name in before else {}
            replacing = len(stand_ins(versions, wanted))  # loads that free a slot again
            for version, path in wanted.items():
                if version in versions or not self._ready(name, version, path, earlier,
                                                          initial):
                    continue
                if not replacing and room <= 0:
                    self._refuse((name, version), f"MAX_MODELS={self.settings.MAX_MODELS} "
                                 "versions are served already; raise MAX_MODELS if memory "
                                 "allows", versions)
                    continue
                service = self._load(name, version, path, source.shared_card, versions,
                                     initial)
                if service is None:
                    continue
                versions[version] = service
                if replacing:
                    replacing -= 1
                else:
                    room -= 1
            keep = set(wanted) | set(stand_ins(versions, wanted))
            versions = {v: s for v, s in versions.items() if v in keep}
            if versions:
                table[name] = ServedModel(name, versions, source.version_labels)
        if _signature(table) != _signature(before):  # versions, labels or models changed
            self.repository.publish(table)

    def _ready(self, name: str, version: int, path: Path,
               earlier: dict[tuple[str, int], tuple[int, int] | None], initial: bool) -> bool:
        """Not refused as it is, and (after start-up) unchanged since the last look: a
        version that sat on disk while another was served is loaded at once."""
        if initial:
            return True
        key = (name, version)
        seen = self._seen.get(key)
        if seen is None or self._failed.get(key) == seen:
            return False
        if earlier.get(key) != seen:
            log.info("model %s version %d found (%s); loading it once it stops changing",
                     name, version, path)
            return False
        return True

    def _load(self, name: str, version: int, path: Path, shared_card: Path | None,
              served: dict[int, InferenceService], initial: bool) -> InferenceService | None:
        """Load one version: inline before serving (TensorFlow's first import spawns
        processes, which gevent allows only on its main loop), later in a real thread."""
        key = (name, version)
        self.repository.states[key] = VersionState("LOADING")
        try:
            service = self.repository.load(name, version, path, shared_card,
                                           None if initial else self._load_in_thread)
        except Exception as exc:  # any broken file: h5py, Keras and TF raise many kinds
            if self.settings.MODEL_PATH is not None:
                raise
            message = str(exc) if isinstance(exc, ModelLoadError) else \
                f"{path}: {type(exc).__name__}: {exc}"
            return self._refuse(key, message, served, self._seen.get(key))
        older = [v for v in served if v < version]  # its model's examples: it regressed?
        worse = older and scores_worse(service.classifier.calibrated,
                                       served[max(older)].classifier.calibrated)
        if worse:
            service.close()
            metrics.record_unload(name, version)
            return self._refuse(key, worse, served, self._seen.get(key))
        self.repository.states[key] = VersionState("AVAILABLE")
        return service

    def _refuse(self, key: tuple[str, int], message: str, served: dict[int, InferenceService],
                seen: tuple[int, int] | None = None) -> None:
        """Log and count a version not loaded. A broken file (`seen`) is retried only once
        it changes; a version refused for room, at every look until there is room."""
        if seen is not None:
            self._failed[key] = seen
        elif self.repository.states.get(key) == VersionState("END", message):
            return None
        self.repository.states[key] = VersionState("END", message)
        metrics.record_load_failure(*key)
        log.error("model %s version %d refused: %s%s", *key, message,
                  f"; still serving version {max(served)}" if served else "")


def _holding(served: dict[int, InferenceService], wanted: dict[int, Path]) -> int:
    """Versions of one model that stay served whatever this look loads: the wanted ones
    already served and the stand-ins for the others (MAX_MODELS counts these, not the
    old versions that a roll-out is about to drain)."""
    return len(set(served) & set(wanted)) + len(stand_ins(served, wanted))


def _signature(table: dict[str, ServedModel]) -> dict[str, tuple[set[int], dict[str, int]]]:
    """What a new table changes: each model's served objects and its labels."""
    return {name: ({id(s) for s in model.versions.values()}, model.labels)
            for name, model in table.items()}
