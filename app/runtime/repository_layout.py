"""The model repository on disk: which models and versions exist, and which to serve.

    models/<name>/<version>/<file>.h5 (or .keras)   TF Serving's layout, version >= 1
    models/<name>/<name>.json                        card for every version (optional)
    models/<stem>.h5 + models/<stem>.json            a flat file: model <stem>, version 1

A version's own card beside its file wins over the model-level one. The model-level card
may say which versions to serve (`"versions"`: "latest", "all", {"latest": N} or
{"specific": [1, 3]}; default the latest one) and name some (`"version_labels"`:
{"stable": 1, "canary": 2}) and put one on trial (`"rollout"`, app.runtime.canary).
Reading the layout imports nothing heavy, so the gunicorn master can check it before
forking.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.runtime.canary.policy import PolicyError, RolloutPolicy
from app.runtime.model_card import ModelCardError, read_card_file
from app.runtime.model_file import ModelFileError, check_model_file

MODEL_SUFFIXES = (".h5", ".keras")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


class LayoutError(ValueError):
    """A model folder or card that cannot be used; the message names the path."""


@dataclass(frozen=True)
class VersionPolicy:
    """TF Serving's model_version_policy: the latest N, all, or specific versions."""

    kind: str = "latest"
    count: int = 1
    versions: tuple[int, ...] = ()

    @classmethod
    def parse(cls, value: Any, where: str) -> VersionPolicy:
        if value in (None, "latest"):
            return cls()
        if value == "all":
            return cls("all")
        if isinstance(value, dict) and set(value) == {"latest"} \
                and _positive_int(value["latest"]):
            return cls("latest", value["latest"])
        if isinstance(value, dict) and set(value) == {"specific"} \
                and isinstance(value["specific"], list) and value["specific"] \
                and all(map(_positive_int, value["specific"])):
            return cls("specific", versions=tuple(sorted(set(value["specific"]))))
        raise LayoutError(f'{where}: "versions" must be "latest", "all", {{"latest": N}} or '
                          f'{{"specific": [1, 2]}}, got {value!r}')

    def select(self, available: list[int]) -> list[int]:
        """The versions to serve out of those on disk, oldest first."""
        found = sorted(available)
        if self.kind == "all":
            return found
        if self.kind == "specific":
            return [v for v in found if v in self.versions]
        return found[-self.count:]


@dataclass(frozen=True)
class ModelSource:
    """One model as found on disk."""

    name: str
    files: dict[int, Path]  # every version on disk
    policy: VersionPolicy = VersionPolicy()
    version_labels: dict[str, int] = field(default_factory=dict)
    shared_card: Path | None = None
    rollout: RolloutPolicy | None = None

    def wanted(self) -> dict[int, Path]:
        """The versions the policy serves, with their files."""
        return {v: self.files[v] for v in self.policy.select(list(self.files))}


def stand_ins(served: Iterable[int], wanted: Iterable[int]) -> list[int]:
    """Served versions the policy no longer wants that go on answering meanwhile: the
    newest ones, one for each wanted version not served yet. A roll-out replaces a
    version, so the old one answers until its replacement is ready (or for good, if the
    replacement is refused), even once its files are gone (it is in memory)."""
    old = sorted(set(served) - set(wanted), reverse=True)
    return old[:len(set(wanted) - set(served))]


def single_file(path: Path, name: str) -> dict[str, ModelSource]:
    """MODEL_PATH mode: that one file is model `name`, version 1."""
    return {name: ModelSource(name, {1: path})}


def scan(root: Path) -> tuple[dict[str, ModelSource], list[str]]:
    """Every model under `root`, and one line for each entry that could not be used."""
    if not root.is_dir():
        raise LayoutError(f"MODEL_REPOSITORY={root}: not a folder")
    sources: dict[str, ModelSource] = {}
    problems: list[str] = []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        try:
            if entry.is_file() and entry.suffix in MODEL_SUFFIXES:
                source: ModelSource | None = ModelSource(_checked_name(entry.stem, entry),
                                                         {1: entry})
            else:
                source = _model_folder(entry) if entry.is_dir() else None
        except LayoutError as exc:
            problems.append(str(exc))
            continue
        if source is None:
            continue
        if source.name in sources:
            problems.append(f"{entry}: a second model named {source.name!r}; ignored")
            continue
        sources[source.name] = source
    return sources, problems


def _model_folder(folder: Path) -> ModelSource | None:
    """models/<name>/<version>/<file>; None for a folder with no version folders."""
    name = _checked_name(folder.name, folder)
    files: dict[int, Path] = {}
    for sub in folder.iterdir():
        if sub.is_dir() and sub.name.isdigit() and int(sub.name) > 0:
            models = sorted(p for p in sub.iterdir() if p.suffix in MODEL_SUFFIXES
                            and p.is_file())
            if len(models) > 1:
                raise LayoutError(f"{sub}: {len(models)} model files; a version holds one")
            if models:
                files[int(sub.name)] = models[0]
    if not files:
        return None
    card = folder / f"{name}.json"
    try:
        data = read_card_file(card) if card.is_file() else {}
        rollout = RolloutPolicy.parse(data.get("rollout"), str(card))
    except (ModelCardError, PolicyError) as exc:
        raise LayoutError(str(exc)) from None
    return ModelSource(name, files, VersionPolicy.parse(data.get("versions"), str(card)),
                       _version_labels(data.get("version_labels"), str(card)),
                       card if card.is_file() else None, rollout)


def _checked_name(name: str, where: Path) -> str:
    if not _NAME.match(name):
        raise LayoutError(f"{where}: a model name is letters, digits, '_', '.' and '-'")
    return name


def _version_labels(value: Any, where: str) -> dict[str, int]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
            isinstance(k, str) and _NAME.match(k) and _positive_int(v) for k, v in value.items()):
        raise LayoutError(f'{where}: "version_labels" must map names to versions, e.g. '
                          f'{{"stable": 1, "canary": 2}}, got {value!r}')
    return dict(value)


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def check_repository(root: Path) -> None:
    """Raise LayoutError unless at least one model under `root` looks servable (for the
    gunicorn master: reads a few bytes per file, imports no TensorFlow)."""
    sources, problems = scan(root)
    for source in sources.values():
        for path in source.wanted().values():
            try:
                check_model_file(path, where=str(path))
                return
            except ModelFileError as exc:
                problems.append(str(exc))
    if not problems:
        raise LayoutError(f"MODEL_REPOSITORY={root}: no model in it (models/<name>.h5, or "
                          "models/<name>/<version>/<file>.h5)")
    raise LayoutError(f"MODEL_REPOSITORY={root}: no servable model: {'; '.join(problems)}")


def fingerprint(path: Path) -> tuple[int, int] | None:
    """Size and modification time (a file still being copied changes between two looks);
    None when the file is gone."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns
