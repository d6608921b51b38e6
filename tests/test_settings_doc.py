"""docs/settings.md is the declarations' own output, and nothing reads an undeclared variable.

The page is generated (scripts/settings_doc.py), so it cannot drift from app/config/; the
source is read with `ast` for every `os.environ` / `os.getenv` use, and the deployment
files with regular expressions for every `${NAME}`, so a new variable cannot skip the
declarations (and with them the page).
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from dataclasses import fields
from pathlib import Path

import yaml

from app.config import ServerSettings, Settings
from app.config.deployment import DEPLOYMENT, LIBRARIES
from scripts.settings_doc import COMMAND, render

ROOT = Path(__file__).resolve().parent.parent
DECLARED = [*(f.name for cls in (Settings, ServerSettings) for f in fields(cls)),
            *(name for v in DEPLOYMENT + LIBRARIES for name in v.names)]


def test_the_page_is_the_generator_s_output() -> None:
    assert (ROOT / "docs" / "settings.md").read_text() == render(), f"run: {COMMAND}"


def test_every_variable_is_declared_once() -> None:
    assert [name for name, n in Counter(DECLARED).items() if n > 1] == []


def _is_os(node: ast.expr, name: str) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == name
            and isinstance(node.value, ast.Name) and node.value.id == "os")


def environment_reads(source: str) -> list[tuple[int, ast.expr]]:
    """(line, name expression) of each `os.environ[...]`, `os.environ.get/setdefault/pop`,
    `os.getenv` and `... in os.environ` in the source."""
    reads = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Subscript) and _is_os(node.value, "environ"):
            reads.append((node.lineno, node.slice))
        elif isinstance(node, ast.Call) and node.args and (
                _is_os(node.func, "getenv") or (
                    isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("get", "setdefault", "pop")
                    and _is_os(node.func.value, "environ"))):
            reads.append((node.lineno, node.args[0]))
        elif isinstance(node, ast.Compare) and any(_is_os(c, "environ")
                                                   for c in node.comparators):
            reads.append((node.lineno, node.left))
    return reads


def undeclared_reads(paths: list[Path]) -> list[str]:
    """Each read whose name is not a declared variable, or not a literal at all."""
    problems = []
    for path in paths:
        for line, name in environment_reads(path.read_text()):
            if not (isinstance(name, ast.Constant) and name.value in DECLARED):
                problems.append(f"{path}:{line}: {ast.unparse(name)}")
    return problems


def test_the_app_and_gunicorn_read_only_declared_variables() -> None:
    sources = [*sorted((ROOT / "app").rglob("*.py")), ROOT / "gunicorn.conf.py"]
    assert len(sources) > 20
    assert undeclared_reads(sources) == []


def test_the_check_catches_an_undeclared_or_computed_name(tmp_path: Path) -> None:
    """The test above can fail: each kind of read, with a name nobody declared."""
    planted = tmp_path / "planted.py"
    planted.write_text("import os\nos.environ['NOPE_A']\nos.environ.get('NOPE_B')\n"
                       "os.getenv('NOPE_C')\n'NOPE_D' in os.environ\n"
                       "os.environ.setdefault(name, '1')\nos.environ.get('WORKERS')\n")
    found = [p.split(": ", 1)[1] for p in undeclared_reads([planted])]
    assert found == ["'NOPE_A'", "'NOPE_B'", "'NOPE_C'", "'NOPE_D'", "name"], found


def test_every_variable_of_the_deployment_files_is_declared() -> None:
    """What compose, its .env, Swarm and scripts/stack.sh read from the environment, and
    what compose passes to the app, are all on the page."""
    used = set()
    for name in ("docker-compose.yml", "deploy/swarm/stack.yml", "scripts/stack.sh"):
        used |= set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", (ROOT / name).read_text()))
    used |= set(re.findall(r"^([A-Z_][A-Z0-9_]*)=", (ROOT / ".env.example").read_text(),
                           re.MULTILINE))
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    used |= set(compose["services"]["app"]["environment"])
    assert sorted(used - set(DECLARED)) == []
