"""The code's layers stay layers: imports run http -> protocols -> runtime, never back.

Read from the source with `ast` (every import, also those inside functions), so a new
module is checked the day it lands. The runtime must also load without Flask: each of
its modules is imported in a fresh interpreter and `sys.modules` inspected.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "app"

# Rank of each place in app/: a module may import only modules of its own rank or lower.
# config and metrics sit beneath every layer; the package root (create_app) above all.
RANKS = {"config": 0, "metrics": 0, "runtime": 1, "protocols": 2, "http": 3, "": 4}
WEB_LIBRARIES = ("flask", "werkzeug", "flask_cors")
WEB_FREE = ("runtime", "config", "metrics")


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def place(module: str) -> str:
    """`app.protocols.rest.v2` -> "protocols", `app.config` -> "config", `app` -> ""."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every import in the file; `from app import http` names app.http."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level or not node.module:
                raise AssertionError(f"{path}:{node.lineno}: use absolute imports")
            if node.module == "app":
                found += [(node.lineno, f"app.{a.name}" if a.name in RANKS else "app")
                          for a in node.names]
            else:
                found.append((node.lineno, node.module))
    return found


def violations(root: Path = ROOT) -> list[str]:
    """Every import that runs against the direction, or loads Flask into the runtime."""
    problems = []
    for path in sorted((root / "app").rglob("*.py")):
        importer = module_name(path, root)
        if place(importer) not in RANKS:
            problems.append(f"{path}: not in a layer package ({', '.join(p for p in RANKS if p)})")
            continue
        for line, target in imported_modules(path):
            top = target.split(".")[0]
            if top in WEB_LIBRARIES and place(importer) in WEB_FREE:
                problems.append(f"{path}:{line}: {importer} imports {target} (the runtime, "
                                "config and metrics must load without Flask)")
            if top == "app" and (place(target) not in RANKS
                                 or RANKS[place(target)] > RANKS[place(importer)]):
                problems.append(f"{path}:{line}: {importer} imports {target}, against the "
                                "direction http -> protocols -> runtime")
    return problems


def test_imports_run_one_way_and_the_runtime_has_no_flask() -> None:
    assert violations() == []


def test_the_check_catches_an_upward_import_and_flask_in_the_runtime(tmp_path: Path) -> None:
    """The test above can fail: a copy of the layout with two planted mistakes does."""
    runtime = tmp_path / "app" / "runtime"
    runtime.mkdir(parents=True)
    (tmp_path / "app" / "__init__.py").write_text("")
    (runtime / "__init__.py").write_text("")
    (runtime / "spec.py").write_text(
        "def f():\n    from flask import request\n    from app.protocols.errors import ApiError\n")
    found = violations(tmp_path)
    assert len(found) == 2, found
    assert "imports flask" in found[0] and "against the direction" in found[1]


def test_at_most_three_modules_at_the_top_and_none_too_long() -> None:
    top = sorted(p.name for p in APP.glob("*.py"))
    assert len(top) <= 3, top
    long = {str(p.relative_to(ROOT)): n for p in APP.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 200}
    assert long == {}


WEB_FREE_MODULES = [*sorted(module_name(p) for p in (APP / "runtime").rglob("*.py")),
                    "app.config", "app.metrics"]


@pytest.mark.parametrize("module", WEB_FREE_MODULES)
def test_runtime_module_loads_without_flask(module: str) -> None:
    code = ("import importlib, sys; importlib.import_module(sys.argv[1]); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            f"{set(WEB_LIBRARIES)!r}))")
    result = subprocess.run([sys.executable, "-c", code, module], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", f"{module} loads {result.stdout.strip()}"


# The gRPC doors and what they share with REST only convert: no web framework in them.
GRPC_DOOR_MODULES = [*sorted(module_name(p) for p in (APP / "protocols" / "grpc").rglob("*.py")),
                     "app.protocols.v2_codec", "app.protocols.status"]


def test_the_grpc_doors_import_no_web_framework_directly() -> None:
    found = [f"{module}:{line} imports {target}" for module in GRPC_DOOR_MODULES
             for line, target in imported_modules(ROOT / (module.replace(".", "/") + (
                 "/__init__.py" if (ROOT / module.replace(".", "/")).is_dir() else ".py")))
             if target.split(".")[0] in WEB_LIBRARIES]
    assert found == []


@pytest.mark.parametrize("module", GRPC_DOOR_MODULES)
def test_grpc_door_module_loads_without_flask(module: str) -> None:
    test_runtime_module_loads_without_flask(module)
