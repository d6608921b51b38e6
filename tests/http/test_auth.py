"""Access control: API keys on every model endpoint of every protocol (AUTH=keys)."""

from __future__ import annotations

import hashlib
import http.client
import io
import os
import re
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from servers import ROOT, gunicorn

from app import create_app
from app.config import DEFAULT_MODEL_PATH, Settings
from app.http import keys as keys_module
from app.http.auth import OPEN_ENDPOINTS
from app.http.keys import KeyFile, KeyFileError, parse_keys

ALICE = "alice-0123456789-abcdefghij"
CI = "ci-key-0123456789-abcdefghij"
EXAMPLE = ROOT / "static" / "examples" / "bag.png"


def _keys_file(folder: Path, *lines: str) -> Path:
    path = folder / "api-keys"
    staging = folder / ".api-keys.new"
    staging.write_text("\n".join(lines) + "\n")
    staging.rename(path)  # a new inode, as editors and `mv` make it
    return path


@pytest.fixture()
def keys_path(tmp_path: Path) -> Path:
    digest = hashlib.sha256(CI.encode()).hexdigest()
    return _keys_file(tmp_path, "# who may call", f"alice  {ALICE}",
                      f"ci sha256:{digest} admin")


@pytest.fixture()
def secured(keys_path: Path) -> Flask:
    app = create_app({"MODEL_PATH": DEFAULT_MODEL_PATH, "AUTH": "keys",
                      "API_KEYS_FILE": keys_path, "CORS_ORIGINS": ""})
    app.testing = True
    return app


def test_key_lines_names_hashes_and_admin() -> None:
    digest = hashlib.sha256(CI.encode()).hexdigest()
    entries = parse_keys(f"alice {ALICE}  # a comment\n\n{CI}\nci sha256:{digest} admin\n",
                         "f")
    assert [(c.name, c.admin) for _, c in entries] == [("alice", False), ("key-3", False),
                                                        ("ci", True)]
    assert entries[1][0] == entries[2][0] == hashlib.sha256(CI.encode()).digest()


@pytest.mark.parametrize(("text", "message"), [
    ("", "f: no keys in it"),
    ("alice short\n", "f:1: a key is 16 to 512 printable characters"),
    (f"a b {ALICE}\n", "f:1: expected [name] key [admin]"),
    (f"x {ALICE}\nbob sha256:123\n", "f:2: a key is"),
])
def test_a_bad_keys_file_names_the_line_never_the_key(text: str, message: str) -> None:
    with pytest.raises(KeyFileError) as info:
        parse_keys(text, "f")
    assert message in str(info.value)
    assert ALICE not in str(info.value) and "short" not in str(info.value)


def test_the_comparison_never_depends_on_how_much_of_a_key_is_right(
        keys_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only digests are compared, every stored one, by hmac.compare_digest: a wrong key
    sharing 0 or 26 leading characters with a real one goes through the same steps."""
    keys = KeyFile(keys_path)
    calls: list[tuple[int, int]] = []
    real = keys_module.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(keys_module.hmac, "compare_digest", spy)
    traces = []
    for guess in ("x" * len(ALICE), ALICE[:-1] + "x", ALICE):
        calls.clear()
        found = keys.caller(guess)
        traces.append(list(calls))
        assert (found is not None) == (guess == ALICE)
    assert traces[0] == traces[1] == traces[2] == [(32, 32), (32, 32)]


def _url(rule) -> str:
    values = {"name": "fashion_mnist", "version": "1", "label": "stable", "filename": "x"}
    return re.sub(r"<(?:[^:>]+:)?([^>]+)>", lambda m: values.get(m.group(1), "x"), rule.rule)


def _closed_routes(app: Flask) -> list[tuple[str, str, str]]:
    """Every (method, url, endpoint) of the app that is not open: walked from the URL map,
    so a route added later is covered without being listed."""
    return [(method, _url(rule), rule.endpoint) for rule in app.url_map.iter_rules()
            if rule.endpoint not in OPEN_ENDPOINTS
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"})]


def _call(client: FlaskClient, method: str, url: str, **headers: str):
    return client.open(url, method=method, headers={"Accept": "application/json", **headers},
                       data={"image": (io.BytesIO(EXAMPLE.read_bytes()), "bag.png")}
                       if method == "POST" else None)


@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "wrong-key-0123456789abcdef"},
                                     {"Authorization": "Bearer " + ALICE[:-1]},
                                     {"Authorization": "Basic " + ALICE}])
def test_every_closed_route_refuses_without_a_right_key(secured: Flask,
                                                        headers: dict[str, str]) -> None:
    client = secured.test_client()
    routes = _closed_routes(secured)
    assert len(routes) >= 28
    for method, url, endpoint in routes:
        response = _call(client, method, url, **headers)
        assert response.status_code == 401, (method, url)
        assert response.headers.get("WWW-Authenticate") == 'Bearer realm="h5serve"', url
        body = response.get_json()
        if endpoint.startswith(("tfserving.", "v2.", "v2_repository.")):
            assert list(body) == ["error", "request_id"] and "API key" in body["error"], url
        else:
            assert body["success"] is False and body["error"]["code"] == "unauthorized", url
        assert ALICE[:-1] not in response.get_data(as_text=True)


@pytest.mark.parametrize("headers", [{"X-API-Key": ALICE}, {"Authorization": "Bearer " + CI},
                                     {"Authorization": "bearer  " + ALICE}])
def test_a_right_key_opens_every_route(secured: Flask, headers: dict[str, str]) -> None:
    client = secured.test_client()
    for method, url, _ in _closed_routes(secured):
        assert _call(client, method, url, **headers).status_code != 401, (method, url)
    answer = _call(client, "POST", "/predictlabel", **headers)
    assert answer.status_code == 200 and answer.get_json()["most_probable_label"] == "Bag"


@pytest.mark.parametrize("url", ["/healthz", "/readyz", "/v2/health/live", "/v2/health/ready",
                                 "/openapi.json", "/docs", "/static/style.css", "/"])
def test_health_docs_static_and_the_page_stay_open(secured: Flask, url: str) -> None:
    assert secured.test_client().get(url).status_code == 200


def test_the_page_asks_for_a_key_and_works_without_javascript(secured: Flask) -> None:
    client = secured.test_client()
    page = client.get("/").get_data(as_text=True)
    assert 'name="api_key" type="password"' in page
    upload = {"image": (io.BytesIO(EXAMPLE.read_bytes()), "bag.png")}
    refused = client.post("/", data=upload, headers={"Accept": "text/html"})
    assert refused.status_code == 401 and "API key" in refused.get_data(as_text=True)
    upload = {"image": (io.BytesIO(EXAMPLE.read_bytes()), "bag.png"), "api_key": ALICE}
    answered = client.post("/", data=upload, headers={"Accept": "text/html"})
    assert answered.status_code == 200 and "Bag" in answered.get_data(as_text=True)


def test_rotation_and_revocation_take_effect_without_a_restart(secured: Flask,
                                                               keys_path: Path) -> None:
    client = secured.test_client()
    new = "alice-rotated-0123456789-xyz"
    _keys_file(keys_path.parent, f"alice {ALICE}", f"alice-new {new}")  # add the new key
    time.sleep(1.1)
    for key in (ALICE, new):
        assert _call(client, "GET", "/model", **{"X-API-Key": key}).status_code == 200
    _keys_file(keys_path.parent, f"alice-new {new}")  # revoke the old one
    time.sleep(1.1)
    assert _call(client, "GET", "/model", **{"X-API-Key": ALICE}).status_code == 401
    assert _call(client, "GET", "/model", **{"X-API-Key": new}).status_code == 200
    keys_path.write_text("this line is not a key file\n")  # broken: the last keys stay
    time.sleep(1.1)
    assert _call(client, "GET", "/model", **{"X-API-Key": new}).status_code == 200


def _api_keys(keys_path: Path, *args: str) -> str:
    """scripts/api-keys.sh itself (a new file renamed over the old one); its stdout."""
    done = subprocess.run([str(ROOT / "scripts" / "api-keys.sh"), *args], check=True,
                          capture_output=True, text=True, timeout=30,
                          env={**os.environ, "API_KEYS_FILE": str(keys_path)})
    return done.stdout.strip()


@pytest.mark.slow  # a live gunicorn
def test_rotation_under_load_fails_no_request(secured: Flask, keys_path: Path,
                                              tmp_path: Path) -> None:
    """Two gunicorn workers under a steady load of 4 clients while scripts/api-keys.sh adds a
    key and then revokes the old one: the new key works everywhere within the poll interval
    (1 s), the revoked one is refused everywhere, and no request made with a key that was
    valid all along fails (no 401, no 5xx, no connection error)."""
    import requests

    poll = 1.0 + 0.3  # KeyFile's recheck interval, and a little for the request in flight
    image = EXAMPLE.read_bytes()
    current = {"key": ALICE}
    stop = threading.Event()
    log: list[tuple[str, float, float, int | str]] = []  # key, sent, answered, status

    def client(number: int) -> None:
        while not stop.is_set():
            key, sent = current["key"], time.monotonic()  # the key valid when sent
            try:
                if number % 2:
                    status = requests.get(base + "/v2/models/fashion_mnist", timeout=30,
                                          headers={"X-API-Key": key}).status_code
                else:
                    status = requests.post(base + "/predictlabel", timeout=30,
                                           headers={"Authorization": f"Bearer {key}"},
                                           files={"image": ("bag.png", image)}).status_code
            except requests.RequestException as exc:
                status = type(exc).__name__
            log.append((key, sent, time.monotonic(), status))

    def status(key: str, method: str = "GET", url: str = "/model") -> int:
        return requests.request(method, base + url, headers={"X-API-Key": key}, timeout=30,
                                files={"image": ("bag.png", image)} if method == "POST"
                                else None).status_code

    with gunicorn(DEFAULT_MODEL_PATH, tmp_path / "gunicorn.log", workers=2, AUTH="keys",
                  API_KEYS_FILE=str(keys_path), CORS_ORIGINS="") as (base, _), \
            ThreadPoolExecutor(4) as pool:
        clients = [pool.submit(client, n) for n in range(4)]
        try:
            time.sleep(1.0)
            new = _api_keys(keys_path, "add", "alice-next")
            added = time.monotonic()  # the new file is in place
            while True:  # each worker looks at the file at most a second after its last look
                sent = time.monotonic()
                if status(new) != 401:
                    break
                assert sent < added + 1.05, "the new key did not work within the poll interval"
            time.sleep(max(0.0, added + poll - time.monotonic()))
            assert [status(new) for _ in range(10)] == [200] * 10
            current["key"] = new  # the clients move to the new key
            time.sleep(0.5)
            revoked = time.monotonic()
            _api_keys(keys_path, "revoke", "alice")
            time.sleep(poll)
            assert [status(ALICE) for _ in range(10)] == [401] * 10
            time.sleep(1.0)
        finally:
            stop.set()
        for done in clients:
            done.result()
        closed = _closed_routes(secured)
        for method, url, _ in closed:
            assert status(ALICE, method, url) == 401, (method, url)
        for method, url, _ in closed:
            answer = status(new, method, url)
            assert answer != 401 and answer < 500, (method, url, answer)
    assert len(log) >= 40, "a few seconds of load"
    assert {s for _, _, _, s in log} <= {200, 401}, {s for _, _, _, s in log}
    valid_all_along = [(key, s) for key, sent, answered, s in log
                       if (key == ALICE and answered < revoked) or key == new]
    assert [s for _, s in valid_all_along if s != 200] == []
    assert {key for key, _ in valid_all_along} == {ALICE, new}
    served = re.findall(r" <(\d+)> key=alice", (tmp_path / "gunicorn.log").read_text())
    assert len(set(served)) == 2, "both workers answered"


@pytest.mark.parametrize(("settings", "message"), [
    ({"AUTH": "keys"}, "AUTH=keys needs API_KEYS_FILE"),
    ({"AUTH": "keys", "API_KEYS_FILE": "/k", "CORS_ORIGINS": "*"},
     "CORS_ORIGINS must list the origins"),
    ({"AUTH": "keys", "API_KEYS_FILE": "/k", "CORS_ORIGINS": "https://a.example, *"},
     "CORS_ORIGINS must list the origins"),
    ({"AUTH": "on"}, "AUTH must be off or keys"),
])
def test_auth_settings_are_checked(settings: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Settings.load(settings, environ={})


def test_keys_alone_mean_no_cross_origin_callers_and_an_open_service_allows_any() -> None:
    assert Settings.load({"AUTH": "keys", "API_KEYS_FILE": "/k"}, environ={}).cors_origins == []
    assert Settings.load({}, environ={}).cors_origins == ["*"]
    assert Settings.load({"CORS_ORIGINS": ""}, environ={}).cors_origins == []
    listed = Settings.load({"AUTH": "keys", "API_KEYS_FILE": "/k",
                            "CORS_ORIGINS": "https://a.example"}, environ={})
    assert listed.cors_origins == ["https://a.example"]


def test_keys_on_in_one_setting_read_the_file_the_script_writes(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """AUTH=keys alone: secrets/api-keys, where scripts/api-keys.sh writes, when it exists."""
    written = tmp_path / "api-keys"
    monkeypatch.setattr("app.config.settings.DEFAULT_KEYS_FILE", written)
    with pytest.raises(ValueError, match="secrets/api-keys"):
        Settings.load({"AUTH": "keys"}, environ={})
    written.write_text("")
    assert Settings.load({"AUTH": "keys"}, environ={}).keys_file == written
    named = Settings.load({"AUTH": "keys", "API_KEYS_FILE": "/k"}, environ={})
    assert named.keys_file == Path("/k")


@pytest.mark.slow  # a live gunicorn
def test_no_key_reaches_a_log_line_or_a_metric(keys_path: Path, tmp_path: Path) -> None:
    """A live server: right, wrong, hostile and revoked keys; then grep everything."""
    import requests

    log = tmp_path / "gunicorn.log"
    wrong = "wrong-but-long-0123456789"
    hostile = {"X-API-Key": "k" * 7000, "Authorization": "Bearer " + "é" * 20}
    with gunicorn(DEFAULT_MODEL_PATH, log, AUTH="keys", API_KEYS_FILE=str(keys_path),
                  CORS_ORIGINS="", LOG_LEVEL="debug") as (url, _):
        for headers, status in (({"X-API-Key": ALICE}, 200), ({"X-API-Key": wrong}, 401),
                                ({"Authorization": f"Bearer {CI}"}, 200),
                                ({"X-API-Key": ""}, 401),
                                ({"X-API-Key": hostile["X-API-Key"]}, 401),
                                ({"Authorization": hostile["Authorization"]}, 401)):
            response = requests.post(url + "/predictlabel", headers=headers, timeout=30,
                                     files={"image": ("bag.png", EXAMPLE.read_bytes())})
            assert response.status_code == status, (headers.keys(), response.text[:200])
        connection = http.client.HTTPConnection(url.removeprefix("http://"), timeout=10)
        connection.putrequest("GET", "/model")
        for key in (wrong, ALICE):  # the header twice: one answer, never a 5xx
            connection.putheader("X-API-Key", key)
        connection.endheaders()
        assert connection.getresponse().status in (200, 401)
        connection.close()
        metrics = requests.get(url + "/metrics", timeout=10).text
    text = log.read_text()
    assert "key=alice" in text and "key=ci" in text and "key=-" in text
    for secret in (ALICE, CI, wrong, hashlib.sha256(CI.encode()).hexdigest()):
        assert secret not in text and secret not in metrics


def test_cors_preflights_pass_without_a_key_and_the_call_still_needs_one(
        keys_path: Path) -> None:
    """A browser's preflight never carries the key: it must get flask-cors's 200 (for the
    allowed origin only, no credentials), while the real call still needs the key."""
    allowed, other = "https://app.example.com", "https://evil.example.org"
    app = create_app({"MODEL_PATH": DEFAULT_MODEL_PATH, "AUTH": "keys",
                      "API_KEYS_FILE": keys_path, "CORS_ORIGINS": allowed})
    client = app.test_client()
    for url, method in (("/predictlabel", "POST"), ("/v1/models/fashion_mnist:predict", "POST"),
                        ("/v2/models/fashion_mnist/infer", "POST"), ("/model", "GET")):
        preflight = client.options(url, headers={
            "Origin": allowed, "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization, x-api-key, content-type"})
        assert preflight.status_code == 200, (url, preflight.get_data(as_text=True)[:200])
        assert preflight.headers["Access-Control-Allow-Origin"] == allowed, url
        assert method in preflight.headers["Access-Control-Allow-Methods"], url
        allow = {h.strip().lower()
                 for h in preflight.headers["Access-Control-Allow-Headers"].split(",")}
        assert {"authorization", "x-api-key"} <= allow, url
        assert "Access-Control-Allow-Credentials" not in preflight.headers, url
        foreign = client.options(url, headers={"Origin": other,
                                               "Access-Control-Request-Method": method,
                                               "Access-Control-Request-Headers": "x-api-key"})
        assert not [k for k, _ in foreign.headers if k.startswith("Access-Control-")], url
    no_key = _call(client, "POST", "/predictlabel", Origin=allowed)
    assert no_key.status_code == 401
    assert no_key.headers["Access-Control-Allow-Origin"] == allowed, "the page can read why"
    for headers in ({"X-API-Key": ALICE}, {"Authorization": f"Bearer {ALICE}"}):
        answer = _call(client, "POST", "/predictlabel", Origin=allowed, **headers)
        assert answer.status_code == 200
        assert answer.headers["Access-Control-Allow-Origin"] == allowed
        assert "Access-Control-Allow-Credentials" not in answer.headers
        assert _call(client, "POST", "/predictlabel", Origin=other,
                     **headers).headers.get("Access-Control-Allow-Origin") is None
