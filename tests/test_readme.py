"""The README is a front door, and its commands and links work when followed.

Every shell command in the README's Quick start and One request per protocol sections, and
every one on docs/protocols.md (`make` excluded: the suite is itself `make test`), runs with
bash from the repository root against a live server, with the server's free ports in place
of 5000 (HTTP) and 8501 (gRPC). Each must exit 0 and print JSON that is no error. The
README stays small, every relative link in the documentation reaches a file (and, with an
`#anchor`, a heading of it), and every page in docs/ is reachable from the README.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import ROOT, free_port, gunicorn

from app.config import DEFAULT_MODEL_PATH

pytestmark = [pytest.mark.slow]

README = ROOT / "README.md"
MAX_README_BYTES = 16_000
# Which shell blocks run: a page and its `## ` sections (None: the whole page).
RUN = {README: ("## Quick start", "## One request per protocol"),
       ROOT / "docs" / "protocols.md": None}
HTTP, GRPC = "127.0.0.1:5000", "127.0.0.1:8501"
PAGES = sorted([README, ROOT / "bench" / "README.md", *(ROOT / "docs").glob("*.md")])
FENCED = re.compile(r"^ *```.*?^ *```", re.S | re.M)  # code blocks, also indented in lists


def shell_commands(text: str, sections: tuple[str, ...] | None) -> list[str]:
    """The shell commands of a page's sections, continuation lines joined."""
    commands = []
    for title in sections or ("",):
        body = text[text.index(title):]
        if title:
            body = body[:body.find("\n## ", 1)]
        for block in re.findall(r"```sh\n(.*?)```", body, re.S):
            joined = re.sub(r"\\\n\s*", " ", block)
            commands += [line.split("  #")[0].strip() for line in joined.splitlines()
                         if line.strip() and not line.lstrip().startswith(("#", "make "))]
    return commands


COMMANDS = [command for page, sections in RUN.items()
            for command in shell_commands(page.read_text(), sections)]


@pytest.fixture(scope="module")
def ports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    log = tmp_path_factory.mktemp("readme") / "gunicorn.log"
    grpc = f"127.0.0.1:{free_port()}"
    with gunicorn(DEFAULT_MODEL_PATH, log, GRPC_BIND=grpc) as (url, _):
        yield {HTTP: url.removeprefix("http://"), GRPC: grpc}


def test_the_readme_has_commands_to_try() -> None:
    assert len(COMMANDS) >= 8 and all(HTTP in c or GRPC in c for c in COMMANDS), COMMANDS
    front_door = shell_commands(README.read_text(), RUN[README])
    for door in ("/predictlabel", "/predict ", "/v1/models/", "/v2/models/", GRPC):
        assert any(door in c + " " for c in front_door), f"the README has no request to {door}"


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command_works_when_pasted(command: str, ports: dict[str, str]) -> None:
    for written, served in ports.items():
        command = command.replace(written, served)
    result = subprocess.run(["bash", "-o", "pipefail", "-c", command],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert not (isinstance(answer, dict) and ("error" in answer
                                              or answer.get("success") is False)), answer


def test_files_the_readme_names_exist() -> None:
    """Paths in `@file`, `$(base64 ... file)` and `open(file)` arguments are real files."""
    named = {m for c in COMMANDS
             for m in re.findall(r"(?:@|-w0 |open\(\")(static/[\w./-]+)", c)}
    assert named and all(Path(ROOT / name).is_file() for name in named), named


def test_the_readme_is_a_front_door() -> None:
    assert len(README.read_bytes()) <= MAX_README_BYTES


def github_slug(heading: str) -> str:
    """GitHub's anchor for a heading: lowercase, punctuation dropped, spaces to '-'."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def prose(text: str) -> str:
    """A page without its fenced code blocks and inline code spans."""
    text = re.sub(FENCED, "", text)
    return re.sub(r"`[^`\n]*`", "", text)


def anchors(page: Path) -> set[str]:
    """Every heading's anchor on a page; a repeated heading gets -1, -2..., as on GitHub."""
    seen: dict[str, int] = {}
    found = set()
    text = re.sub(FENCED, "", page.read_text())
    for heading in re.findall(r"^#{1,6} +(.+?) *#* *$", text, re.M):
        slug = github_slug(heading)
        found.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
        seen[slug] = seen.get(slug, 0) + 1
    return found


def relative_links(page: Path) -> list[str]:
    """The targets of a page's Markdown links and images that stay in the repository."""
    targets = re.findall(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", prose(page.read_text()))
    return [t for t in targets if not re.match(r"[a-z][a-z0-9+.-]*:", t)]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_reaches_a_file_and_a_heading(page: Path) -> None:
    for link in relative_links(page):
        path, _, anchor = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        assert target.exists(), f"{page.name}: {link} names no file"
        if anchor:
            assert anchor in anchors(target), f"{page.name}: {link} names no heading"


def test_the_link_checker_sees_links_and_headings() -> None:
    """A checker that finds nothing passes everything: it must see what is there."""
    assert github_slug("Deploy on CentOS with Docker Compose (or podman)") == \
        "deploy-on-centos-with-docker-compose-or-podman"
    assert github_slug("Without Docker: `scripts/stack.sh`") == "without-docker-scriptsstacksh"
    assert "roll-outs-and-roll-backs" in anchors(ROOT / "docs" / "operations.md")
    assert "docs/img/page.png" in relative_links(README)


def test_every_docs_page_is_linked_from_the_readme() -> None:
    linked = {(ROOT / link.partition("#")[0]).resolve() for link in relative_links(README)}
    pages = {*(ROOT / "docs").glob("*.md"), ROOT / "bench" / "README.md"}
    assert pages <= linked, sorted(str(p.relative_to(ROOT)) for p in pages - linked)
