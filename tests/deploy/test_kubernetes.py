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
from app.config.server import ServerSettings

pytestmark = [pytest.mark.slow]

KUSTOMIZE = ROOT / "deploy" / "kubernetes"
OVERLAYS = ["base", "overlays/ingress-nginx"]  # the Kubernetes-only ones (kserve: below)
KUBERNETES_VERSION = "1.37.0"
DEPLOYMENT_DOC = ROOT / "docs" / "deployment.md"
BENCH_DOC, BENCH_SECTION = ROOT / "bench" / "README.md", \
    "The whole stack against the tutorial way (`make bench`)"


def _render(overlay: str) -> list[dict]:
    """`kubectl kustomize` of a folder under deploy/kubernetes (or of any folder)."""
    result = subprocess.run([str(VENV_BIN / "kubectl"), "kustomize", str(KUSTOMIZE / overlay)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def _render_with(component: str, folder: Path) -> list[dict]:
    """The ingress-nginx overlay with a component added, as a user's overlay adds it."""
    (folder / "kustomization.yaml").write_text(yaml.safe_dump({
        "resources": [os.path.relpath(KUSTOMIZE / "overlays" / "ingress-nginx", folder)],
        "components": [os.path.relpath(KUSTOMIZE / "components" / component, folder)]}))
    return _render(str(folder))


def _object(overlay: str, kind: str, name: str = "") -> dict:
    return next(doc for doc in _render(overlay) if doc["kind"] == kind
                and name in ("", doc["metadata"]["name"]))


def _kserve_pod() -> tuple[dict, dict]:
    """The predictor pod KServe makes from the runtime and the InferenceService (its
    MergePodSpec: the runtime's containers and volumes, the predictor's pod settings), as a
    Deployment in the InferenceService's namespace; and the runtime."""
    runtime, isvc = _render("overlays/kserve")
    predictor = {k: v for k, v in isvc["spec"]["predictor"].items() if k != "model"}
    labels = {"serving.kserve.io/inferenceservice": isvc["metadata"]["name"]}
    pod = {**predictor, "containers": runtime["spec"]["containers"],
           "volumes": runtime["spec"].get("volumes", [])}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": f"{isvc['metadata']['name']}-predictor",
                         "namespace": isvc["metadata"]["namespace"],
                         "annotations": runtime["metadata"].get("annotations", {})},
            "spec": {"selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": pod}}}, runtime


@pytest.mark.parametrize("overlay", [*OVERLAYS, "components/api-keys"])
def test_every_rendered_object_passes_strict_validation(overlay: str, tmp_path: Path) -> None:
    rendered = tmp_path / "rendered.yaml"
    if overlay.startswith("components/"):
        (tmp_path / "overlay").mkdir()
        objects = _render_with(overlay.removeprefix("components/"), tmp_path / "overlay")
    else:
        objects = _render(overlay)
    rendered.write_text(yaml.safe_dump_all(objects))
    result = subprocess.run([str(VENV_BIN / "kubernetes-validate"), "--strict",
                             "-k", KUBERNETES_VERSION, str(rendered)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "ERROR" not in result.stdout, result.stdout + result.stderr
    kinds = {doc["kind"] for doc in objects}
    assert {"Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy", "ConfigMap",
            "HorizontalPodAutoscaler"} <= kinds
    assert ("Ingress" in kinds) == (overlay != "base")


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
    assert graceful == ServerSettings().GRACEFUL_TIMEOUT  # gunicorn's default, the same
    pause = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pod["terminationGracePeriodSeconds"] > graceful + pause
    hardening = container["securityContext"]
    assert hardening == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                         "capabilities": {"drop": ["ALL"]}}
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts[settings["MODEL_REPOSITORY"]]["readOnly"] is True and "/tmp" in mounts
    # docs/deployment.md says the same (user, ports, probes, image), and compose builds it.
    readme = _section(DEPLOYMENT_DOC, "Kubernetes")
    assert f"non-root {pod['securityContext']['runAsUser']}" in readme
    for port in container["ports"]:
        assert f"{port['containerPort']} ({port['name']}" in readme.lower(), port
    for path in set(probes.values()):
        assert f"`{path}`" in readme, path
    image = container["image"].split(":")[0]
    assert f"kustomize edit set image {image}=REGISTRY/{image}:TAG" in readme
    assert _images() == {image}


def _section(page: Path, title: str) -> str:
    """A page's `## title` section, up to the next `## ` heading, lines joined."""
    text = page.read_text()
    return " ".join(text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0].split())


def _images() -> set[str]:
    """The app image's name (no tag) in compose, the Swarm stack, the rendered Deployment
    and the KServe runtime: one image for every deployment path."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    stack = yaml.safe_load((ROOT / "deploy" / "swarm" / "stack.yml").read_text())
    swarm = re.fullmatch(r"\$\{H5SERVE_IMAGE:-(.+)\}", stack["services"]["app"]["image"])
    deployment = _object("base", "Deployment")["spec"]["template"]["spec"]["containers"][0]
    runtime = _object("overlays/kserve", "ClusterServingRuntime")["spec"]["containers"][0]
    return {image.rsplit(":", 1)[0] for image in (
        compose["services"]["app"]["image"], swarm.group(1), deployment["image"],
        runtime["image"])}


@pytest.mark.parametrize("name", ["base", "kserve"])
def test_every_read_only_container_has_a_writable_tmp(name: str) -> None:
    """gunicorn.conf.py makes its metrics and state folders with tempfile.mkdtemp(): with a
    read-only root and no /tmp volume, the server cannot start."""
    assert "tempfile.mkdtemp(" in (ROOT / "gunicorn.conf.py").read_text()
    pod = (_object("base", "Deployment") if name == "base"
           else _kserve_pod()[0])["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    hardened = [c for c in pod["containers"]
                if c.get("securityContext", {}).get("readOnlyRootFilesystem")]
    assert hardened, "every container's root filesystem is read-only"
    for container in hardened:
        tmp = [m for m in container.get("volumeMounts", []) if m["mountPath"] == "/tmp"]
        assert tmp and not tmp[0].get("readOnly") and not tmp[0].get("subPath"), \
            f"{name}/{container['name']}: no writable /tmp"
        assert "emptyDir" in volumes[tmp[0]["name"]], "a pod-local writable volume"
        seccomp = container["securityContext"].get("seccompProfile") or \
            pod.get("securityContext", {}).get("seccompProfile")
        assert seccomp == {"type": "RuntimeDefault"}, name
        assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
    user = pod.get("securityContext", {}).get("runAsUser") or \
        hardened[0]["securityContext"]["runAsUser"]
    assert user == 10001


def test_the_network_policy_s_peers_keep_their_own_selectors() -> None:
    """kustomize's labels must not rewrite the peers: Prometheus's pods are not h5serve's."""
    written = yaml.safe_load((KUSTOMIZE / "base" / "networkpolicy.yaml").read_text())
    rendered = _object("base", "NetworkPolicy")
    assert rendered["spec"]["ingress"] == written["spec"]["ingress"]
    peers = rendered["spec"]["ingress"][0]["from"]
    assert {"namespaceSelector": {"matchLabels": {
        "kubernetes.io/metadata.name": "ingress-nginx"}}} in peers
    prometheus = next(p for p in peers if "podSelector" in p)
    assert prometheus["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}
    assert prometheus["namespaceSelector"] == {"matchLabels": {
        "kubernetes.io/metadata.name": "monitoring"}}
    # The objects' own selectors still pick exactly the app's pods (and are those of the
    # first release: a Deployment's selector cannot change in place).
    template = _object("base", "Deployment")["spec"]["template"]["metadata"]["labels"]
    app = {"app.kubernetes.io/name": "h5serve", "app.kubernetes.io/component": "app"}
    assert template == app
    for kind, selector in (
            ("Deployment", lambda o: o["spec"]["selector"]["matchLabels"]),
            ("Service", lambda o: o["spec"]["selector"]),
            ("PodDisruptionBudget", lambda o: o["spec"]["selector"]["matchLabels"]),
            ("NetworkPolicy", lambda o: o["spec"]["podSelector"]["matchLabels"])):
        assert selector(_object("base", kind)) == app, kind


def _comments(manifest: Path) -> str:
    """A manifest's comments as one line of text."""
    return " ".join(line.split("#", 1)[1].strip() for line in manifest.read_text().splitlines()
                    if "#" in line)


def _number(pattern: str, text: str) -> list[float]:
    found = re.search(pattern, text)
    assert found, pattern
    return [float(group) for group in found.groups()]


def test_the_sizes_and_targets_are_derived_from_the_benchmark() -> None:
    """Memory request, CPU and queue-wait targets and the capacity table follow from
    bench/README.md's figures, by the arithmetic the manifests' comments and
    docs/deployment.md show."""
    performance = _section(BENCH_DOC, BENCH_SECTION)
    rss = _number(r"\| worker RSS after the run \(bundled model\) \| (\d+) / (\d+) MB",
                  performance)
    (rate,) = _number(r"\| service / naive, req/s at c=32 \| [\d.]+x \((\d+) vs", performance)
    p99 = _number(r"\| c=32 p99 through nginx TLS \| [\d.]+ ms; (\d+)-(\d+) ms", performance)
    (work,) = _number(r"\| c=1 p50 through nginx TLS \| ([\d.]+) ms", performance)
    readme = _section(DEPLOYMENT_DOC, "Kubernetes")
    comment = _comments(KUSTOMIZE / "base" / "deployment.yaml")
    workers = int(_object("base", "ConfigMap")["data"]["WORKERS"])
    (master,) = _number(r"the master's (\d+) MB", comment)
    pod_mib = round((workers * max(rss) + master) * 1e6 / 2**20)
    arithmetic = f"{workers} x {max(rss):.0f} + {master:.0f} = "
    for text in (comment, readme):
        assert f"{min(rss):.0f}-{max(rss):.0f} MB" in text and arithmetic in text
        assert f"= {pod_mib} MiB" in text
    container = _object("base", "Deployment")["spec"]["template"]["spec"]["containers"][0]
    request = int(container["resources"]["requests"]["memory"].removesuffix("Mi"))
    assert pod_mib < request < 1.35 * pod_mib, "room above the measured size, not far above"
    assert container["resources"]["requests"]["cpu"] == str(workers)
    runtime = _object("overlays/kserve", "ClusterServingRuntime")["spec"]["containers"][0]
    assert runtime["resources"] == container["resources"]
    # The HPA's targets and the capacity table.
    hpa = _comments(KUSTOMIZE / "base" / "hpa.yaml")
    metrics = _object("base", "HorizontalPodAutoscaler")["spec"]["metrics"]
    cpu = next(m["resource"]["target"]["averageUtilization"] for m in metrics
               if m["type"] == "Resource") / 100
    wait_ms = int(next(m["pods"]["target"]["averageValue"] for m in metrics
                       if m["type"] == "Pods").removesuffix("m"))
    per_pod = int(rate * cpu)
    saturated = (p99[0] - work, p99[1] - work)
    for text in (hpa, readme):
        assert f"32 requests in flight / {rate:.0f} req/s = {round(32 / rate * 1000)} ms" in text
        assert f"{saturated[0]:.0f}-{saturated[1]:.0f} ms" in text
        assert f"{rate:.0f} / {per_pod} = {rate / per_pod:.2f}x" in text
    assert wait_ms < saturated[0] and wait_ms / 1000 in (.025, .05, .1)  # a bucket bound
    assert f"plan on {rate:.0f} x {cpu} = {rate * cpu:.1f}, say {per_pod} per pod" in readme
    for load, pods, spare, memory in re.findall(
            r"\| ([\d,]+) req/s \| (\d+) \| (\d+) \| ([\d.]+) GiB \|", readme):
        assert int(pods) == -(-int(load.replace(",", "")) // per_pod)
        assert int(spare) == int(pods) + 1
        assert abs(float(memory) - int(spare) * request / 1024) <= 0.5


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


def _seconds(value: str) -> str:
    """nginx's `2s` as ingress-nginx's unitless `2`."""
    assert re.fullmatch(r"\d+s", value), value
    return value.removesuffix("s")


def test_the_ingress_mirrors_the_nginx_template() -> None:
    ingress = _object("overlays/ingress-nginx", "Ingress", "h5serve")
    notes = ingress["metadata"]["annotations"]
    template = (ROOT / "nginx" / "templates" / "https-server.inc.template").read_text()
    compose = (ROOT / "docker-compose.yml").read_text()
    directives = dict(re.findall(r"^(proxy_\w+) ([^;]+);", template, re.M))
    read_timeout = _compose_nginx_env()["PROXY_READ_TIMEOUT"]
    assert directives["proxy_read_timeout"] == "${PROXY_READ_TIMEOUT}"
    prefix = "nginx.ingress.kubernetes.io/"
    assert {name: notes[prefix + name] for name in (
        "proxy-connect-timeout", "proxy-send-timeout", "proxy-read-timeout",
        "proxy-next-upstream", "proxy-next-upstream-timeout", "proxy-next-upstream-tries")} \
        == {"proxy-connect-timeout": _seconds(directives["proxy_connect_timeout"]),
            "proxy-send-timeout": _seconds(directives["proxy_send_timeout"]),
            "proxy-read-timeout": _seconds(read_timeout),
            "proxy-next-upstream": directives["proxy_next_upstream"],
            "proxy-next-upstream-timeout": _seconds(directives["proxy_next_upstream_timeout"]),
            "proxy-next-upstream-tries": directives["proxy_next_upstream_tries"]}
    assert notes["nginx.ingress.kubernetes.io/proxy-body-size"] == "15m"
    assert 'MAX_BODY_MIB: "15"' in compose and "client_max_body_size ${MAX_BODY_MIB}m" in template
    assert notes["nginx.ingress.kubernetes.io/limit-rps"] == "50"
    assert "RATE_LIMIT: ${RATE_LIMIT:-50r/s}" in compose
    assert notes["nginx.ingress.kubernetes.io/force-ssl-redirect"] == "true"
    assert ingress["spec"]["tls"][0]["secretName"] == "h5serve-tls"


def _compose_nginx_env() -> dict[str, str]:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return compose["services"]["nginx"]["environment"]


def test_what_nginx_keeps_to_the_host_the_ingress_refuses_to_everyone() -> None:
    """/metrics (each `location = PATH` our template allows only from 127.0.0.1) gets an
    exact-path location in ingress-nginx that denies every address; snippets, off by
    default since ingress-nginx 1.9, are not used."""
    template = (ROOT / "nginx" / "templates" / "https-server.inc.template").read_text()
    private = [path for path, body in re.findall(r"location = (\S+) \{([^}]*)\}", template)
               if "deny all;" in body]
    assert private == ["/metrics"]
    ingresses = [o for o in _render("overlays/ingress-nginx") if o["kind"] == "Ingress"]
    everyone = {"0.0.0.0/0", "::/0"}
    for path in private:
        rules = [(ingress, rule) for ingress in ingresses for rule in ingress["spec"]["rules"]
                 for rule_path in rule["http"]["paths"] if rule_path["path"] == path]
        assert len(rules) == 1, path
        ingress, rule = rules[0]
        (exact,) = rule["http"]["paths"]
        assert exact["pathType"] == "Exact"
        notes = ingress["metadata"]["annotations"]
        denied = set(notes["nginx.ingress.kubernetes.io/denylist-source-range"].split(","))
        assert denied == everyone
        assert ingress["spec"]["ingressClassName"] == "nginx"
        main = _object("overlays/ingress-nginx", "Ingress", "h5serve")
        assert ingress["spec"]["tls"] == main["spec"]["tls"]
        # Every host that serves the app's paths (the Prefix / rule) has this refusal.
        hosts = {r["host"] for i in ingresses for r in i["spec"]["rules"]
                 for p in r["http"]["paths"] if p["path"] == "/"}
        assert hosts == {rule["host"]}
    for ingress in ingresses:
        assert not [n for n in ingress["metadata"].get("annotations", {}) if "snippet" in n]


def test_api_keys_come_from_a_secret_folder_mounted_read_only(tmp_path: Path) -> None:
    """Off in the base, as in compose; the component turns them on with the Secret's folder
    where API_KEYS_FILE points (no subPath: the kubelet updates only whole-folder mounts)."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["app"]
    base = _object("base", "ConfigMap")["data"]
    assert base["AUTH"] == "off" and base["API_KEYS_FILE"] == compose["environment"][
        "API_KEYS_FILE"]
    objects = _render_with("api-keys", tmp_path)
    settings = next(o for o in objects if o["kind"] == "ConfigMap")["data"]
    assert settings["AUTH"] == "keys" and settings["CORS_ORIGINS"] == ""
    pod = next(o for o in objects if o["kind"] == "Deployment")["spec"]["template"]["spec"]
    key_file = Path(settings["API_KEYS_FILE"])
    (mount,) = [m for m in pod["containers"][0]["volumeMounts"]
                if m["mountPath"] == str(key_file.parent)]
    assert mount["readOnly"] is True and "subPath" not in mount
    secret = next(v for v in pod["volumes"] if v["name"] == mount["name"])["secret"]
    assert "items" not in secret and secret.get("optional") is not True
    command = (f"kubectl -n h5serve create secret generic {secret['secretName']} "
               f"--from-file={key_file.name}=secrets/api-keys")
    assert command in _section(DEPLOYMENT_DOC, "Kubernetes")
    assert ("${API_KEYS_DIR:-./secrets}:" + str(key_file.parent) + ":ro,z") in compose["volumes"]


def test_a_secret_updated_by_the_kubelet_is_picked_up_without_a_restart(tmp_path: Path) -> None:
    """The kubelet's layout of a mounted Secret (its atomic writer): the key file is a
    link through `..data` to a timestamped folder, and an update writes a new folder and
    swaps `..data` in one rename. The app's key file poller sees the new keys."""
    from app.http.keys import KeyFile

    def project(content: str, stamp: str) -> None:
        folder = tmp_path / f"..{stamp}"
        folder.mkdir()
        (folder / "api-keys").write_text(content)
        (tmp_path / "..data_tmp").symlink_to(folder.name)
        os.replace(tmp_path / "..data_tmp", tmp_path / "..data")  # the atomic swap

    old, new = "alice " + "a" * 32 + "\n", "alice " + "b" * 32 + "\n"
    project(old, "2026_01_01_00_00_00.1")
    (tmp_path / "api-keys").symlink_to("..data/api-keys")
    keys = KeyFile(tmp_path / "api-keys", recheck_s=0)
    assert keys.caller("a" * 32) and not keys.caller("b" * 32)
    project(new, "2026_01_01_00_01_00.2")
    shutil.rmtree(tmp_path / "..2026_01_01_00_00_00.1")  # the kubelet removes the old one
    keys.refresh()
    assert keys.caller("b" * 32) and not keys.caller("a" * 32)


def test_the_pod_monitor_scrapes_what_the_adapter_and_the_network_policy_expect() -> None:
    """prometheus-operator's PodMonitor: valid against its CRD schema (vendored), picks the
    app's pods and port, and its series carry the namespace and pod labels the adapter's
    rule maps onto the HPA's pods metric."""
    import jsonschema

    vendored = json.loads((ROOT / "tests" / "podmonitor_schema.json").read_text())
    assert vendored["source"].startswith("prometheus-operator/prometheus-operator v0.")
    (monitor,) = _render("monitoring")
    assert (monitor["apiVersion"], monitor["kind"]) == ("monitoring.coreos.com/v1", "PodMonitor")
    schema = jsonschema.Draft7Validator(_strict(vendored["PodMonitor"]))
    schema.validate(monitor)
    bad = {**monitor, "spec": {**monitor["spec"], "podMetricEndpoints": []}}
    with pytest.raises(jsonschema.ValidationError):  # the check can fail
        schema.validate(bad)
    deployment = _object("base", "Deployment")
    assert monitor["metadata"]["namespace"] == deployment["metadata"]["namespace"]
    template = deployment["spec"]["template"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= \
        template["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert endpoint["port"] in {p["name"] for p in template["spec"]["containers"][0]["ports"]}
    assert endpoint["path"] == "/metrics"
    policy = _object("base", "NetworkPolicy")["spec"]["ingress"][0]
    assert {"port": endpoint["port"], "protocol": "TCP"} in policy["ports"]
    rule = yaml.safe_load((KUSTOMIZE / "prometheus-adapter" / "rules.yaml").read_text())[
        "rules"]["custom"][0]
    assert 'namespace!=""' in rule["seriesQuery"] and 'pod!=""' in rule["seriesQuery"]
    assert rule["resources"]["overrides"] == {"namespace": {"resource": "namespace"},
                                              "pod": {"resource": "pod"}}


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


@pytest.mark.parametrize("overlay", [*OVERLAYS, "overlays/kserve"])
def test_checkov_finds_nothing_or_each_finding_is_justified_in_place(overlay: str,
                                                                   tmp_path: Path) -> None:
    """The policy scanner, offline; a skip needs its reason in the manifest (annotation).
    checkov knows no KServe kinds: it scans the pod KServe makes from the runtime (with the
    runtime's own annotations, where its skips are justified)."""
    rendered = tmp_path / "rendered.yaml"
    objects = [_kserve_pod()[0]] if overlay == "overlays/kserve" else _render(overlay)
    rendered.write_text(yaml.safe_dump_all(objects))
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
