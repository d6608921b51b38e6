"""h5serve: production serving for Keras image classifiers.

`create_app()` is the factory gunicorn calls in each worker (`app:create_app()`); the
model is loaded there, after the fork, never in the master. Flask is imported inside
it, so that importing `app.runtime` (benchmarks, the model alone) never loads Flask.

`flask --app app` calls the same factory, also just to find or list its commands
(`flask --app app inspect OTHER.h5`, `--help`): then it gets the commands alone, and no
model is loaded that the command did not ask for (app.http.cli).

Layers, imported one way only: app.http -> app.protocols -> app.runtime, with
app.config and app.metrics beneath all three.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the service (see app.http.factory); tests pass their own `config`."""
    from app.http.cli import building_to_find_commands, commands_app

    if config is None and building_to_find_commands():
        return commands_app()
    from app.http.factory import create_app as build

    return build(config)
