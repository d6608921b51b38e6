"""A model prepared once per host: what reading it with TensorFlow found, written down.

Reading a Keras file takes TensorFlow: load it with the right Keras, work out its input,
preprocessing and head, run the card's self-check, convert it and pick the runtime. And
TensorFlow is most of a worker's memory. So a worker without TensorFlow has a child
process do it (`python -m app.http.prepare`: a fresh interpreter, never a fork of one that
imported TensorFlow), once per model file, card, examples and settings on this host,
under the runtime cache's lock: the second worker waits, a restart finds the result.
The result is a small JSON file beside the converted models; the worker then loads only
the chosen runtime's artefact. A model served by TensorFlow itself is loaded in the
worker, as before; so is every model where TensorFlow is already imported (tests, the
CLI): preparing there costs nothing extra.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from app.config import Settings
from app.runtime.engines.cache import cache_entry, file_digest
from app.runtime.labelled_folders import examples_folder
from app.runtime.loading import ModelLoadError
from app.runtime.model_card import Example, ModelCard
from app.runtime.offload import run_process
from app.runtime.preprocessing import Choice
from app.runtime.self_check import LabelledExample
from app.runtime.spec import ImageSpec, OutputSpec

log = logging.getLogger(__name__)
FILE = "prepared.json"
FORMAT = 2  # of prepared.json: a result written by an older h5serve is prepared again
# Settings that change what preparing finds (the rest, ports and logs, do not).
_DECIDING = ("SELF_CHECK", "CALIBRATE", "RUNTIME", "RUNTIME_PRECISION", "RUNTIME_PARITY",
             "MAX_BATCH_SIZE", "RUNTIME_TIMING_SECONDS", "MAX_IMAGE_PIXELS")
_LIBRARIES = ("tensorflow", "keras", "tf_keras", "onnxruntime", "tf2onnx", "onnx", "openvino")


@dataclass(frozen=True)
class Prepared:
    """What a worker needs to serve a model without reading it with TensorFlow."""

    card: ModelCard  # as applied (a labelled examples folder may change it)
    image_spec: ImageSpec
    output_spec: OutputSpec
    choices: dict[str, Choice]
    calibrated: dict[str, Any] | None  # what a labelled examples folder found
    input_name: str
    runtime: str  # the runtime that serves it
    artefact: str  # that runtime's converted model ("" for tensorflow)
    reason: str  # why that runtime
    candidates: list[dict[str, Any]]  # every runtime tried (app.runtime.engines.decisions)
    versions: dict[str, str | None]  # the libraries that read it, for GET /model
    seconds: float  # how long preparing took
    batch_limit: int  # the biggest batch worth forming (app.runtime.engines.timing)
    batch_rates: dict[str, float]  # images/s by batch size, behind that limit

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, default=sorted)  # sets: the card's pinned

    @classmethod
    def from_json(cls, text: str) -> Prepared:
        stored = json.loads(text)
        if "error" in stored:
            raise ModelLoadError(stored["error"])
        output, card = stored["output_spec"], stored["card"]
        return cls(**{**stored, "image_spec": ImageSpec(**_frozen(stored["image_spec"])),
                      "card": ModelCard(**{**_frozen(card), "labels": card["labels"],
                                           "examples": tuple(Example(**e) for e in
                                                             card["examples"]),
                                           "pinned": frozenset(card["pinned"])}),
                      "output_spec": OutputSpec(tuple(output["labels"]), output["kind"]),
                      "choices": {k: Choice(**c) for k, c in stored["choices"].items()}})


def _frozen(fields: dict[str, Any]) -> dict[str, Any]:
    """JSON's lists back to the tuples frozen dataclasses hold (sizes, means, stds)."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()}


def _canonical(card: ModelCard) -> bytes:
    """The card as bytes that are the same in every process (a frozenset's repr is not:
    its order follows the per-process string hash)."""
    return json.dumps(asdict(card), sort_keys=True, default=sorted).encode()


def failure(message: str) -> str:
    """A model that cannot be served, stored like a result: every worker says the same."""
    return json.dumps({"error": message})


def prepared_key(path: Path, card: ModelCard, examples: list[LabelledExample],
                 settings: Settings) -> str:
    """What decides the result: the file, the card as read, its examples' bytes, the
    labelled examples folder's files, the deciding settings and the libraries' versions
    (read without importing them)."""
    digest = file_digest(path)
    digest.update(f"format {FORMAT}|".encode())
    digest.update(_canonical(card))
    for example in examples:
        digest.update(f"|{example.file}|{example.label}|".encode())
        digest.update(hashlib.sha256(example.data).digest())
    folder = examples_folder(path)  # the labelled examples that calibrate it
    for file in sorted(folder.rglob("*")) if folder else ():
        stat = file.stat()
        digest.update(f"|{file.relative_to(folder)}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    digest.update(repr([getattr(settings, name) for name in _DECIDING]).encode())
    digest.update(repr([_version(name) for name in _LIBRARIES]).encode())
    return digest.hexdigest()[:32]


def prepare(request: dict[str, Any], key: str, settings: Settings) -> Prepared | None:
    """The stored result for `key`, or a child's, made now; None where results cannot be
    kept (no writable RUNTIME_CACHE_DIR): the caller then reads the model itself.
    `request` is what the child needs (app.http.prepare): the model and the settings."""
    with cache_entry(settings.RUNTIME_CACHE_DIR, key, "prepared") as entry:
        if not entry.persistent:
            return None
        path = entry.folder / FILE
        if entry.ready:
            log.info("%s: prepared earlier on this host (%s)", request["path"], entry.folder)
            return Prepared.from_json(path.read_text())
        log.info("%s: preparing it in a separate process (TensorFlow stays out of this "
                 "worker)", request["path"])
        code = run_process([sys.executable, "-m", "app.http.prepare",
                            json.dumps({**request, "output": str(path)}, default=str)])
        if code not in (0, None) or not path.is_file():  # the child writes it last
            raise ModelLoadError(f"{request['path']}: preparing the model failed (exit code "
                                 f"{code}); the log above says why")
        entry.mark_done()
        prepared = Prepared.from_json(path.read_text())
        log.info("%s: prepared in %.1f s (in a separate process): runtime %s", request["path"],
                 prepared.seconds, prepared.runtime)
        return prepared


def stored(path: Path, card: ModelCard, examples: list[LabelledExample], settings: Settings
           ) -> Prepared | None:
    """What this host prepared for the model under `settings`, if it has (flask inspect
    shows it); nothing is created or locked to find out."""
    if settings.RUNTIME_CACHE_DIR is None:
        return None
    file = settings.RUNTIME_CACHE_DIR / prepared_key(path, card, examples, settings) \
        / "prepared" / FILE
    try:
        return Prepared.from_json(file.read_text())
    except (OSError, ModelLoadError):  # not prepared yet, or refused (the log says why)
        return None


def settings_overrides(settings: Settings) -> dict[str, Any]:
    """Every setting as the child's overrides, so it prepares under the worker's own."""
    return {name: (str(value) if isinstance(value, Path) else value)
            for name, value in asdict(settings).items()}


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution.replace("_", "-"))
    except metadata.PackageNotFoundError:
        return ""


