"""The Kubernetes manifests, checked offline (no cluster runs here): kustomize renders each
overlay, every object passes strict schema validation for a current Kubernetes, yamllint
is clean, and the Deployment agrees with the Dockerfile, gunicorn.conf.py and compose."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml
from servers import ROOT, VENV_BIN

KUSTOMIZE = ROOT / "deploy" / "kubernetes"
OVERLAYS = ["base", "overlays/ingress-nginx"]
KUBERNETES_VERSION = "1.37.0"


def _render(overlay: str) -> list[dict]:
    result = subprocess.run([str(VENV_BIN / "kubectl"), "kustomize", str(KUSTOMIZE / overlay)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def _object(overlay: str, kind: str) -> dict:
    return next(doc for doc in _render(overlay) if doc["kind"] == kind)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_rendered_object_passes_strict_validation(overlay: str, tmp_path: Path) -> None:
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(yaml.safe_dump_all(_render(overlay)))
    result = subprocess.run([str(VENV_BIN / "kubernetes-validate"), "--strict",
                             "-k", KUBERNETES_VERSION, str(rendered)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "ERROR" not in result.stdout, result.stdout + result.stderr
    kinds = {doc["kind"] for doc in _render(overlay)}
    assert {"Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy", "ConfigMap",
            "HorizontalPodAutoscaler"} <= kinds
    assert ("Ingress" in kinds) == (overlay == "overlays/ingress-nginx")


def test_yamllint_is_clean() -> None:
    result = subprocess.run([str(VENV_BIN / "yamllint"), "-c", str(ROOT / "deploy" /
                                                              ".yamllint.yaml"),
                             str(ROOT / "deploy")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_the_deployment_agrees_with_the_image_and_gunicorn() -> None:
    deployment = _object("base", "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    settings = _object("base", "ConfigMap")["data"]
    dockerfile = (ROOT / "Dockerfile").read_text()
    user = re.search(r"^USER (\d+):(\d+)", dockerfile, re.M)
    assert (pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]) == \
        (int(user.group(1)), int(user.group(2)))
    port = int(re.search(r"^EXPOSE (\d+)", dockerfile, re.M).group(1))
    assert container["ports"][0]["containerPort"] == port
    assert settings["BIND"] == f"0.0.0.0:{port}"
    probes = {name: container[name]["httpGet"]["path"]
              for name in ("startupProbe", "readinessProbe", "livenessProbe")}
    assert probes == {"startupProbe": "/readyz", "readinessProbe": "/readyz",
                      "livenessProbe": "/healthz"}
    assert "/readyz" in (ROOT / "scripts" / "healthcheck.py").read_text()
    graceful = int(settings["GRACEFUL_TIMEOUT"])
    assert 'os.environ.get("GRACEFUL_TIMEOUT", "30")' in (ROOT / "gunicorn.conf.py").read_text()
    pause = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pod["terminationGracePeriodSeconds"] > graceful + pause
    hardening = container["securityContext"]
    assert hardening == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                         "capabilities": {"drop": ["ALL"]}}
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts[settings["MODEL_REPOSITORY"]]["readOnly"] is True and "/tmp" in mounts


def test_the_memory_limit_is_compose_s_and_the_hpa_is_one() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    limit = re.search(r":-(\d+)g}", compose["services"]["app"]["mem_limit"]).group(1)
    container = _object("base", "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"]["memory"] == f"{limit}Gi"
    hpas = [doc for doc in _render("overlays/ingress-nginx")
            if doc["kind"] == "HorizontalPodAutoscaler"]
    assert len(hpas) == 1, "two HPAs on one Deployment fight each other"
    metrics = {m["type"] for m in hpas[0]["spec"]["metrics"]}
    assert metrics == {"Resource", "Pods"}
    adapter = yaml.safe_load((KUSTOMIZE / "prometheus-adapter" / "rules.yaml").read_text())
    served = adapter["rules"]["custom"][0]["name"]["as"]
    assert served == next(m["pods"]["metric"]["name"] for m in hpas[0]["spec"]["metrics"]
                          if m["type"] == "Pods")


def test_the_ingress_mirrors_the_nginx_template() -> None:
    ingress = _object("overlays/ingress-nginx", "Ingress")
    notes = ingress["metadata"]["annotations"]
    template = (ROOT / "nginx" / "templates" / "https-server.inc.template").read_text()
    compose = (ROOT / "docker-compose.yml").read_text()
    assert notes["nginx.ingress.kubernetes.io/proxy-body-size"] == "15m"
    assert 'MAX_BODY_MIB: "15"' in compose and "client_max_body_size ${MAX_BODY_MIB}m" in template
    assert notes["nginx.ingress.kubernetes.io/limit-rps"] == "50"
    assert "RATE_LIMIT: ${RATE_LIMIT:-50r/s}" in compose
    assert notes["nginx.ingress.kubernetes.io/force-ssl-redirect"] == "true"
    assert ingress["spec"]["tls"][0]["secretName"] == "h5serve-tls"
