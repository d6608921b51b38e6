"""gunicorn's access log, cheap per line: text (the default) or JSON lines (LOG_FORMAT=json).

gunicorn builds every access line from a dict of *all* atoms: each request header, each
response header and each environ entry, escaped, for every request (about a tenth of a
worker's Python time under load, measured with `make profile`). `Atoms` computes only the
atoms the format names, the way gunicorn computes and escapes them, so the text line is
byte for byte gunicorn's own. gunicorn.conf.py picks AccessLogger, or JsonLogger.

The JSON line is one object per request, on stdout with the app's own JSON lines: time,
level, request id, method, path, status, duration, model and version (from the
response's headers), the trace ID (X-Trace-ID, with tracing on), client, the API key's
name (never the key) and a verified client certificate's subject. Built with json.dumps,
so a quote in a user agent cannot break it.

gunicorn's master imports this module: it must not import Flask (nor app modules that
do), or the workers inherit a half-torn-down Flask at exit and print tracebacks.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import Any

from gunicorn.glogging import Logger


def iso_time(seconds: float) -> str:
    """UTC, to the millisecond: 2026-12-01T21:00:00.123Z (the app's JSON lines use it too)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + \
        f".{int(seconds * 1000) % 1000:03d}Z"


class Atoms(dict):
    """gunicorn's access-log atoms, each computed when the format asks for it."""

    def __init__(self, logger: Logger, resp: Any, req: Any, environ: dict[str, Any],
                 request_time: Any, escape: bool = True) -> None:
        # Never empty: logging only treats a non-empty mapping as the format's mapping.
        super().__init__(h=environ.get("REMOTE_ADDR", "-"))
        self._context = (logger, resp, req, environ, request_time)
        self._escape = escape

    def __missing__(self, key: str) -> Any:
        value = self._atom(key)
        if self._escape and isinstance(value, str):
            value = value.replace('"', '\\"')
        self[key] = value
        return value

    def _atom(self, key: str) -> Any:
        logger, resp, req, environ, took = self._context
        if key.startswith("{"):
            name, kind = key[1:-2].lower(), key[-1:]
            if kind == "e":
                if name in environ:
                    return environ[name]
                return next((v for k, v in environ.items() if k.lower() == name), "-")
            headers = req.headers if kind == "i" else resp.headers
            found = [v for k, v in headers if k.lower() == name]
            return found[-1] if found else "-"  # gunicorn: the last of repeated headers
        if key in _SIMPLE:
            return _SIMPLE[key](environ, resp, took)
        if key in ("t", "u", "T", "D", "L"):  # the rarely used ones: gunicorn's own
            return logger.atoms(resp, req, environ, took)[key]
        return "-"


def _status(resp: Any) -> Any:
    return resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status


def body_bytes(resp: Any) -> Any:
    """The body's size in bytes. gunicorn counts what write() sends but not what
    sendfile() sends, so a file (Flask's send_file: every /static response) was logged
    as 0 bytes: then its declared length is what went out (gunicorn's sendfile sends
    exactly that). A body left out on purpose (HEAD, 204, 304) stays 0."""
    sent = getattr(resp, "sent", None)
    declared = getattr(resp, "response_length", None)
    if not sent and declared and not getattr(resp, "_omits_body", False):
        return declared
    return sent


_SIMPLE: dict[str, Callable[[dict[str, Any], Any, Any], Any]] = {
    "r": lambda e, _, __: f"{e['REQUEST_METHOD']} {e['RAW_URI']} {e['SERVER_PROTOCOL']}",
    "s": lambda _, resp, __: _status(resp),
    "m": lambda e, _, __: e.get("REQUEST_METHOD"),
    "U": lambda e, _, __: e.get("PATH_INFO"),
    "q": lambda e, _, __: e.get("QUERY_STRING"),
    "H": lambda e, _, __: e.get("SERVER_PROTOCOL"),
    "B": lambda _, resp, __: body_bytes(resp),
    "b": lambda _, resp, __: "-" if body_bytes(resp) is None else str(body_bytes(resp)),
    "f": lambda e, _, __: e.get("HTTP_REFERER", "-"),
    "a": lambda e, _, __: e.get("HTTP_USER_AGENT", "-"),
    "l": lambda _, __, ___: "-",
    "M": lambda _, __, took: took.seconds * 1000 + int(took.microseconds / 1000),
    "p": lambda _, __, ___: f"<{os.getpid()}>",
}


class AccessLogger(Logger):
    """gunicorn's logger; its access line formatted from only the atoms it uses."""

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        if not self.access_log_enabled:
            return
        self.access_log.info(self.cfg.access_log_format,
                             Atoms(self, resp, req, environ, request_time))


class JsonLogger(Logger):
    """gunicorn's logger with a JSON access log; its error log stays as it is."""

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        if not self.access_log_enabled:
            return
        atoms = Atoms(self, resp, req, environ, request_time, escape=False)
        entry = {
            "time": iso_time(time.time()), "level": "INFO", "logger": "access",
            "request_id": atoms["{x-request-id}o"], "method": atoms["m"],
            "path": atoms["U"], "query": atoms["q"] or None, "status": int(atoms["s"]),
            "bytes": atoms["B"], "duration_ms": round(request_time.total_seconds() * 1000, 2),
            "client": atoms["h"], "user_agent": atoms["a"],
            "model": _value(atoms["{x-model-name}o"]),
            "version": _value(atoms["{x-model-version}o"]),
            "trace_id": _value(atoms["{x-trace-id}o"]), "key": environ.get("h5serve.caller"),
            "cert": _value(atoms["{x-client-cert-subject}i"]), "pid": atoms["p"],
        }
        self.access_log.info(json.dumps(entry, ensure_ascii=False))


def _value(atom: str) -> str | None:
    return None if atom == "-" else atom
