"""The README's commands work when pasted: each one runs against a live server.

Every shell command in the Quick start, Endpoints and Standard protocols sections (`make`
excluded: the suite is itself `make test`) runs with bash from the repository root, with
the server's free port in place of 5000. Each must exit 0 and print JSON that is no error.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import ROOT, gunicorn

from app.config import DEFAULT_MODEL_PATH

SECTIONS = ("## Quick start", "## Endpoints", "## Standard protocols")


def readme_commands(text: str) -> list[str]:
    """The shell commands of the README's first sections, continuation lines joined."""
    commands = []
    for title in SECTIONS:
        body = text[text.index(title):]
        body = body[:body.find("\n## ", 1)]
        for block in re.findall(r"```sh\n(.*?)```", body, re.S):
            joined = re.sub(r"\\\n\s*", " ", block)
            commands += [line.split("  #")[0].strip() for line in joined.splitlines()
                         if line.strip() and not line.lstrip().startswith(("#", "make "))]
    return commands


COMMANDS = readme_commands((ROOT / "README.md").read_text())


@pytest.fixture(scope="module")
def port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("readme") / "gunicorn.log"
    with gunicorn(DEFAULT_MODEL_PATH, log) as (url, _):
        yield url.rsplit(":", 1)[1]


def test_the_readme_has_commands_to_try() -> None:
    assert len(COMMANDS) >= 8 and all("127.0.0.1:5000" in c for c in COMMANDS), COMMANDS


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command_works_when_pasted(command: str, port: str) -> None:
    result = subprocess.run(["bash", "-o", "pipefail", "-c",
                             command.replace("127.0.0.1:5000", f"127.0.0.1:{port}")],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert not (isinstance(answer, dict) and ("error" in answer
                                              or answer.get("success") is False)), answer


def test_files_the_readme_names_exist() -> None:
    """Paths in `@file` and `$(base64 ... file)` arguments are real files of the repository."""
    named = {m for c in COMMANDS for m in re.findall(r"(?:@|-w0 )(static/[\w./-]+)", c)}
    assert named and all(Path(ROOT / name).is_file() for name in named), named
