"""Extract the parts of KServe's CRD schemas that h5serve's KServe overlay uses.

    fetch kserve/kserve (the `fetch` tool), then:
    .venv/bin/python tests/tools/vendor_kserve_schemas.py REPO_GIT_DIR > tests/kserve_schemas.json

Keeps, from config/crd/full/ at the repository's HEAD, the ClusterServingRuntime
(v1alpha1) spec fields the runtime sets and the InferenceService (v1beta1) predictor
fields the InferenceService sets (its `model` and pod settings), each with its whole
subtree, and the commit they came from. The test makes every object schema strict
(unknown fields rejected, as `kubectl apply --validate=strict`).
"""

from __future__ import annotations

import json
import subprocess
import sys

import yaml

RUNTIME_FIELDS = ("annotations", "supportedModelFormats", "protocolVersions", "containers",
                  "volumes", "multiModel", "disabled")
PREDICTOR_FIELDS = ("model", "securityContext", "automountServiceAccountToken")


def _crd(repo: str, name: str) -> dict:
    text = subprocess.run(["git", "--git-dir", repo, "show",
                           f"HEAD:config/crd/full/serving.kserve.io_{name}.yaml"],
                          check=True, capture_output=True, text=True).stdout
    return yaml.safe_load(text)


def _schema(crd: dict, version: str) -> dict:
    return next(v for v in crd["spec"]["versions"] if v["name"] == version)["schema"][
        "openAPIV3Schema"]


def main(repo: str) -> None:
    commit = subprocess.run(["git", "--git-dir", repo, "describe", "--tags", "--always"],
                            check=True, capture_output=True, text=True).stdout.strip()
    runtime = _schema(_crd(repo, "clusterservingruntimes"), "v1alpha1")
    spec = runtime["properties"]["spec"]
    spec["properties"] = {k: v for k, v in spec["properties"].items() if k in RUNTIME_FIELDS}
    isvc = _schema(_crd(repo, "inferenceservices"), "v1beta1")
    predictor = isvc["properties"]["spec"]["properties"]["predictor"]
    predictor["properties"] = {k: v for k, v in predictor["properties"].items()
                               if k in PREDICTOR_FIELDS}
    isvc["properties"]["spec"]["properties"] = {"predictor": predictor}
    json.dump({"source": f"kserve/kserve {commit}, config/crd/full/",
               "ClusterServingRuntime": runtime, "InferenceService": isvc},
              sys.stdout, indent=1, sort_keys=True)


if __name__ == "__main__":
    main(sys.argv[1])
