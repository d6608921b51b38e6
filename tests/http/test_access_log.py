"""The cheap access logger writes exactly gunicorn's own line, for every atom."""

from __future__ import annotations

import ast
import datetime
import json
import logging
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests
from gunicorn.config import Config
from gunicorn.glogging import Logger
from servers import ROOT, gunicorn

from app.config import DEFAULT_MODEL_PATH
from app.http.gunicorn_logging import AccessLogger, JsonLogger


def _served_format() -> str:
    """gunicorn.conf.py's access_log_format, read without running the file (running it
    would set PROMETHEUS_MULTIPROC_DIR and TensorFlow's thread counts for the whole test
    session)."""
    tree = ast.parse((ROOT / "gunicorn.conf.py").read_text())
    assignment = next(node for node in tree.body if isinstance(node, ast.Assign)
                      and getattr(node.targets[0], "id", "") == "access_log_format")
    return ast.literal_eval(assignment.value)


SERVED_FORMAT = _served_format()
EVERY_ATOM = " ".join(f"%({a})s" for a in "hlutrsmUqHbBfaTDMLp") + \
    " %({x-request-id}o)s %({User-Agent}i)s %({h5serve.caller}e)s %({nope}i)s %({REMOTE_ADDR}e)s"


def _line(logger_class: type[Logger], fmt: str, request: dict[str, object]) -> str:
    cfg = Config()
    cfg.set("accesslog", "-")
    cfg.set("access_log_format", fmt)
    logger = logger_class(cfg)
    lines: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    logger.access_log.handlers = [handler]
    logger.access(request["resp"], request["req"], request["environ"],
                  datetime.timedelta(seconds=1, microseconds=234567))
    return lines[0]


def _request(agent: str, headers: list[tuple[str, str]], caller: str | None) -> dict[str, object]:
    environ = {"REQUEST_METHOD": "POST", "RAW_URI": "/predictlabel?x=1",
               "PATH_INFO": "/predictlabel", "QUERY_STRING": "x=1",
               "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.77",
               "HTTP_USER_AGENT": agent}
    if caller:
        environ["h5serve.caller"] = caller
    resp = SimpleNamespace(status="200 OK", sent=431, headers=[
        ("Content-Type", "application/json"), ("X-Request-ID", "abc"), ("X-Request-ID", "def")])
    return {"environ": environ, "resp": resp,
            "req": SimpleNamespace(headers=[("USER-AGENT", agent), *headers])}


@pytest.mark.parametrize("fmt", [SERVED_FORMAT, EVERY_ATOM])
@pytest.mark.parametrize("request_", [
    _request("curl/8.5", [("X-FORWARDED-FOR", "10.0.0.1")], "alice"),
    _request('evil "agent" \\', [("X-CLIENT-CERT-SUBJECT", 'CN="x"')], None),
    _request("", [("X-FORWARDED-FOR", "1.1.1.1"), ("X-FORWARDED-FOR", "2.2.2.2")], None),
], ids=["plain", "quotes", "repeated"])
def test_the_line_is_gunicorns_own(fmt: str, request_: dict[str, object],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Logger, "now", lambda self: "[02/Dec/2026:01:02:03 +0000]")
    expected = _line(Logger, fmt, request_)
    assert _line(AccessLogger, fmt, request_) == expected
    assert "- - [02/Dec/2026" in expected or "%(t)s" not in fmt


def test_the_json_line_keeps_quotes_unescaped() -> None:
    line = json.loads(_line(JsonLogger, SERVED_FORMAT, _request('a "b"', [], "ci")))
    assert line["user_agent"] == 'a "b"' and line["key"] == "ci" and line["status"] == 200
    assert line["request_id"] == "def" and line["path"] == "/predictlabel"


def test_gunicorns_master_loads_no_flask_with_the_logger() -> None:
    """The master imports the logger class before forking: Flask must not come along."""
    import subprocess
    import sys

    probe = "import sys, app.http.gunicorn_logging; print('flask' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                            text=True, check=True)
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize(("sent", "length", "omits_body", "logged"), [
    (0, 9741, False, 9741),  # a file by sendfile(), which gunicorn does not count
    (431, 431, False, 431),  # written: gunicorn's own count
    (0, 9741, True, 0),  # HEAD (or 304): the length is declared, no body goes out
    (0, None, False, 0),  # an empty body
    (None, None, False, None),  # no response at all
])
def test_the_size_is_what_went_out(sent: int | None, length: int | None, omits_body: bool,
                                   logged: int | None) -> None:
    request = _request("curl/8.5", [], None)
    resp = request["resp"]
    resp.sent, resp.response_length, resp._omits_body = sent, length, omits_body
    assert _line(AccessLogger, "%(B)s %(b)s", request) == \
        f"{logged} {'-' if logged is None else logged}"
    assert json.loads(_line(JsonLogger, SERVED_FORMAT, request))["bytes"] == logged


@pytest.mark.slow  # a live gunicorn
def test_a_static_file_is_logged_with_its_size(tmp_path: Path) -> None:
    """Served by gunicorn's sendfile (Flask's send_file), as a browser loads the page."""
    size = (ROOT / "static" / "app.js").stat().st_size
    log = tmp_path / "gunicorn.log"
    with gunicorn(DEFAULT_MODEL_PATH, log) as (base, _):
        assert len(requests.get(f"{base}/static/app.js", timeout=10).content) == size
        assert requests.head(f"{base}/static/app.js", timeout=10).status_code == 200
    lines = [line for line in log.read_text().splitlines() if "/static/app.js " in line]
    assert [line.split('" ', 1)[1].split()[:2] for line in lines] == \
        [["200", str(size)], ["200", "0"]], lines
