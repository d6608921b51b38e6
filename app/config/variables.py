"""How an environment variable is declared once and read: a dataclass field with its doc.

A settings class lists its variables as fields (name, type, default) made by `variable`,
whose one-line doc is the row docs/settings.md shows (scripts/settings_doc.py), so a new
variable cannot be read without being documented. Standard library only: gunicorn's
master reads its variables through here and must load neither TensorFlow nor Flask.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Self


def variable(default: Any, doc: str, shown: str | None = None) -> Any:
    """A declared variable. `shown` is the default as the docs say it, where the value
    itself would mislead (a path on this machine, a default worked out at use)."""
    return field(default=default, metadata={"doc": doc, "shown": shown})


@dataclass(frozen=True)
class Documented:
    """A variable only the deployment files (or another library) read: documented here so
    that docs/settings.md lists every variable, but never parsed by the service."""

    names: tuple[str, ...]  # a few that belong together share one row
    default: str  # as the docs show it
    doc: str


class EnvironmentSettings:
    """Base of a frozen dataclass of declared variables; field names are the variables'."""

    @classmethod
    def load(cls, overrides: Mapping[str, Any] | None = None,
             environ: Mapping[str, str] | None = None) -> Self:
        """Build settings from `environ` (default: os.environ), then `overrides`.

        A malformed value fails here, at startup, naming the variable.
        """
        environ = os.environ if environ is None else environ
        overrides = dict(overrides or {})
        values: dict[str, Any] = {}
        for declared in fields(cls):
            if declared.name in overrides:
                raw: Any = overrides.pop(declared.name)
            elif declared.name in environ:
                raw = environ[declared.name]
            else:
                continue
            values[declared.name] = _convert(declared.name, declared.default, raw,
                                             path="Path" in str(declared.type))
        if overrides:
            raise ValueError(f"unknown settings: {', '.join(sorted(overrides))}")
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        """Reject values that would make the service misbehave later (none by default)."""


def _parse_bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected a boolean (true/false), got {value!r}")


def _convert(name: str, default: Any, raw: Any, path: bool) -> Any:
    if path:
        return None if raw is None or raw == "" else Path(raw)
    if not isinstance(raw, str) or default is None:
        return raw
    try:
        if isinstance(default, bool):
            return _parse_bool(raw)
        return type(default)(raw)
    except ValueError as exc:
        raise ValueError(f"invalid value for {name}: {exc}") from None
