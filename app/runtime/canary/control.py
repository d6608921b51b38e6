"""Each worker's side of the roll-outs: what to serve, where to route, what to compare,
and the decisions, taken once for every worker.

The watcher's look at the disk passes its sources through `apply`, which starts and ends
trials as cards change and adds the candidate to what is served. Requests naming no
version are routed by `route` (inside the repository's lock, so the version it picks is
served). `observe` takes every routed answer; the mirror run goes to the ShadowRunner.
A loop every TICK_S publishes this worker's evidence, reads the pool and the decisions,
sets the metrics, and judges; the routing follows a decision within a tick in every
worker, and the next look unloads the version that lost.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from app.runtime.canary import series
from app.runtime.canary.rules import ROLL_BACK, judge
from app.runtime.canary.shadow import ShadowRunner
from app.runtime.canary.store import SharedStore
from app.runtime.canary.trial import Trial, without_refused
from app.runtime.errors import Overloaded, ServingError, UnknownModel
from app.runtime.inference import InferenceService
from app.runtime.repository import ModelRepository, ServedModel, VersionState
from app.runtime.repository_layout import ModelSource

log = logging.getLogger(__name__)
TICK_S = 0.5
DROP_NOTE_S = 60.0  # at most one "cannot keep up" line a minute per roll-out
Rerun = Callable[[InferenceService], np.ndarray]  # the request's inputs, on another version


class RolloutControl:
    """The trials of one worker, on its repository."""

    def __init__(self, repository: ModelRepository, state_dir: Any) -> None:
        self._repository = repository
        self._store = SharedStore(state_dir)
        self._trials: dict[str, Trial] = {}  # by model name; replaced whole
        self._shadow = ShadowRunner()
        self._looping = False
        self._noted_drops = 0.0

    def apply(self, sources: dict[str, ModelSource]) -> dict[str, ModelSource]:
        """The sources a look should serve: each roll-out's candidate added, or dropped
        once rolled back (for good, while its file is the same). At every look, so a card
        edit takes effect there."""
        sources, decided = dict(sources), self._store.decisions()
        refused = {key for key, d in decided.items() if d["decision"] == ROLL_BACK}
        trials: dict[str, Trial] = {}
        for name, source in list(sources.items()):
            sources[name] = source = without_refused(
                source, refused, source.rollout.candidate if source.rollout else None)
            trial = Trial.of(source)
            if trial is None:
                continue
            known = self._trials.get(name)
            if known is not None and known.key == trial.key:
                known.policy = trial.policy  # bounds may change mid-trial
                trial = known
            trial.decision = decided.get(trial.key)
            trials[name] = trial
            sources[name] = trial.serving(source)
        self._trials = trials
        if trials and not self._looping:
            self._looping = True
            threading.Thread(target=self._loop, name="rollout-judge", daemon=True).start()
        return sources

    def route(self, model: ServedModel, client: Callable[[], str]) -> int | None:
        trial = self._trials.get(model.name)  # who asks is read only for a model on trial
        return trial.route(model.versions, client()) if trial else None

    def observe(self, service: InferenceService, probabilities: np.ndarray | None,
                seconds: float, rerun: Rerun) -> None:
        """A routed request answered by `service` (probabilities None: it failed)."""
        trial = self._trials.get(service.name)
        if trial is None or trial.state != "running":
            return
        role = "candidate" if service.version == trial.candidate else "current"
        if probabilities is None:
            trial.evidence.error(role)
            return
        trial.evidence.answer(role, seconds)
        if random.random() >= trial.policy.shadow_sample:
            return
        other = self._other(trial, role)
        if other is None:
            return
        trial.evidence.sampled += 1
        if not self._shadow.offer(lambda: self._mirror(trial, role, other, probabilities,
                                                       rerun)):
            trial.evidence.dropped += 1
            series.dropped(trial.name, trial.candidate)
            self._note_drops(trial)

    def _other(self, trial: Trial, role: str) -> int | None:
        """The version to mirror to: the candidate (shadow), the current one (canary)."""
        served = self._repository.table.get(trial.name)
        if served is None or trial.candidate not in served.versions:
            return None
        if role == "current":
            return trial.candidate if trial.policy.mode == "shadow" else None
        return max((v for v in served.versions if v != trial.candidate), default=None)

    def _mirror(self, trial: Trial, role: str, version: int, answer: np.ndarray,
                rerun: Rerun) -> None:
        """Off the request path: run the request on the other version and compare."""
        try:
            other = self._repository.acquire(trial.name, version)
        except UnknownModel:
            return  # unloaded meanwhile
        try:
            started = time.perf_counter()
            try:
                mirrored = rerun(other)
            except Exception as error:
                if role == "current":  # the candidate failed where current answered
                    trial.evidence.error("candidate")
                    if not isinstance(error, ServingError) or isinstance(error, Overloaded):
                        log.warning("roll-out %s: the candidate failed a mirrored request: "
                                    "%s", trial.key, error)
                return
            if role == "current":
                trial.evidence.answer("candidate", time.perf_counter() - started)
                trial.evidence.compare(answer, mirrored)
            else:
                trial.evidence.compare(mirrored, answer)
        finally:
            self._repository.release(other)

    def _note_drops(self, trial: Trial) -> None:
        if time.monotonic() - self._noted_drops < DROP_NOTE_S:
            return
        self._noted_drops = time.monotonic()
        log.warning(trial.drop_note())

    def status(self, name: str) -> dict[str, Any] | None:
        return trial.status() if (trial := self._trials.get(name)) else None

    def decide(self, name: str, decision: str, reason: str, by: str) -> dict[str, Any] | None:
        """Promote or roll back `name`'s candidate now (an admin's call); None when the
        model has no roll-out. A roll-out decided already keeps its first decision."""
        trial = self._trials.get(name)
        if trial is not None:
            self._decide(trial, decision, reason, by)
        return trial.status() if trial is not None else None

    def _loop(self) -> None:
        while True:  # for the worker's life: a card may start a trial again
            time.sleep(TICK_S)
            try:
                self.tick()
            except Exception:  # one bad look must not end the judging
                log.exception("judging the roll-outs failed; trying again")

    def tick(self) -> None:
        """Publish, pool, show and judge every trial of this worker."""
        decided = self._store.decisions()
        for trial in list(self._trials.values()):
            self._store.publish(trial.key, trial.evidence)
            if not trial.evidence.started:
                trial.evidence.started = time.time()
            trial.pooled = self._store.pooled(trial.key)
            trial.decision = decided.get(trial.key, trial.decision)
            if trial.decision is None:
                verdict = judge(trial.policy, trial.pooled)
                if verdict is not None and trial.policy.auto:
                    self._decide(trial, verdict.decision, verdict.reason, "auto")
                elif verdict is not None and trial.recommended != verdict.decision:
                    trial.recommended = verdict.decision
                    log.warning("roll-out of model %s version %d: would be %s (auto is "
                                "off): %s", trial.name, trial.candidate,
                                verdict.decision.replace("_", " "), verdict.reason)
            self._mark_refused(trial)
            series.show(trial.name, trial.candidate, trial.status())

    def _decide(self, trial: Trial, decision: str, reason: str, by: str) -> None:
        record = {"decision": decision, "reason": reason, "by": by, "at": time.time(),
                  "evidence": trial.pooled.summary()}
        if self._store.decide(trial.key, record):
            log.warning("roll-out of model %s version %d %s (by %s): %s", trial.name,
                        trial.candidate, decision.replace("_", " "), by, reason)
        trial.decision = self._store.decisions().get(trial.key, record)

    def _mark_refused(self, trial: Trial) -> None:
        """A rolled-back candidate, once unloaded, is refused with its reason."""
        key = (trial.name, trial.candidate)
        state = self._repository.states.get(key)
        if trial.state == ROLL_BACK and (state is None or state.state == "END"):
            self._repository.states[key] = VersionState(
                "END", f"rolled back: {trial.decision['reason']}")  # type: ignore[index]

