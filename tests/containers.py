"""The container engines the tests drive: our own dockerd and podman, via scripts/containers.sh.

`Engine` runs `docker` and `docker compose` against one engine (Docker, or podman through
its Docker-compatible socket). The engine, the base image and the project's images are
made once per test run (conftest's session fixtures) for every container test to reuse.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from servers import ROOT

SCRIPT = ROOT / "scripts" / "containers.sh"
IMAGES = ("h5serve:latest", "h5serve-nginx:latest")


# Debian's docker CLI (20.10) first: a newer CLI without buildx refuses BuildKit builds.
DOCKER = "/usr/bin/docker" if Path("/usr/bin/docker").exists() else "docker"


def script(*args: str, timeout: float = 600) -> None:
    """Run scripts/containers.sh; fail the test with its output if it fails."""
    result = subprocess.run([str(SCRIPT), *args], capture_output=True, text=True,
                            timeout=timeout, cwd=ROOT)
    if result.returncode != 0:
        raise AssertionError(f"scripts/containers.sh {' '.join(args)} failed "
                             f"(rc {result.returncode}):\n{result.stdout}\n{result.stderr}")


def engine_environment(engine: str) -> dict[str, str]:
    """What `scripts/containers.sh env docker|podman` exports: DOCKER_HOST and the rest."""
    line = subprocess.run([str(SCRIPT), "env", engine], capture_output=True, text=True,
                          check=True, cwd=ROOT).stdout.strip()
    return dict(word.split("=", 1) for word in line.removeprefix("export ").split())


def proxy_ca_bundle() -> str:
    """Locally added CAs (Debian's place for them), for a build behind an intercepting proxy."""
    folder = Path("/usr/local/share/ca-certificates")
    return "".join(path.read_text() for path in sorted(folder.glob("**/*.crt")))


@dataclass
class Engine:
    """One engine's `docker` CLI, and a compose project on it."""

    name: str
    env: dict[str, str]
    project: str = "h5serve-test"
    compose_env: dict[str, str] = field(default_factory=dict)

    def docker(self, *args: str, timeout: float = 300, check: bool = True,
               extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([DOCKER, *args], capture_output=True, text=True,
                                timeout=timeout, cwd=ROOT,
                                env={**os.environ, **self.env, **(extra_env or {})})
        if check and result.returncode != 0:
            raise AssertionError(f"[{self.name}] docker {' '.join(args)} failed "
                                 f"(rc {result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result

    def compose(self, *args: str, timeout: float = 300,
                check: bool = True) -> subprocess.CompletedProcess[str]:
        """`docker compose` on the project's own docker-compose.yml, with the project's env."""
        return self.docker("compose", "-p", self.project, "-f", str(ROOT / "docker-compose.yml"),
                           *args, timeout=timeout, check=check, extra_env=self.compose_env)

    def inspect(self, container: str) -> dict:
        return json.loads(self.docker("inspect", container).stdout)[0]

    def container(self, service: str) -> str:
        """The ID of a compose service's container."""
        ids = self.compose("ps", "-a", "-q", service).stdout.split()
        assert len(ids) == 1, f"[{self.name}] expected one {service} container, got {ids}"
        return ids[0]

    def project_leftovers(self) -> list[str]:
        """Containers and networks of the project that still exist."""
        label = f"label=com.docker.compose.project={self.project}"
        found = self.docker("ps", "-a", "-q", "--filter", label).stdout.split()
        found += self.docker("network", "ls", "-q", "--filter", label).stdout.split()
        return found


def image_ids(engine: Engine, names: tuple[str, ...]) -> list[str]:
    found = engine.docker("image", "inspect", "-f", "{{.Id}}", *names, check=False)
    return found.stdout.split() if found.returncode == 0 else []


def load_into_podman(docker: Engine, podman: Engine) -> None:
    """Copy the project's images from Docker into podman's store, unless already there.

    podman keeps the image IDs (config digests), so equal IDs mean the same images.
    """
    wanted = image_ids(docker, IMAGES)
    if image_ids(podman, IMAGES) == wanted:
        return
    saved = subprocess.run([DOCKER, "save", *IMAGES], capture_output=True, timeout=600,
                           env={**os.environ, **docker.env})
    assert saved.returncode == 0, saved.stderr.decode()
    loaded = subprocess.run(["podman", "load"], input=saved.stdout, capture_output=True,
                            timeout=600, env={**os.environ, **podman.env})
    assert loaded.returncode == 0, loaded.stderr.decode()
    assert image_ids(podman, IMAGES) == wanted, "podman load gave other images"
