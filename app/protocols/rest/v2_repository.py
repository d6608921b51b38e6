"""The Open Inference Protocol's model repository extension (Triton's paths).

POST /v2/repository/index                 every model version and its state
POST /v2/repository/models/<name>/load    serve a model on disk again (admin key)
POST /v2/repository/models/<name>/unload  stop serving it, after its requests (admin key)
POST /v2/repository/models/<name>/rollout/promote|abort   decide a roll-out (admin key)

Versions come and go with the files (app.runtime.rollout); load and unload are for
taking a model out of service without touching the disk; a roll-out (app.runtime.canary)
decides by itself unless an admin does first. Errors are `{"error": "..."}`.
"""

from __future__ import annotations

from flask import Blueprint, Response, g, jsonify, request

from app.protocols.rest.context import dataplane
from app.protocols.rest.errors import answer_errors_as_protocol

bp = Blueprint("v2_repository", __name__, url_prefix="/v2/repository")
answer_errors_as_protocol(bp)


@bp.post("/index")
def repository_index() -> Response:
    """Every version this worker knows: READY (served), LOADING, UNLOADING or UNAVAILABLE."""
    return jsonify([{"name": entry.name, "version": str(entry.version), "state": entry.state,
                     "reason": entry.reason, **({"rollout": entry.rollout} if entry.rollout
                                                else {})}
                    for entry in dataplane().repository_index()])


@bp.post("/models/<name>/load")
@bp.post("/models/<name>/unload")
def repository_load(name: str) -> Response:
    """Serve a model on disk again, or stop serving it (after its requests)."""
    unload = request.path.endswith("/unload")
    caller = g.get("caller")
    dataplane().set_loaded(name, not unload, admin=caller is not None and caller.admin)
    return jsonify({"name": name, "unload" if unload else "load": True})  # KServe's answer


@bp.post("/models/<name>/rollout/promote")
@bp.post("/models/<name>/rollout/abort")
def rollout_decision(name: str) -> Response:
    """Promote the candidate now, or abort the roll-out (the candidate is rolled back)."""
    caller = g.get("caller")
    status = dataplane().decide_rollout(name, request.path.endswith("/promote"),
                                        admin=caller is not None and caller.admin,
                                        who=caller.name if caller is not None else "")
    return jsonify({"name": name, "rollout": status})
