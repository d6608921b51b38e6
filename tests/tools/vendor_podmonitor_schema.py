"""Extract the parts of prometheus-operator's PodMonitor CRD schema that h5serve's
deploy/kubernetes/monitoring/ uses.

    fetch prometheus-operator/prometheus-operator (the `fetch` tool), then:
    .venv/bin/python tests/tools/vendor_podmonitor_schema.py REPO_GIT_DIR \
        > tests/podmonitor_schema.json

Keeps, from example/prometheus-operator-crd/ at the repository's HEAD, the
monitoring.coreos.com/v1 PodMonitor schema with the spec fields the manifest sets, each
with its whole subtree, and the version it came from. kubernetes-validate knows only
Kubernetes' own kinds; the test makes this schema strict as it does KServe's.
"""

from __future__ import annotations

import json
import subprocess
import sys

import yaml

SPEC_FIELDS = ("selector", "namespaceSelector", "podMetricsEndpoints", "jobLabel",
               "podTargetLabels")


def main(repo: str) -> None:
    version = subprocess.run(["git", "--git-dir", repo, "describe", "--tags", "--match", "v*",
                              "--always"],
                             check=True, capture_output=True, text=True).stdout.strip()
    crd = yaml.safe_load(subprocess.run(
        ["git", "--git-dir", repo, "show",
         "HEAD:example/prometheus-operator-crd/monitoring.coreos.com_podmonitors.yaml"],
        check=True, capture_output=True, text=True).stdout)
    schema = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")["schema"][
        "openAPIV3Schema"]
    spec = schema["properties"]["spec"]
    spec["properties"] = {k: v for k, v in spec["properties"].items() if k in SPEC_FIELDS}
    json.dump({"source": f"prometheus-operator/prometheus-operator {version}, "
                         "example/prometheus-operator-crd/", "PodMonitor": schema},
              sys.stdout, indent=1, sort_keys=True)


if __name__ == "__main__":
    main(sys.argv[1])
