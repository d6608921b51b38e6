"""The Open Inference Protocol's model repository extension (Triton's paths).

POST /v2/repository/index                 every model version and its state
POST /v2/repository/models/<name>/load    serve a model on disk again (admin key)
POST /v2/repository/models/<name>/unload  stop serving it, after its requests (admin key)

Versions come and go with the files (app.runtime.rollout); load and unload are for
taking a model out of service without touching the disk. Errors are `{"error": "..."}`.
"""

from __future__ import annotations

from flask import Blueprint, Response, g, jsonify, request

from app.protocols.context import repository, rollout
from app.protocols.errors import ApiError, answer_errors_as_protocol
from app.runtime.errors import UnknownModel

bp = Blueprint("v2_repository", __name__, url_prefix="/v2/repository")
answer_errors_as_protocol(bp)


@bp.post("/index")
def repository_index() -> Response:
    """Every version this worker knows: READY (served), LOADING, UNLOADING or UNAVAILABLE."""
    served = {(m.name, v) for m in repository().table.values() for v in m.versions}
    return jsonify([{"name": name, "version": str(version),
                     "state": "READY" if (name, version) in served else
                     _V2_STATES.get(state.state, "UNAVAILABLE"), "reason": state.error}
                    for (name, version), state in sorted(repository().states.items())])


_V2_STATES = {"LOADING": "LOADING", "UNLOADING": "UNLOADING"}


@bp.post("/models/<name>/load")
@bp.post("/models/<name>/unload")
def repository_load(name: str) -> Response:
    """Serve a model on disk again, or stop serving it (after its requests), in every
    worker: this one at once, the others at their next look at the repository."""
    caller = g.get("caller")
    if caller is None or not caller.admin:
        raise ApiError(403, "forbidden", "repository load and unload need AUTH=keys and a "
                       "key marked admin in API_KEYS_FILE")
    unload = request.path.endswith("/unload")
    if not unload and name not in rollout().sources():
        raise UnknownModel(f"unknown model {name!r}: not in the model repository")
    rollout().set_unloaded(name, unload)
    state = next((s for (n, _), s in repository().states.items() if n == name and s.error),
                 None)
    if not unload and name not in repository().table:
        raise ApiError(400, "load_failed", f"failed to load {name!r}: "
                       f"{state.error if state else 'no version the policy serves'}")
    return jsonify({"name": name, "unload" if unload else "load": True})  # KServe's answer
