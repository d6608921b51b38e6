"""How the app logs: text for people (the default) or JSON lines (LOG_FORMAT=json).

Text goes to stderr, as before. JSON goes to stdout, one object per line, beside
gunicorn's access log (app.http.gunicorn_logging), so a log shipper reads one clean
stream; TensorFlow's C++ lines are written to stderr by TensorFlow itself, as plain text,
and never mix into it. Every line written while a request runs names its request ID, and
with tracing on its trace ID, so a log line leads to the trace.
"""

from __future__ import annotations

import json
import logging
import sys

from app.http.gunicorn_logging import iso_time
from app.protocols.rest.request_ids import RequestIdFilter
from app.runtime.tracing import current_trace_id

TEXT_FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s [%(request_id)s]: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, pid, request_id, message."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": iso_time(record.created), "level": record.levelname,
                 "logger": record.name, "pid": record.process,
                 "request_id": getattr(record, "request_id", "-"),
                 "message": record.getMessage()}
        if trace_id := current_trace_id():
            entry["trace_id"] = trace_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str, log_format: str) -> None:
    """Install (or replace) the app's one handler on the root logger."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "h5serve", False)]:
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stdout if log_format == "json" else sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json"
                         else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(RequestIdFilter())
    handler.h5serve = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("app").setLevel(level.upper())
