"""gunicorn's access log as JSON lines (LOG_FORMAT=json; gunicorn.conf.py picks this).

One object per request, on stdout with the app's own JSON lines: time, level, request
id, method, path, status, duration, model and version (from the response's headers),
client, the API key's name (never the key) and a verified client certificate's subject.
Built with json.dumps, so a quote in a user agent cannot break a line.
"""

from __future__ import annotations

import json
import time
from typing import Any

from gunicorn.glogging import Logger

from app.http.logs import iso_time


class JsonLogger(Logger):
    """gunicorn's logger with a JSON access log; its error log stays as it is."""

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        if not self.cfg.accesslog:
            return
        atoms = _Raw(self.atoms(resp, req, environ, request_time))
        entry = {
            "time": iso_time(time.time()), "level": "INFO", "logger": "access",
            "request_id": atoms["{x-request-id}o"], "method": atoms["m"],
            "path": atoms["U"], "query": atoms["q"] or None, "status": int(atoms["s"]),
            "bytes": atoms["B"], "duration_ms": round(request_time.total_seconds() * 1000, 2),
            "client": atoms["h"], "user_agent": atoms["a"],
            "model": _value(atoms["{x-model-name}o"]),
            "version": _value(atoms["{x-model-version}o"]),
            "key": environ.get("h5serve.caller"),
            "cert": _value(atoms["{x-client-cert-subject}i"]), "pid": atoms["p"],
        }
        self.access_log.info(json.dumps(entry, ensure_ascii=False))


class _Raw(dict):
    """gunicorn's atoms unescaped (json.dumps escapes), "-" for a header not sent."""

    def __missing__(self, key: str) -> str:
        return "-"


def _value(atom: str) -> str | None:
    return None if atom == "-" else atom
