"""The Kubernetes manifests, checked offline (no cluster runs here): kustomize renders each
overlay, every object passes strict schema validation for a current Kubernetes, yamllint
is clean, and the Deployment agrees with the Dockerfile, gunicorn.conf.py and compose."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from servers import ROOT, VENV_BIN, free_port, stop, wait_ready

from app.config import DEFAULT_MODEL_PATH

KUSTOMIZE = ROOT / "deploy" / "kubernetes"
OVERLAYS = ["base", "overlays/ingress-nginx"]  # the Kubernetes-only ones (kserve: below)
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


def _strict(schema: object) -> object:
    """Unknown fields rejected, as `kubectl apply --validate=strict` does."""
    if isinstance(schema, dict):
        schema = {k: _strict(v) for k, v in schema.items()}
        if "properties" in schema and "additionalProperties" not in schema \
                and not schema.get("x-kubernetes-preserve-unknown-fields"):
            schema["additionalProperties"] = False
    elif isinstance(schema, list):
        schema = [_strict(v) for v in schema]
    return schema


def test_the_kserve_objects_validate_against_kserve_s_crd_schemas() -> None:
    import jsonschema

    vendored = json.loads((ROOT / "tests" / "kserve_schemas.json").read_text())
    assert vendored["source"].startswith("kserve/kserve v0.")
    objects = _render("overlays/kserve")
    assert [o["kind"] for o in objects] == ["ClusterServingRuntime", "InferenceService"]
    for obj in objects:
        jsonschema.Draft7Validator(_strict(vendored[obj["kind"]])).validate(obj)
    runtime, isvc = objects
    formats = {f["name"] for f in runtime["spec"]["supportedModelFormats"]}
    model = isvc["spec"]["predictor"]["model"]
    assert model["modelFormat"]["name"] in formats and model["runtime"] == "h5serve"
    assert runtime["spec"]["protocolVersions"] == [model["protocolVersion"]] == ["v2"]
    bad = {**isvc, "spec": {"predictor": {"model": {**model, "storageURI": "x"}}}}
    with pytest.raises(jsonschema.ValidationError):  # the check can fail
        jsonschema.Draft7Validator(_strict(vendored["InferenceService"])).validate(bad)


def test_the_app_started_as_the_kserve_runtime_starts_it_answers_v2(tmp_path: Path) -> None:
    """The runtime container's environment, /mnt/models as KServe's storage initializer
    fills it, and the Triton client and KServe's own asking for the InferenceService's
    model."""
    import numpy as np
    import tritonclient.http as triton

    runtime, isvc = _render("overlays/kserve")
    container = runtime["spec"]["containers"][0]
    mnt = tmp_path / "mnt" / "models"
    mnt.mkdir(parents=True)
    shutil.copy(DEFAULT_MODEL_PATH, mnt)
    shutil.copy(DEFAULT_MODEL_PATH.with_suffix(".json"), mnt)
    name = isvc["metadata"]["name"]
    env = {e["name"]: e["value"].replace("{{.Name}}", name) for e in container["env"]}
    port = free_port()
    env.update(MODEL_REPOSITORY=str(mnt), BIND=f"127.0.0.1:{port}", WORKERS="1")
    bind = next(e["value"] for e in container["env"] if e["name"] == "BIND")
    assert bind == f"0.0.0.0:{container['ports'][0]['containerPort']}"
    process = subprocess.Popen([str(VENV_BIN / "gunicorn"), "-c", "gunicorn.conf.py",
                                "app:create_app()"], cwd=ROOT, env={**os.environ, **env},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(f"http://127.0.0.1:{port}{container['readinessProbe']['httpGet']['path']}",
                   process=process)
        client = triton.InferenceServerClient(f"127.0.0.1:{port}")
        assert client.is_model_ready(name)
        metadata = client.get_model_metadata(name)
        tensor = triton.InferInput(metadata["inputs"][0]["name"], [1, 28, 28, 1], "FP32")
        tensor.set_data_from_numpy(np.zeros((1, 28, 28, 1), np.float32), binary_data=False)
        answer = client.infer(name, [tensor])
        assert answer.get_response()["model_name"] == name
        assert answer.as_numpy("probabilities").shape == (1, 10)
        kserve = subprocess.run(  # KServe's own client, from its package's venv
            [str(ROOT / ".venv-tools" / "kserve" / "bin" / "python"),
             str(ROOT / "tests" / "tools" / "kserve_client.py"), f"http://127.0.0.1:{port}",
             name, metadata["inputs"][0]["name"]], capture_output=True, text=True, timeout=60)
        assert kserve.returncode == 0, kserve.stderr[-2000:]
        assert json.loads(kserve.stdout) == {"server_ready": True, "model_ready": True,
                                             "model_name": name, "shape": [1, 10]}
    finally:
        stop(process)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_checkov_finds_nothing_or_each_finding_is_justified_in_place(overlay: str,
                                                                   tmp_path: Path) -> None:
    """The policy scanner, offline; a skip needs its reason in the manifest (annotation)."""
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(yaml.safe_dump_all(_render(overlay)))
    checkov = ROOT / ".venv-tools" / "checkov" / "bin" / "checkov"
    result = subprocess.run([str(checkov), "-f", str(rendered), "--framework", "kubernetes",
                             "--compact", "--skip-download", "-o", "json"],
                            capture_output=True, text=True, timeout=300)
    report = json.loads(result.stdout)
    summary = report["summary"]
    assert summary["failed"] == 0, [c["check_id"] for c in report["results"]["failed_checks"]]
    assert summary["passed"] >= 80
    for skipped in report["results"]["skipped_checks"]:
        assert skipped["check_result"].get("suppress_comment"), skipped["check_id"]
