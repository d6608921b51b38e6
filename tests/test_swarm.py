"""Docker Swarm for real: a one-node swarm on the test's own engine runs deploy/swarm/stack.yml
with the project's images; under constant load the app scales from 1 to 3 replicas, rolls
out a new image and rolls a broken one back by itself, and not one request fails."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import yaml
from containers import DOCKER, Engine
from load import Load
from servers import ROOT, free_port

STACK = ROOT / "deploy" / "swarm" / "stack.yml"
NAME = "h5serve-swarm-test"
EXAMPLE = ROOT / "static" / "examples" / "bag.png"


@dataclass
class Swarm:
    engine: Engine
    env: dict[str, str]
    https: str
    cert: str

    def docker(self, *args: str, timeout: float = 300) -> str:
        return self.engine.docker(*args, timeout=timeout, extra_env=self.env).stdout

    def deploy(self) -> None:
        self.docker("stack", "deploy", "-c", str(STACK), NAME)

    def image(self) -> str:
        return self.docker("service", "inspect", "-f",
                           "{{.Spec.TaskTemplate.ContainerSpec.Image}}", f"{NAME}_app").strip()

    def update_state(self) -> str:
        found = json.loads(self.docker("service", "inspect", f"{NAME}_app"))[0]
        return (found.get("UpdateStatus") or {}).get("State", "")

    def running(self, image: str = "") -> int:
        """App tasks running (of `image`, when given)."""
        tasks = self.docker("service", "ps", "-q", "--filter", "desired-state=running",
                            f"{NAME}_app").split()
        if not tasks:
            return 0
        found = self.docker("inspect", "-f", "{{.Status.State}} {{.Spec.ContainerSpec.Image}}",
                            *tasks).splitlines()
        return sum(1 for line in found if line.startswith("running ")
                   and line.split()[1].startswith(image))


def _until(check, what: str, timeout: float = 240) -> float:
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout, f"swarm: {what} not within {timeout} s"
        time.sleep(1)
    return time.monotonic() - started


def _ready(url: str, cert: str) -> bool:
    try:
        return requests.get(url + "/readyz", verify=cert, timeout=5).status_code == 200
    except requests.RequestException:
        return False


@pytest.fixture(scope="module")
def swarm(project_images: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Swarm]:
    engine = project_images
    folder = tmp_path_factory.mktemp("swarm")
    subprocess.run([str(ROOT / "scripts" / "make-cert.sh"), str(folder)], check=True,
                   capture_output=True)
    # A new release, and a broken one (its model path does not exist): same layers.
    for tag, line in (("v2", "LABEL h5serve.release=2"),
                      ("broken", "ENV MODEL_PATH=/app/models/missing.h5")):
        subprocess.run([DOCKER, "build", "-q", "-t", f"h5serve:{tag}", "-"],
                       input=f"FROM h5serve:latest\n{line}\n", text=True, check=True,
                       capture_output=True, timeout=300, env={**os.environ, **engine.env})
    https_port = free_port()
    env = {"H5SERVE_IMAGE": "h5serve:latest", "APP_REPLICAS": "1", "WORKERS": "1",
           "HTTPS_PUBLISH_PORT": str(https_port), "HTTP_PUBLISH_PORT": str(free_port()),
           "TLS_CERT_FILE": str(folder / "fullchain.pem"),
           "TLS_KEY_FILE": str(folder / "privkey.pem"), "HEALTH_INTERVAL": "2s",
           "HEALTH_START_PERIOD": "20s", "UPDATE_MONITOR": "15s",
           "RATE_LIMIT": "5000r/s", "RATE_LIMIT_BURST": "5000"}
    engine.docker("swarm", "init", "--advertise-addr", "127.0.0.1")
    swarm = Swarm(engine, env, f"https://127.0.0.1:{https_port}", str(folder / "fullchain.pem"))
    try:
        swarm.deploy()
        _until(lambda: _ready(swarm.https, swarm.cert), "the stack answering /readyz")
        yield swarm
    finally:
        engine.docker("stack", "rm", NAME, check=False)
        _until(lambda: not engine.docker("ps", "-aq", "--filter",
                                         f"label=com.docker.stack.namespace={NAME}"
                                         ).stdout.split(), "the stack's containers gone", 120)
        engine.docker("swarm", "leave", "--force", check=False)
        for tag in ("v2", "broken"):
            engine.docker("image", "rm", f"h5serve:{tag}", check=False)


def test_scale_roll_out_and_roll_back_under_load_fail_no_request(swarm: Swarm) -> None:
    load = Load(swarm.https + "/predictlabel", swarm.cert, EXAMPLE.read_bytes())
    with load.running(8):
        time.sleep(3)
        swarm.docker("service", "scale", "--detach", f"{NAME}_app=3")
        scaled = _until(lambda: swarm.running() == 3, "3 replicas running")
        time.sleep(8)  # nginx re-resolves the service every 5 s: all three get traffic

        swarm.docker("service", "update", "--detach", "--image", "h5serve:v2",
                     f"{NAME}_app")
        rolled = _until(lambda: swarm.update_state() == "completed"
                        and swarm.running("h5serve:v2") == 3, "the roll-out")

        swarm.docker("service", "update", "--detach", "--image", "h5serve:broken",
                     f"{NAME}_app")
        back = _until(lambda: swarm.update_state() == "rollback_completed",
                      "the automatic rollback", 300)
        assert swarm.image().startswith("h5serve:v2") and swarm.running("h5serve:v2") == 3
        time.sleep(3)
    print(f"\nswarm: scaled 1->3 in {scaled:.0f} s, rolled out in {rolled:.0f} s, rolled "
          f"back in {back:.0f} s; {len(load.answers)} requests, {len(load.failures)} failed")
    assert load.failures == [] and len(load.answers) > 100


def test_the_stack_file_keeps_step_with_compose() -> None:
    stack = yaml.safe_load(STACK.read_text())
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    for service in ("app", "nginx"):
        ours, theirs = stack["services"][service], compose["services"][service]
        assert ours["read_only"] is theirs["read_only"] is True
    app_env, compose_env = stack["x-app-env"], compose["services"]["app"]["environment"]
    assert app_env["BIND"] == compose_env["BIND"]
    assert stack["services"]["app"]["healthcheck"]["test"] == \
        compose["services"]["app"]["healthcheck"]["test"]
    nginx = stack["services"]["nginx"]["environment"]
    compose_nginx = compose["services"]["nginx"]["environment"]
    assert set(compose_nginx) - {"NGINX_ENVSUBST_FILTER"} == set(nginx)
    assert stack["services"]["app"]["deploy"]["update_config"]["order"] == "start-first"
    assert stack["services"]["app"]["deploy"]["endpoint_mode"] == "dnsrr"
    assert Path(STACK.parent / "api-keys.none").is_file()
