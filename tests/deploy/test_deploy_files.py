"""Static checks of the container files: lint, schema, nginx -t, and values that must agree.

Fast, and precise about what went wrong; tests/deploy/test_compose.py then builds the images and
runs the stack for real. The nginx template is rendered exactly as the nginx image's
entrypoint (and the official nginx image) renders it.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import pytest
import yaml
from servers import ROOT, VENV_BIN

from app.config.server import ServerSettings

TEMPLATE = ROOT / "nginx" / "templates" / "default.conf.template"
INCLUDES = {"https-server.inc": ROOT / "nginx" / "templates" / "https-server.inc.template",
            "tls.inc": ROOT / "nginx" / "templates" / "tls.inc.template"}  # included bodies
MTLS = ROOT / "nginx" / "mtls" / "mtls.conf.template"
GRPC = ROOT / "nginx" / "grpc" / "grpc.conf.template"
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _compose_default(value: str) -> str:
    """Resolve compose interpolation `${NAME:-default}` to its default, `$$` to `$`."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(value)).replace("$$", "$")


def _compose_env(service: str) -> dict[str, str]:
    return {k: _compose_default(v) for k, v in COMPOSE["services"][service]["environment"].items()}


@pytest.fixture()
def prefix() -> Iterator[Path]:
    """An nginx prefix under /tmp that nginx's unprivileged workers can reach."""
    path = Path(tempfile.mkdtemp(prefix="h5serve-nginx-test."))
    path.chmod(0o755)
    (path / "logs").mkdir()
    (path / "tmp").mkdir()
    yield path
    shutil.rmtree(path)


@pytest.fixture()
def cert(prefix: Path) -> tuple[str, str]:
    subprocess.run([str(ROOT / "scripts" / "make-cert.sh"), str(prefix / "certs")],
                   check=True, capture_output=True)
    return str(prefix / "certs" / "fullchain.pem"), str(prefix / "certs" / "privkey.pem")


def render(env: dict[str, str], out: Path, template: Path = TEMPLATE) -> str:
    """Render a template with scripts/stack.sh's envsubst step (the image's logic); the
    bodies it includes go beside `out` (https-server.inc, tls.inc)."""
    included = [(source, out.parent / name) for name, source in INCLUDES.items()]
    for source, target in ((template, out), *included):
        subprocess.run([str(ROOT / "scripts" / "stack.sh"), "render", str(source),
                        str(target)], check=True, env={"PATH": os.environ["PATH"], **env},
                       capture_output=True)
    return out.read_text() + "".join((out.parent / name).read_text() for name in INCLUDES)


def nginx_t(prefix: Path, conf: Path) -> subprocess.CompletedProcess[str]:
    (prefix / "conf.d").mkdir(exist_ok=True)
    shutil.copy(conf, prefix / "conf.d" / "default.conf")
    for name in INCLUDES:
        shutil.copy(conf.parent / name, prefix / "conf.d" / name)
    shutil.copy(ROOT / "nginx" / "nginx.conf", prefix / "nginx.conf")
    return subprocess.run(["nginx", "-t", "-p", f"{prefix}/", "-e", "logs/error.log",
                           "-c", "nginx.conf"], capture_output=True, text=True)


def loopback_env(cert: tuple[str, str], prefix: Path) -> dict[str, str]:
    return {"APP_UPSTREAM": "127.0.0.1:15000", "APP_PROXY": "h5serve_app",
            "RESOLVER": "127.0.0.1", "SERVER_NAME": "localhost",
            "TLS_CERT": cert[0], "TLS_KEY": cert[1], "HTTP_PORT": "18080",
            "HTTPS_PORT": "18443", "PUBLIC_HTTPS_PORT": "18443", "MAX_BODY_MIB": "15",
            "RATE_LIMIT": "50r/s", "RATE_LIMIT_BURST": "100", "MAX_INFLIGHT": "128",
            "KEY_RATE_LIMIT": "50r/s", "KEY_RATE_LIMIT_BURST": "100",
            "PROXY_READ_TIMEOUT": "60s",
            "STATIC_ROOT": str(ROOT / "static"), "ACME_ROOT": str(prefix)}


def test_rendered_for_loopback_passes_nginx_t(prefix: Path, cert: tuple[str, str]) -> None:
    text = render(loopback_env(cert, prefix), prefix / "loopback.conf")
    assert "${" not in text
    assert "server 127.0.0.1:15000" in text
    assert "return 301 https://$host$h5serve_https_port$request_uri;" in text, "$vars survive"
    result = nginx_t(prefix, prefix / "loopback.conf")
    assert result.returncode == 0, result.stderr
    lint = gixy(prefix, prefix / "loopback.conf")
    assert lint.returncode == 0 and "No issues found" in lint.stdout, lint.stdout + lint.stderr


def gixy(prefix: Path, conf: Path) -> subprocess.CompletedProcess[str]:
    """gixy-ng (own venv, see scripts/bootstrap.sh) on the rendered config and main conf."""
    shutil.copy(conf, prefix / "conf.d" / "default.conf")
    return subprocess.run([str(ROOT / ".venv-tools" / "gixy" / "bin" / "gixy"),
                           str(prefix / "nginx.conf")], capture_output=True, text=True)


def test_rendered_for_compose_passes_nginx_t(prefix: Path, cert: tuple[str, str]) -> None:
    env = _compose_env("nginx")
    # Only the certificate paths point into the container; everything else is as compose sets it.
    env.update(TLS_CERT=cert[0], TLS_KEY=cert[1], STATIC_ROOT=str(ROOT / "static"),
               ACME_ROOT=str(prefix))
    text = render(env, prefix / "compose.conf")
    assert "${" not in text
    assert "listen 443 ssl http2;" in text and "listen 80;" in text
    result = nginx_t(prefix, prefix / "compose.conf")
    assert result.returncode == 0, result.stderr
    lint = gixy(prefix, prefix / "compose.conf")
    assert lint.returncode == 0 and "No issues found" in lint.stdout, lint.stdout + lint.stderr


def test_the_grpc_server_renders_and_passes_nginx_t(prefix: Path, cert: tuple[str, str]) -> None:
    env = {**loopback_env(cert, prefix), "GRPC_PORT": "18500",
           "APP_GRPC_UPSTREAM": "127.0.0.1:18501"}
    render(env, prefix / "loopback.conf")
    (prefix / "conf.d").mkdir()
    render(env, prefix / "conf.d" / "grpc.conf", GRPC)
    text = (prefix / "conf.d" / "grpc.conf").read_text()
    assert "grpc_pass grpc://h5serve_grpc;" in text and "listen 18500 ssl http2;" in text
    result = nginx_t(prefix, prefix / "loopback.conf")
    assert result.returncode == 0, result.stderr


def test_an_unset_variable_fails_the_render(prefix: Path, cert: tuple[str, str]) -> None:
    env = loopback_env(cert, prefix)
    del env["APP_UPSTREAM"]
    with pytest.raises(subprocess.CalledProcessError) as info:
        render(env, prefix / "x.conf")
    assert b"APP_UPSTREAM" in info.value.stderr


def test_compose_envsubst_filter_names_exactly_the_template_variables() -> None:
    used = {name for template in (TEMPLATE, *INCLUDES.values(), MTLS, GRPC)
            for name in re.findall(r"\$\{([A-Z_][A-Z0-9_]*)\}", template.read_text())}
    pattern = _compose_env("nginx")["NGINX_ENVSUBST_FILTER"]
    assert set(re.fullmatch(r"\^\((.*)\)\$", pattern).group(1).split("|")) == used
    assert used <= set(_compose_env("nginx")), "compose defines every template variable"


def test_compose_addresses_and_ports_agree() -> None:
    app = COMPOSE["services"]["app"]
    app_ip = _compose_default(app["networks"]["h5serve"]["ipv4_address"])
    nginx = COMPOSE["services"]["nginx"]
    nginx_ip = _compose_default(nginx["networks"]["h5serve"]["ipv4_address"])
    subnet = _compose_default(COMPOSE["networks"]["h5serve"]["ipam"]["config"][0]["subnet"])
    assert (subnet, app_ip) == ("172.16.239.0/24", "172.16.239.10")
    upstream_host, upstream_port = _compose_env("nginx")["APP_UPSTREAM"].split(":")
    assert upstream_host == app_ip
    bind_port = _compose_env("app")["BIND"].rsplit(":", 1)[1]
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert f"BIND=0.0.0.0:{upstream_port}" in dockerfile
    assert bind_port == upstream_port and f"EXPOSE {upstream_port}" in dockerfile
    assert _compose_env("app")["FORWARDED_ALLOW_IPS"] == nginx_ip
    assert COMPOSE["networks"]["h5serve"]["driver"] == "bridge"


def test_only_nginx_publishes_ports_and_mounts_are_read_only() -> None:
    """Beyond nginx, only the monitoring profile publishes, and only on the loopback."""
    services = COMPOSE["services"]
    default = {name for name, s in services.items() if "profiles" not in s}
    assert [name for name in default if "ports" in services[name]] == ["nginx"]
    for name, service in services.items():
        if "profiles" in service:
            assert service["profiles"] == ["monitoring"]
            assert all(port.startswith("127.0.0.1:") for port in service["ports"]), name
    # The app writes only its runtime cache, a named volume of its own (no host folder).
    writable = [v for v in services["app"]["volumes"] if ":ro" not in v]
    assert writable == ["runtime-cache:/var/cache/h5serve"]
    assert "runtime-cache" in COMPOSE["volumes"]
    assert all(":ro" in v for v in services["nginx"]["volumes"])
    assert services["nginx"]["depends_on"]["app"]["condition"] == "service_healthy"
    assert services["nginx"]["build"]["context"] == "./nginx"
    assert services["nginx"]["restart"] == services["app"]["restart"] == "always"


def test_the_monitoring_profile_s_addresses_and_scrape_targets_follow_the_settings() -> None:
    """Prometheus scrapes the app by its compose service name, which the network's DNS
    answers with whatever APP_IP is; the monitoring services' own addresses are settings
    in the subnet, next to the others, documented in .env.example (and in docs/settings.md:
    tests/test_settings_doc.py checks every setting there)."""
    services = COMPOSE["services"]
    targets = json.loads((ROOT / "deploy" / "prometheus" / "targets" / "h5serve.json")
                         .read_text())
    bind_port = _compose_env("app")["BIND"].rsplit(":", 1)[1]
    assert [t for group in targets for t in group["targets"]] == [f"app:{bind_port}"]
    assert set(services["prometheus"]["networks"]) <= set(services["app"]["networks"])
    subnet = _compose_default(COMPOSE["networks"]["h5serve"]["ipam"]["config"][0]["subnet"])
    addresses = {}
    for name in ("app", "nginx", "prometheus", "grafana"):
        setting = services[name]["networks"]["h5serve"]["ipv4_address"]
        variable = re.fullmatch(r"\$\{([A-Z_]+):-([\d.]+)\}", setting)
        assert variable, f"{name}: its address is a setting with a default"
        addresses[variable.group(1)] = variable.group(2)
    assert len(set(addresses.values())) == len(addresses)
    assert all(ipaddress.ip_address(a) in ipaddress.ip_network(subnet)
               for a in addresses.values())
    example = (ROOT / ".env.example").read_text()
    for variable, default in addresses.items():
        assert f"\n{variable}={default}\n" in example, variable
    grafana = _compose_env("grafana")["PROMETHEUS_URL"]
    assert grafana == f"http://{addresses['PROMETHEUS_IP']}:9090"


def test_the_api_keys_folder_is_mounted_read_only_into_the_app_only() -> None:
    """The keys file's folder, not the file (a file replaced by a rename is a new inode,
    which a single-file bind mount would never show); nginx sees only the client CA's
    folder and its TLS volume, never the keys. Both folders are settings in .env.example."""
    keys_file = PurePosixPath(_compose_env("app")["API_KEYS_FILE"])
    app_mounts = [[*_compose_default(v).split(":"), ""][:3]  # a named volume has no mode
                  for v in COMPOSE["services"]["app"]["volumes"]]
    keys = [(source, mode) for source, target, mode in app_mounts
            if target == str(keys_file.parent)]
    assert keys == [("./secrets", "ro,z")], app_mounts
    on_host = PurePosixPath(keys[0][0], keys_file.name)
    for volume in COMPOSE["services"]["nginx"]["volumes"]:
        source = _compose_default(volume).split(":")[0]
        assert not on_host.is_relative_to(PurePosixPath(source)), volume
    assert "${TLS_CLIENT_CA_DIR:-./secrets/client-ca}:/etc/nginx/client-ca:ro,z" in \
        COMPOSE["services"]["nginx"]["volumes"]
    example = (ROOT / ".env.example").read_text()
    for setting in ("API_KEYS_DIR=./secrets", "TLS_CLIENT_CA_DIR=./secrets/client-ca"):
        assert f"\n{setting}\n" in example, setting
    assert "${API_KEYS_DIR:-./secrets}:/app/secrets:ro,z" in COMPOSE["services"]["app"]["volumes"]


def test_compose_file_matches_the_compose_specification() -> None:
    result = subprocess.run([str(VENV_BIN / "check-jsonschema"), "--builtin-schema",
                             "vendor.compose-spec", str(ROOT / "docker-compose.yml")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "nginx/Dockerfile"])
def test_dockerfile_is_hadolint_clean(dockerfile: str) -> None:
    result = subprocess.run([str(VENV_BIN / "hadolint"), "--failure-threshold", "info",
                             str(ROOT / dockerfile)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "nginx/Dockerfile"])
def test_both_images_build_from_the_same_debian_base(dockerfile: str) -> None:
    """The one base that can be made exactly from Debian packages (scripts/containers.sh)."""
    text = (ROOT / dockerfile).read_text()
    assert "ARG BASE_IMAGE=debian:bookworm-slim" in text
    assert {line.split()[1] for line in text.splitlines()
            if line.startswith("FROM ")} == {"${BASE_IMAGE}"}


@pytest.mark.parametrize("name", ["app", "certs", "nginx"])
def test_every_service_sets_ulimits_podman_can_grant(name: str) -> None:
    limits = COMPOSE["services"][name]["ulimits"]
    assert limits["nofile"]["hard"] <= 16384 and limits["nproc"]["hard"] <= 32768


def test_dockerfile_runs_gunicorn_conf_as_non_root_with_healthcheck() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert text.index("COPY requirements.txt") < text.index("COPY app/"), "deps before code"
    assert re.search(r"^USER 10001", text, re.M)
    probe = 'CMD ["python", "scripts/healthcheck.py"]'
    assert probe in text.split("HEALTHCHECK", 1)[1]
    assert COMPOSE["services"]["app"]["healthcheck"]["test"] == ["CMD", *json.loads(probe[4:])]
    assert "/readyz" in (ROOT / "scripts" / "healthcheck.py").read_text()
    assert 'CMD ["gunicorn", "-c", "gunicorn.conf.py", "app:create_app()"]' in text


def test_nginx_closes_idle_upstream_connections_before_gunicorn() -> None:
    """Otherwise a POST can race gunicorn's close and become a 502 nginx may not retry."""
    upstream = TEMPLATE.read_text().split("server {")[0]
    nginx_timeout = re.search(r"keepalive_timeout (\d+)s;", upstream)
    assert nginx_timeout
    assert int(nginx_timeout.group(1)) < ServerSettings().KEEPALIVE  # gunicorn's default


@pytest.mark.parametrize("name", ["app", "certs", "nginx"])
def test_containers_are_hardened(name: str) -> None:
    service = COMPOSE["services"][name]
    assert service["read_only"] is True and "/tmp" in service["tmpfs"]
    assert service["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in service["security_opt"]
    if name != "certs":
        assert service["mem_limit"] and service["cpus"] and service["pids_limit"]
    allowed = {"NET_BIND_SERVICE", "SETUID", "SETGID", "CHOWN", "DAC_READ_SEARCH"}
    assert set(service.get("cap_add", [])) <= (allowed if name == "nginx" else set())


def test_no_secrets_in_the_image_or_the_repository() -> None:
    dockerignore = (ROOT / ".dockerignore").read_text().split()
    assert {"certs", ".env"} <= set(dockerignore), "certificates and settings stay out"
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert not re.search(r"(?i)(password|secret|token|api_key)\s*=", dockerfile)
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    assert not [f for f in tracked.stdout.split() if f.endswith((".pem", ".key"))]
