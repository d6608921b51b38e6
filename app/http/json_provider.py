"""Flask's JSON provider on orjson: every API answer is serialised in C.

The json module spent ~17 us on a /predictlabel answer that orjson writes in ~1 us, and
most of a worker's time is Python around the model (bench/README.md). Numbers keep
their shortest round-trip digits; exponents are written without a leading zero
(`3.2e-7`, where the json module wrote `3.2e-07`): the same value for every JSON parser.
Keys keep their order (the seed response's), as with `sort_keys = False` before.
"""

from __future__ import annotations

from typing import Any

import orjson
from flask import Response
from flask.json.provider import DefaultJSONProvider

from app.protocols.rest.bodies import parse_json

_OPTIONS = orjson.OPT_NON_STR_KEYS


class OrjsonProvider(DefaultJSONProvider):
    """dumps/loads/response with orjson; Flask's own fallback for types orjson lacks."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        return orjson.dumps(obj, default=self.default, option=_OPTIONS).decode()

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return parse_json(s.encode() if isinstance(s, str) else s)

    def response(self, *args: Any, **kwargs: Any) -> Response:
        obj = self._prepare_response_obj(args, kwargs)
        body = orjson.dumps(obj, default=self.default, option=_OPTIONS) + b"\n"
        return self._app.response_class(body, mimetype=self.mimetype)
