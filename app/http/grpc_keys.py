"""API keys on the gRPC door (AUTH=keys): the same keys as HTTP, from the call's metadata.

Every method but health and liveness/readiness (OPEN_METHODS) wants the key as
`authorization: Bearer <key>` (or `x-api-key`) metadata, else UNAUTHENTICATED.
"""

from __future__ import annotations

from typing import Any

import grpc

from app.http.keys import KeyFile, presented
from app.protocols.grpc.server import OPEN_METHODS


class KeyInterceptor(grpc.ServerInterceptor):
    """Refuses a call without a valid key, before its servicer runs."""

    def __init__(self, keys: KeyFile) -> None:
        self.keys = keys

    def intercept_service(self, continuation: Any, details: Any) -> Any:
        if details.method in OPEN_METHODS:
            return continuation(details)
        metadata = {k.lower(): v for k, v in details.invocation_metadata or ()}
        key = presented(metadata.get("authorization", ""), metadata.get("x-api-key", ""))
        self.keys.refresh()
        if key and self.keys.caller(key) is not None:
            return continuation(details)
        message = ("An API key is required: send it as 'authorization: Bearer <key>' "
                   "metadata." if not key else "The API key is not valid.")

        def refuse(_: Any, context: grpc.ServicerContext) -> Any:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

        return grpc.unary_unary_rpc_method_handler(refuse)
