"""Docker Swarm for real: a one-node swarm on the test's own engine runs deploy/swarm/stack.yml
with the project's images and API keys on; under constant load the app scales from 1 to 3
replicas, rolls out a new image, rolls a broken one back by itself and rotates its API keys
(new secret versions), and not one request fails; the TLS secrets rotate too, and
`docker stack rm` leaves nothing behind."""

from __future__ import annotations

import json
import os
import re
import secrets
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

pytestmark = [pytest.mark.slow, pytest.mark.containers]

STACK = ROOT / "deploy" / "swarm" / "stack.yml"
NAME = "h5serve-swarm-test"
EXAMPLE = ROOT / "static" / "examples" / "bag.png"
KEY_A, KEY_B = secrets.token_urlsafe(24), secrets.token_urlsafe(24)


@dataclass
class KeyedLoad(Load):
    """Load's clients with an API key, which the test switches by setting `key` while
    they run (Load's own clients send none)."""

    key: str = ""

    def client(self) -> None:
        session = requests.Session()
        while not self.stop.is_set():
            key = self.key
            try:
                response = session.post(self.url, files={"image": ("image.png", self.image)},
                                        headers={"X-API-Key": key}, verify=self.cert,
                                        timeout=30)
            except requests.RequestException as exc:
                self.failures.append(repr(exc))
                session = requests.Session()
                continue
            self.answers.append((time.monotonic(), response.status_code, key))
            if response.status_code != 200:
                self.failures.append(f"{response.status_code} {response.text[:200]}")


@dataclass
class Swarm:
    engine: Engine
    env: dict[str, str]
    https: str
    cert: str
    folder: Path

    def docker(self, *args: str, timeout: float = 300) -> str:
        return self.engine.docker(*args, timeout=timeout, extra_env=self.env).stdout

    def deploy(self, **settings: str) -> None:
        """`docker stack deploy` with these settings added to the environment, kept for
        the next deploy (as a user keeps them in one env file)."""
        self.env.update(settings)
        self.docker("stack", "deploy", "-c", str(STACK), NAME)

    def stack_objects(self) -> dict[str, list[str]]:
        """What of the stack is left: services, containers, networks and secrets."""
        label = f"label=com.docker.stack.namespace={NAME}"
        return {kind: self.docker(*command, "-q", "--filter", label).split()
                for kind, command in (("services", ("service", "ls")),
                                      ("containers", ("ps", "-a")),
                                      ("networks", ("network", "ls")),
                                      ("secrets", ("secret", "ls")))}

    def secret_names(self) -> set[str]:
        return set(self.docker("secret", "ls", "--format", "{{.Name}}").split())

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
    (folder / "api-keys-1").write_text(f"alice {KEY_A}\n")
    env = {"H5SERVE_IMAGE": "h5serve:latest", "APP_REPLICAS": "1", "WORKERS": "1",
           "HTTPS_PUBLISH_PORT": str(https_port), "HTTP_PUBLISH_PORT": str(free_port()),
           "TLS_CERT_FILE": str(folder / "fullchain.pem"),
           "TLS_KEY_FILE": str(folder / "privkey.pem"), "HEALTH_INTERVAL": "2s",
           "HEALTH_START_PERIOD": "20s", "UPDATE_MONITOR": "15s",
           "AUTH": "keys", "CORS_ORIGINS": "", "API_KEYS_VERSION": "1",
           "API_KEYS_HOST_FILE": str(folder / "api-keys-1"),
           "RATE_LIMIT": "5000r/s", "RATE_LIMIT_BURST": "5000",
           "KEY_RATE_LIMIT": "5000r/s", "KEY_RATE_LIMIT_BURST": "5000"}
    engine.docker("swarm", "init", "--advertise-addr", "127.0.0.1")
    swarm = Swarm(engine, env, f"https://127.0.0.1:{https_port}", str(folder / "fullchain.pem"),
                  folder)
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
    load = KeyedLoad(swarm.https + "/predictlabel", swarm.cert, EXAMPLE.read_bytes(), key=KEY_A)
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


def _asks(swarm: Swarm, key: str) -> int:
    return requests.post(swarm.https + "/predictlabel", headers={"X-API-Key": key},
                         files={"image": ("bag.png", EXAMPLE.read_bytes())},
                         verify=swarm.cert, timeout=30).status_code


def _rolled(swarm: Swarm, secret: str) -> bool:
    """The app's update is done: exactly its replicas run, each with this secret."""
    if swarm.update_state() not in ("completed", ""):
        return False
    spec = json.loads(swarm.docker("service", "inspect", f"{NAME}_app"))[0]["Spec"]
    tasks = swarm.docker("service", "ps", "-q", "--filter", "desired-state=running",
                         f"{NAME}_app").split()
    found = swarm.docker("inspect", "-f", "{{.Status.State}} {{range .Spec.ContainerSpec"
                         ".Secrets}}{{.SecretName}} {{end}}", *tasks).split("\n") if tasks else []
    return sorted(line.strip() for line in found if line.strip()) == \
        [f"running {secret}"] * spec["Mode"]["Replicated"]["Replicas"]


def test_api_keys_rotate_through_new_secret_versions_under_load(swarm: Swarm) -> None:
    """Swarm refuses new content under a secret's name: each rotation deploys a new
    version. Add key B (version 2), move the clients to it, revoke A (version 3): the
    clients, on A and then on B, see no failure; A is refused at the end."""
    keys_v2, keys_v3 = swarm.folder / "api-keys-2", swarm.folder / "api-keys-3"
    keys_v2.write_text(f"alice {KEY_A}\nbob {KEY_B}\n")
    keys_v3.write_text(f"bob {KEY_B}\n")
    # New content under a secret's name in use is refused: hence the versions.
    changed = swarm.folder / "api-keys-1-changed"
    changed.write_text(f"bob {KEY_B}\n")
    refused = swarm.engine.docker("stack", "deploy", "-c", str(STACK), NAME, check=False,
                                  extra_env={**swarm.env, "API_KEYS_HOST_FILE": str(changed)})
    assert refused.returncode != 0 and "only updates to Labels are allowed" in refused.stderr
    load = KeyedLoad(swarm.https + "/predictlabel", swarm.cert, EXAMPLE.read_bytes(), key=KEY_A)
    with load.running(8):
        time.sleep(3)
        swarm.deploy(H5SERVE_IMAGE=swarm.image().split("@")[0], APP_REPLICAS="2",
                     API_KEYS_VERSION="2", API_KEYS_HOST_FILE=str(keys_v2))
        added = _until(lambda: _rolled(swarm, "h5serve_api_keys_2"), "key B rolled out")
        load.key = KEY_B
        moved = time.monotonic()
        time.sleep(3)
        swarm.deploy(API_KEYS_VERSION="3", API_KEYS_HOST_FILE=str(keys_v3))
        revoked = _until(lambda: _rolled(swarm, "h5serve_api_keys_3"), "key A revoked")
        time.sleep(3)
    print(f"\nswarm: key B rolled out in {added:.0f} s, key A revoked in {revoked:.0f} s; "
          f"{len(load.answers)} requests, {len(load.failures)} failed")
    assert load.failures == [], load.failures[:5]
    assert {key for _, _, key in load.since(moved + 1)} == {KEY_B}
    assert len(load.since(moved + 1)) > 50
    assert (_asks(swarm, KEY_B), _asks(swarm, KEY_A)) == (200, 401)
    assert {"h5serve_api_keys_1", "h5serve_api_keys_2", "h5serve_api_keys_3"} <= \
        swarm.secret_names()


def test_the_tls_secrets_rotate_to_a_new_certificate(swarm: Swarm) -> None:
    """A new certificate and key as version 2: nginx restarts with them (its host ports
    let one task run per node, so it stops first: a moment without nginx on that node)."""
    folder = swarm.folder / "tls-2"
    subprocess.run([str(ROOT / "scripts" / "make-cert.sh"), str(folder)], check=True,
                   capture_output=True)
    swarm.deploy(TLS_VERSION="2", TLS_CERT_FILE=str(folder / "fullchain.pem"),
                 TLS_KEY_FILE=str(folder / "privkey.pem"))
    _until(lambda: _ready(swarm.https, str(folder / "fullchain.pem")), "the new certificate")
    assert not _ready(swarm.https, swarm.cert), "the old certificate is no longer served"
    assert {"h5serve_tls_cert_2", "h5serve_tls_key_2"} <= swarm.secret_names()
    swarm.cert = str(folder / "fullchain.pem")
    assert _asks(swarm, KEY_B) == 200


def test_stack_rm_leaves_nothing_behind(swarm: Swarm) -> None:
    """Services, containers, networks and every secret version, old ones included."""
    assert all(swarm.stack_objects()[kind] for kind in ("services", "containers", "networks",
                                                        "secrets"))
    swarm.docker("stack", "rm", NAME)
    _until(lambda: not any(swarm.stack_objects().values()), "the stack's objects gone", 120)
    assert not [name for name in swarm.secret_names() if name.startswith("h5serve_")]


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
    # Secrets are immutable: each name carries a version, raised to rotate (docs/deployment.md).
    for key, secret in stack["secrets"].items():
        default = "none" if key == "api_keys" else "1"  # no keys: not the keys' version 1
        assert re.fullmatch(r"h5serve_" + key + r"_\$\{[A-Z_]+_VERSION:-" + default + r"\}",
                            secret["name"])
