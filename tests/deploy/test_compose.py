"""`docker compose up` for real: the project's own images and compose file, on Docker and podman.

The only difference from a server: the debian:bookworm-slim base image is built here from
Debian packages (no registry answers). Every request goes to ports published on
127.0.0.1, or is made from inside the stack's own containers.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
import time
from collections.abc import Iterator

import pytest
import requests
from containers import Engine, image_ids
from servers import ROOT, free_port

pytestmark = [pytest.mark.slow, pytest.mark.containers,
              pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")]

EXAMPLE = ROOT / "static" / "examples" / "ankle_boot.png"


def free_subnet() -> ipaddress.IPv4Network:
    """A /24 for the compose network that no route on this machine covers yet."""
    routes = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True,
                            check=True).stdout.split("\n")
    taken = [ipaddress.ip_network(line.split()[0], strict=False) for line in routes
             if line and line.split()[0] != "default"]
    for third in range(200, 250):
        subnet = ipaddress.ip_network(f"172.30.{third}.0/24")
        if not any(subnet.overlaps(net) for net in taken):
            return subnet
    raise AssertionError("no free 172.30.x.0/24 for the compose network")


class Stack:
    """The compose project as a user runs it, with test ports and a test subnet."""

    def __init__(self, engine: Engine) -> None:
        subnet = free_subnet()
        self.engine = engine
        self.app_ip, self.nginx_ip = str(subnet[10]), str(subnet[20])
        self.http_port, self.https_port = free_port(), free_port()
        engine.compose_env = {
            "PUBLISH_IP": "127.0.0.1", "HTTP_PUBLISH_PORT": str(self.http_port),
            "HTTPS_PUBLISH_PORT": str(self.https_port), "SUBNET": str(subnet),
            "MTLS_PUBLISH_PORT": str(free_port()),
            "APP_IP": self.app_ip, "NGINX_IP": self.nginx_ip}
        self.https = f"https://127.0.0.1:{self.https_port}"
        self.up_seconds = 0.0

    def up(self) -> None:
        started = time.monotonic()
        result = self.engine.compose("up", "-d", "--wait", "--no-build", timeout=300,
                                     check=False)
        if result.returncode != 0:
            logs = self.engine.compose("logs", "--tail", "40", check=False)
            raise AssertionError(f"[{self.engine.name}] compose up failed:\n{result.stderr}\n"
                                 f"logs:\n{logs.stdout}{logs.stderr}")
        self.up_seconds = time.monotonic() - started

    def down(self) -> None:
        self.engine.compose("down", "-v", "--remove-orphans", "-t", "10", timeout=180)

    def get(self, path: str, **kwargs) -> requests.Response:
        return requests.get(self.https + path, verify=False, timeout=30, **kwargs)

    def classify(self, data: bytes) -> requests.Response:
        return requests.post(self.https + "/predictlabel", files={"image": ("x.png", data)},
                             verify=False, timeout=30)

    def in_container(self, service: str, *command: str) -> subprocess.CompletedProcess[str]:
        return self.engine.compose("exec", "-T", service, *command, check=False)


@pytest.fixture(scope="module", params=["docker", "podman"])
def stack(request: pytest.FixtureRequest) -> Iterator[Stack]:
    # The project's images, built on Docker (podman's engine loads them from there).
    engine: Engine = request.getfixturevalue(
        "project_images" if request.param == "docker" else "podman_engine")
    stack = Stack(engine)
    try:
        stack.up()
        print(f"[{engine.name}] docker compose up --wait: healthy in {stack.up_seconds:.0f} s")
        yield stack
    finally:
        if engine.project_leftovers():
            stack.down()


def test_every_service_is_healthy_or_done(stack: Stack) -> None:
    services = [json.loads(line) for line in
                stack.engine.compose("ps", "-a", "--format", "json").stdout.splitlines()]
    state = {s["Service"]: (s["State"], s.get("Health", ""), s.get("ExitCode")) for s in services}
    assert state["app"][:2] == ("running", "healthy"), state
    assert state["nginx"][:2] == ("running", "healthy"), state
    assert state["certs"][0] == "exited" and state["certs"][2] == 0, state


def test_http_redirects_to_https(stack: Stack) -> None:
    response = requests.get(f"http://127.0.0.1:{stack.http_port}/predictlabel", timeout=10,
                            allow_redirects=False)
    assert response.status_code == 301
    assert response.headers["Location"] == f"{stack.https}/predictlabel"


def test_https_classifies_a_real_image(stack: Stack) -> None:
    response = stack.classify(EXAMPLE.read_bytes())
    assert response.status_code == 200, response.text
    assert response.json()["most_probable_label"] == "Ankle boot"
    assert stack.get("/readyz").json()["status"] == "ready"
    assert "max-age=63072000" in stack.get("/healthz").headers["Strict-Transport-Security"]


def test_a_body_over_15_mib_gets_the_json_413(stack: Stack) -> None:
    response = stack.classify(b"\0" * (16 * 1024 * 1024))
    assert response.status_code == 413
    assert response.json()["error"]["message"].endswith("the limit is 15 MiB.")


def test_the_app_runs_as_the_compose_file_says(stack: Stack) -> None:
    info = stack.engine.inspect(stack.engine.container("app"))
    host = info["HostConfig"]
    assert info["Config"]["User"] == "10001:10001"
    assert host["ReadonlyRootfs"] is True
    dropped = {c.upper().removeprefix("CAP_") for c in host["CapDrop"]}
    # Docker reports cap_drop: [ALL] as written; podman lists every capability it dropped.
    assert dropped == {"ALL"} or {"CHOWN", "DAC_OVERRIDE", "KILL", "NET_BIND_SERVICE",
                                  "SETGID", "SETUID"} <= dropped, dropped
    assert "/tmp" in (host.get("Tmpfs") or {})
    assert any("no-new-privileges" in opt for opt in host["SecurityOpt"])
    status = stack.in_container("app", "cat", "/proc/1/status").stdout
    assert "CapEff:\t0000000000000000" in status
    assert stack.in_container("app", "id", "-u").stdout.strip() == "10001"
    assert stack.in_container("app", "touch", "/app/x").returncode != 0, "root fs is writable"
    assert stack.in_container("app", "touch", "/tmp/x").returncode == 0, "no /tmp tmpfs"
    limits = stack.in_container("app", "cat", "/proc/1/limits").stdout
    assert any(line.startswith("Max open files") and "16384" in line
               for line in limits.splitlines())


def test_the_app_is_reached_through_nginx_only(stack: Stack) -> None:
    info = stack.engine.inspect(stack.engine.container("app"))
    published = [b for bindings in (info["NetworkSettings"]["Ports"] or {}).values()
                 for b in bindings or []]
    assert published == [], "the app must not publish ports on the host"
    answer = stack.in_container("nginx", "curl", "-fsS", f"http://{stack.app_ip}:5000/healthz")
    assert answer.returncode == 0 and json.loads(answer.stdout) == {"status": "ok"}, answer


def test_one_tensorflow_and_no_cuda_noise_in_the_app(stack: Stack) -> None:
    check = stack.in_container("app", "python", "scripts/check_tensorflow.py")
    assert check.returncode == 0 and "tensorflow_cpu==2.21.0" in check.stdout.replace("-", "_")
    log = stack.engine.compose("logs", "app").stdout
    assert "Worker ready" in log
    noisy = [line for line in log.splitlines()
             if any(word in line for word in ("cuInit", "cuda", "CUDA", "E0000", " ERROR "))]
    assert noisy == []


def test_the_app_image_is_small(stack: Stack) -> None:
    size = json.loads(stack.engine.docker("image", "inspect", "h5serve:latest").stdout)[0]["Size"]
    print(f"[{stack.engine.name}] h5serve:latest is {size / 1e9:.2f} GB")
    assert size <= 1.5e9  # ONNX Runtime and OpenVINO included (bench/README.md: container images)


def test_app_restart_gives_a_json_gateway_error_then_recovers(stack: Stack) -> None:
    """nginx stays up. A stopped container's address answers nothing: nginx says 502 when
    the kernel reports the host unreachable, 504 when its 5 s connect timeout comes first
    (the bridge's neighbour entry for the address is still fresh). Either is JSON."""
    stack.engine.compose("stop", "-t", "10", "app", timeout=120)
    try:
        down = stack.classify(EXAMPLE.read_bytes())
        assert (down.status_code, down.json()["error"]["code"]) in {
            (502, "bad_gateway"), (504, "gateway_timeout")}, down.text
        assert down.elapsed.total_seconds() < 10
    finally:
        stack.engine.compose("start", "app", timeout=120)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if stack.get("/readyz").status_code == 200:
            break
        time.sleep(1)
    assert stack.classify(EXAMPLE.read_bytes()).json()["most_probable_label"] == "Ankle boot"


def test_down_leaves_nothing_running(stack: Stack) -> None:
    stack.down()
    assert stack.engine.project_leftovers() == []
    assert image_ids(stack.engine, ("h5serve:latest",)), "down keeps the built image"
