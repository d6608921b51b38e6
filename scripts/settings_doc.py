"""Print docs/settings.md from the declarations in app/config/, so the page cannot drift:

    .venv/bin/python -m scripts.settings_doc > docs/settings.md

tests/test_settings_doc.py fails when the page and this output differ.
"""

from __future__ import annotations

from dataclasses import Field, fields
from typing import Any

from app.config import ServerSettings, Settings
from app.config.deployment import DEPLOYMENT, LIBRARIES
from app.config.variables import Documented

COMMAND = ".venv/bin/python -m scripts.settings_doc > docs/settings.md"
TYPES = {"int": "integer", "float": "number", "bool": "boolean", "str": "text", "Path": "path"}

HEAD = f"""\
# Settings

*Generated from the declarations in `app/config/` by `{COMMAND}`:
edit those and run it again, never this page (`tests/test_settings_doc.py` compares them).*

All settings come from environment variables; the defaults are safe for a small server.
The app reads the first group; gunicorn (`gunicorn.conf.py`), `scripts/stack.sh` and
docker compose (`.env`) the rest.
"""

APP = """\
## The app's settings

Read by every worker, and checked by gunicorn's master before any worker starts
(`Settings`, app/config/settings.py); a malformed value stops the start in one line
naming the variable.
"""

DEPLOYMENT_HEAD = """\
## The deployment files' variables

gunicorn's own (`ServerSettings`, app/config/server.py, read by `gunicorn.conf.py`) come
first; then those of `docker-compose.yml` and its `.env` (`.env.example`),
`scripts/stack.sh`, `deploy/swarm/stack.yml` and nginx's templates (app/config/deployment.py).
"""

LIBRARIES_HEAD = """\
## Other libraries' variables

Not h5serve's settings: variables of the libraries it runs, which it sets when unset or
consults (app/config/deployment.py).
"""


def type_name(declared: Field[Any]) -> str:
    """`Path | None` -> "path": the kind of value, as the page names it."""
    return TYPES[str(declared.type).removesuffix(" | None")]


def default_text(declared: Field[Any]) -> str:
    """The default as people read it: a declared wording, else the value itself."""
    if declared.metadata["shown"] is not None:
        return declared.metadata["shown"]
    if declared.default in (None, ""):
        return "unset"
    if isinstance(declared.default, bool):
        return f"`{str(declared.default).lower()}`"
    return f"`{declared.default}`"


def settings_rows(cls: type) -> list[str]:
    """One row per variable a settings class declares: name, type, default, doc."""
    return [f"| `{d.name}` | {type_name(d)} | {default_text(d)} | {d.metadata['doc']} |"
            for d in fields(cls)]


def documented_rows(variables: tuple[Documented, ...]) -> list[str]:
    """One row per group of documented variables: `A` / `B`, their defaults, their doc."""
    return [f"| {' / '.join(f'`{n}`' for n in v.names)} | | {v.default} | {v.doc} |"
            for v in variables]


def table(rows: list[str]) -> str:
    return "\n".join(["| variable | type | default | meaning |",
                      "| --- | --- | --- | --- |", *rows]) + "\n"


def render() -> str:
    """The whole page, as docs/settings.md holds it."""
    return "\n".join([
        HEAD, APP, table(settings_rows(Settings)),
        DEPLOYMENT_HEAD, table(settings_rows(ServerSettings) + documented_rows(DEPLOYMENT)),
        LIBRARIES_HEAD, table(documented_rows(LIBRARIES)),
    ])


if __name__ == "__main__":
    print(render(), end="")
