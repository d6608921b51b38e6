"""The production stack for real: scripts/stack.sh runs nginx (TLS) in front of gunicorn.

Every request goes to 127.0.0.1 (or another loopback address) only.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from hostile import corpus
from servers import ROOT, free_port

pytestmark = [pytest.mark.slow]

EXAMPLE = ROOT / "static" / "examples" / "ankle_boot.png"


@dataclass
class Stack:
    dir: Path
    env: dict[str, str]
    https: str
    http: str
    cert: str

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(ROOT / "scripts" / "stack.sh"), *args], env=self.env,
                              capture_output=True, text=True, timeout=180)

    def app_log(self) -> str:
        return (self.dir / "logs" / "app.log").read_text()

    def log_lines(self, log: str, needle: str, timeout: float = 10) -> list[str]:
        """Lines of logs/<log> holding needle, waiting for them: access logs are written
        after the answer has been sent."""
        deadline = time.monotonic() + timeout
        while not (lines := [x for x in (self.dir / "logs" / log).read_text().splitlines()
                             if needle in x]):
            assert time.monotonic() < deadline, f"{needle!r} never reached {log}"
            time.sleep(0.05)
        return lines


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def _client_ca(folder: Path, name: str = "h5serve-test-clients") -> Path:
    """A CA and one client certificate it signed (ca.pem, client.pem, client.key)."""
    folder.mkdir(parents=True)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
             f"/CN={name}", "-keyout", str(folder / "ca.key"), "-out", str(folder / "ca.pem"))
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=test-client/O=h5serve",
             "-keyout", str(folder / "client.key"), "-out", str(folder / "client.csr"))
    _openssl("x509", "-req", "-in", str(folder / "client.csr"), "-CA", str(folder / "ca.pem"),
             "-CAkey", str(folder / "ca.key"), "-CAcreateserial", "-days", "2",
             "-out", str(folder / "client.pem"))
    return folder / "ca.pem"


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    directory = Path(tempfile.mkdtemp(prefix="h5serve-stack-test."))
    ports = {"APP_PORT": free_port(), "HTTP_PORT": free_port(), "HTTPS_PORT": free_port()}
    env = {**os.environ, **{k: str(v) for k, v in ports.items()},
           "STACK_DIR": str(directory), "STACK_STATE": str(directory / "state"),
           "VENV": sys.prefix, "WORKERS": "1", "GRACEFUL_TIMEOUT": "5", "MAX_INFLIGHT": "6",
           "KEY_RATE_LIMIT": "2r/s", "KEY_RATE_LIMIT_BURST": "5"}
    env.update(TLS_CLIENT_CA=str(_client_ca(directory / "client-ca")),
               MTLS_PORT=str(free_port()), GRPC_PORT=str(free_port()),
               APP_GRPC_PORT=str(free_port()))
    stack = Stack(directory, env, f"https://127.0.0.1:{ports['HTTPS_PORT']}",
                  f"http://127.0.0.1:{ports['HTTP_PORT']}",
                  str(directory / "certs" / "fullchain.pem"))
    started = stack.run("up")
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        yield stack
    finally:
        stopped = stack.run("down")
        shutil.rmtree(directory, ignore_errors=True)
        assert stopped.returncode == 0, stopped.stderr


def test_http_redirects_to_https_with_the_public_port(stack: Stack) -> None:
    response = requests.get(stack.http + "/predictlabel?x=1", allow_redirects=False, timeout=10)
    assert response.status_code == 301
    assert response.headers["Location"] == stack.https + "/predictlabel?x=1"


def test_acme_challenge_is_served_over_plain_http(stack: Stack) -> None:
    challenge = stack.dir / "acme" / ".well-known" / "acme-challenge"
    challenge.mkdir(parents=True, exist_ok=True)
    (challenge / "token123").write_text("token123.key")
    (challenge / "token123").chmod(0o644)
    for part in (stack.dir / "acme", challenge.parent, challenge):
        part.chmod(0o755)
    response = requests.get(stack.http + "/.well-known/acme-challenge/token123", timeout=10)
    assert (response.status_code, response.text) == (200, "token123.key")


def test_predictlabel_over_https_through_nginx(stack: Stack) -> None:
    with EXAMPLE.open("rb") as f:
        response = requests.post(stack.https + "/predictlabel", files={"image": f},
                                 verify=stack.cert, timeout=30)
    assert response.status_code == 200
    assert response.json()["most_probable_label"] == "Ankle boot"
    assert response.headers["Strict-Transport-Security"] == "max-age=63072000"
    assert response.headers["Server"] == "nginx", "no version leak"


def test_hsts_is_on_error_responses_too(stack: Stack) -> None:
    response = requests.get(stack.https + "/no-such-thing", verify=stack.cert, timeout=10)
    assert response.status_code == 404
    assert response.headers["Strict-Transport-Security"] == "max-age=63072000"


def test_static_files_come_from_nginx(stack: Stack) -> None:
    response = requests.get(stack.https + "/static/style.css", verify=stack.cert, timeout=10)
    assert response.status_code == 200 and "text/css" in response.headers["Content-Type"]
    assert "/static/style.css" not in stack.app_log(), "gunicorn never saw it"


@pytest.mark.parametrize("path", ["/predictlabel", "/models/fashion_mnist/predictlabel",
                                  "/models/fashion_mnist/versions/1/predict", "/explain",
                                  "/v1/models/fashion_mnist:predict",
                                  "/v1/models/fashion_mnist:explain", "/some/route/added/later"])
def test_body_over_the_limit_gets_nginx_413_json(stack: Stack, path: str) -> None:
    """Every API path, the per-model ones and any added later, without listing them."""
    body = b"\0" * (16 * 1024 * 1024)
    response = requests.post(stack.https + path, files={"image": ("big.png", body)},
                             verify=stack.cert, timeout=60)
    assert response.status_code == 413
    assert response.json()["error"] == {
        "code": "payload_too_large",
        "message": "Request body is too large: the limit is 15 MiB.",
        "request_id": response.headers["X-Request-ID"]}


def test_the_upload_page_keeps_an_html_413(stack: Stack) -> None:
    body = b"\0" * (16 * 1024 * 1024)
    response = requests.post(stack.https + "/", files={"image": ("big.png", body)},
                             verify=stack.cert, timeout=60)
    assert response.status_code == 413 and "<html>" in response.text


def _handshake(stack: Stack, version: ssl.TLSVersion) -> str:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(stack.cert)
    context.set_ciphers("DEFAULT:@SECLEVEL=0")  # let the client offer old versions
    context.minimum_version = context.maximum_version = version
    port = int(stack.https.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        try:
            with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                return str(tls.version())
        except ssl.SSLError as exc:
            return exc.reason or str(exc)


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1])
def test_old_tls_versions_are_refused_by_the_server(stack: Stack, version) -> None:
    assert _handshake(stack, version) == "TLSV1_ALERT_PROTOCOL_VERSION"


@pytest.mark.parametrize(("version", "name"), [(ssl.TLSVersion.TLSv1_2, "TLSv1.2"),
                                               (ssl.TLSVersion.TLSv1_3, "TLSv1.3")])
def test_tls_12_and_13_succeed(stack: Stack, version, name) -> None:
    assert _handshake(stack, version) == name


def test_client_address_reaches_the_app_log(stack: Stack) -> None:
    """Connect from 127.0.0.77: nginx forwards it, ProxyFix puts it in gunicorn's log."""
    context = ssl.create_default_context(cafile=stack.cert)
    port = int(stack.https.rsplit(":", 1)[1])
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=context,
                                             source_address=("127.0.0.77", 0), timeout=10)
    connection.request("GET", "/healthz?from=77")
    assert connection.getresponse().status == 200
    connection.close()
    lines = stack.log_lines("app.log", "/healthz?from=77")
    assert lines[-1].startswith("127.0.0.77 "), lines


def test_app_down_gives_502_json_and_recovers_without_restarting_nginx(stack: Stack) -> None:
    nginx_pid = (stack.dir / "nginx.master.pid").read_text()
    assert stack.run("stop-app").returncode == 0
    response = requests.post(stack.https + "/predictlabel", files={"image": EXAMPLE.read_bytes()},
                             verify=stack.cert, timeout=30)
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "bad_gateway"
    per_model = requests.get(stack.https + "/models/fashion_mnist", verify=stack.cert,
                             timeout=30)
    assert per_model.status_code == 502 and per_model.json()["error"]["code"] == "bad_gateway"
    _grpc_server_ready_fails(stack, "UNAVAILABLE", "not reachable")
    started = stack.run("start-app")
    assert started.returncode == 0, started.stderr
    response = requests.post(stack.https + "/predictlabel", files={"image": EXAMPLE.read_bytes()},
                             verify=stack.cert, timeout=30)
    assert response.status_code == 200
    assert (stack.dir / "nginx.master.pid").read_text() == nginx_pid


def test_hostile_corpus_through_nginx(stack: Stack) -> None:
    """Every hostile case through nginx TLS: its exact answer, never a 5xx, still healthy."""
    cases = corpus(15 * 1024 * 1024, 1024, 50_000_000)
    with requests.Session() as session:
        for case in cases:
            headers = {**case.headers,
                       **({"Content-Type": case.content_type} if case.content_type else {})}
            response = session.post(stack.https + case.path, data=case.body, headers=headers,
                                    verify=stack.cert, timeout=60)
            assert response.status_code == case.status, (case.name, response.text[:300])
            if case.code is not None:
                assert response.json()["error"]["code"] == case.code, case.name
    assert requests.get(stack.https + "/readyz", verify=stack.cert, timeout=10).ok


def test_rate_limit_answers_429_json(stack: Stack) -> None:
    """300 requests at once, far beyond RATE_LIMIT_BURST (100): the excess is refused, as JSON."""
    def ask(_: int) -> requests.Response:
        return requests.get(stack.https + "/healthz", verify=stack.cert, timeout=30)

    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(ask, range(300)))
    limited = [r for r in statuses if r.status_code == 429]
    assert limited, "the burst of 100 was exceeded, some requests must be limited"
    assert json.loads(limited[0].text)["error"]["code"] == "too_many_requests"
    assert limited[0].headers["Retry-After"] == "1"


def test_one_key_is_limited_on_its_own(stack: Stack) -> None:
    """KEY_RATE_LIMIT holds per key, whichever header carries it: a leaked key that floods
    is refused (429 JSON) while another key and key-less requests still pass."""
    def ask(headers: dict[str, str]) -> int:
        return requests.get(stack.https + "/healthz", headers=headers, verify=stack.cert,
                            timeout=30).status_code

    time.sleep(2.5)  # let the per-address bucket (burst 100 at 50 r/s) drain after others
    flood = [ask({"X-API-Key": "leaked-key-0123456789"}) for _ in range(20)]
    assert flood.count(429) >= 10 and flood[:3] == [200] * 3, flood
    bearer = [ask({"Authorization": "Bearer leaked-key-0123456789"}) for _ in range(20)]
    assert bearer.count(429) >= 10, bearer
    assert ask({"X-API-Key": "another-key-0123456789"}) == 200
    assert ask({}) == 200


def test_one_key_is_one_bucket_whichever_header_carries_it(stack: Stack) -> None:
    """The key is read as the app reads it: "X-API-Key: K", "Bearer K" and "bearer  K" share
    one bucket, so switching headers buys no extra requests; and only a digest of the key,
    never the key, sits in nginx's shared memory."""
    key = "shared-bucket-key-0123456789"
    time.sleep(2.5)  # let the per-address bucket drain after other tests
    with requests.Session() as session:  # kept alive: the requests come faster than 2 r/s
        def ask(headers: dict[str, str]) -> int:
            return session.get(stack.https + "/healthz", headers=headers, verify=stack.cert,
                               timeout=30).status_code

        flood = [ask({"X-API-Key": key}) for _ in range(20)]
        assert flood[:3] == [200] * 3 and flood[-1] == 429, flood
        assert ask({"Authorization": f"Bearer {key}"}) == 429
        assert ask({"Authorization": f"bearer   {key} "}) == 429
        assert ask({"Authorization": "Basic eDp5", "X-API-Key": key}) == 429
        assert ask({"Authorization": "Bearer another-key-0123456789"}) == 200
        assert ask({}) == 200
    memory = _shared_memory(int((stack.dir / "nginx.master.pid").read_text()))
    assert key.encode() not in memory and b"another-key-0123456789" not in memory


def test_no_credential_reaches_nginx_logs(stack: Stack) -> None:
    """A key sent as Basic auth (`curl -u KEY:`), as Bearer or X-API-Key, with a key-like
    cookie: none of it, plain or base64, is in any log of the stack."""
    key = "basic-auth-key-0123456789-abcdef"
    rid = "no-credential-in-logs.1"
    response = requests.get(stack.https + "/healthz", auth=(key, ""), verify=stack.cert,
                            headers={"X-Request-ID": rid, "X-API-Key": key + "-x",
                                     "Cookie": f"api_key={key}-c"}, timeout=10)
    assert response.status_code == 200
    requests.get(stack.https + "/healthz", verify=stack.cert, timeout=10,
                 headers={"Authorization": f"Bearer {key}-b", "X-Request-ID": rid + "b"})
    assert stack.log_lines("access.log", f"rid={rid}b")
    assert stack.log_lines("app.log", f"rid={rid}b")
    encoded = base64.b64encode(f"{key}:".encode()).decode()
    for log in (stack.dir / "logs").iterdir():
        text = log.read_text(errors="replace")
        assert key not in text and encoded not in text, log.name


def _shared_memory(pid: int) -> bytes:
    """nginx's shared zones (limit_req, limit_conn, TLS sessions): its MAP_SHARED anonymous
    mappings, which /proc shows as /dev/zero."""
    chunks = []
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb") as mem:
        for line in maps:
            fields = line.split()
            if fields[1].endswith("s") and "/dev/zero" in line:
                start, end = (int(x, 16) for x in fields[0].split("-"))
                mem.seek(start)
                chunks.append(mem.read(end - start))
    assert len(b"".join(chunks)) > 10 * 1024 * 1024, "the limit_req zones are 10 MB each"
    return b"".join(chunks)


@pytest.mark.parametrize("headers", [{"X-API-Key": "k" * 9000},
                                     {"Authorization": "Bearer " + "k" * 20000}])
def test_a_huge_key_header_gets_nginx_400_json(stack: Stack, headers: dict[str, str]) -> None:
    response = requests.get(stack.https + "/model", headers=headers, verify=stack.cert,
                            timeout=30)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "header_too_large"


def _mtls(stack: Stack) -> str:
    return f"https://127.0.0.1:{stack.env['MTLS_PORT']}"


def test_the_mtls_port_wants_a_client_certificate(stack: Stack, tmp_path: Path) -> None:
    ca = Path(stack.env["TLS_CLIENT_CA"]).parent
    url = _mtls(stack) + "/predictlabel"
    image = {"image": EXAMPLE.read_bytes()}
    none = requests.post(url, files=image, verify=stack.cert, timeout=30)
    assert none.status_code == 400
    assert none.json()["error"]["code"] == "client_certificate_required"
    other = _client_ca(tmp_path / "other-ca", "someone-else")
    foreign = requests.post(url, files=image, verify=stack.cert, timeout=30,
                            cert=(str(other.parent / "client.pem"),
                                  str(other.parent / "client.key")))
    assert foreign.status_code == 400
    assert foreign.json()["error"]["code"] == "client_certificate_invalid"
    signed = requests.post(url, files=image, verify=stack.cert, timeout=30,
                           cert=(str(ca / "client.pem"), str(ca / "client.key")))
    assert signed.status_code == 200 and signed.json()["most_probable_label"] == "Ankle boot"
    assert stack.log_lines("app.log", 'cert="O=h5serve,CN=test-client"')
    plain = requests.post(stack.https + "/predictlabel", files=image, verify=stack.cert,
                          timeout=30, headers={"X-Client-Cert-Subject": "CN=forged"})
    assert plain.status_code == 200
    assert stack.log_lines("app.log", 'cert="-" rid=' + plain.headers["X-Request-ID"])
    assert "CN=forged" not in stack.app_log()


def test_a_request_id_runs_through_nginx_the_app_and_the_answer(stack: Stack) -> None:
    mine = "support-ticket-4711.a"
    answered = requests.post(stack.https + "/predictlabel", verify=stack.cert, timeout=30,
                             files={"image": EXAMPLE.read_bytes()},
                             headers={"X-Request-ID": mine})
    assert answered.status_code == 200 and answered.headers["X-Request-ID"] == mine
    failed = requests.post(stack.https + "/predictlabel", verify=stack.cert, timeout=30,
                           files={"image": b"not an image"}, headers={"X-Request-ID": "bad id!"})
    made = failed.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", made), "a malformed ID is replaced by nginx's own"
    assert failed.json()["error"]["request_id"] == made
    for rid in (mine, made):
        assert stack.log_lines("access.log", f"rid={rid}")
        assert stack.log_lines("app.log", f"rid={rid}")


def test_requests_beyond_max_inflight_are_shed_with_fast_503_json(stack: Stack) -> None:
    """MAX_INFLIGHT=6 here: 16 slow requests at once, the excess answered 503 by nginx."""
    rows = {"input": [[0] * 784] * 1024}  # ~0.3 s of inference each

    def ask(_: int) -> requests.Response:
        return requests.post(stack.https + "/predict", json=rows, verify=stack.cert, timeout=60)

    with ThreadPoolExecutor(16) as pool:
        responses = list(pool.map(ask, range(16)))
    shed = [r for r in responses if r.status_code == 503]
    assert shed and len(shed) < 16
    assert {r.status_code for r in responses} == {200, 503}
    assert shed[0].json()["error"]["code"] == "overloaded"
    assert shed[0].headers["Retry-After"] == "1"
    assert requests.get(stack.https + "/readyz", verify=stack.cert, timeout=10).ok


def _get_from(stack: Stack, source: str, path: str) -> tuple[int, bytes]:
    context = ssl.create_default_context(cafile=stack.cert)
    port = int(stack.https.rsplit(":", 1)[1])
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=context,
                                             source_address=(source, 0), timeout=10)
    connection.request("GET", path)
    response = connection.getresponse()
    result = response.status, response.read()
    connection.close()
    return result


def test_metrics_only_from_the_host_itself(stack: Stack) -> None:
    status, body = _get_from(stack, "127.0.0.1", "/metrics")
    assert status == 200 and b"h5serve_requests_total" in body
    status, body = _get_from(stack, "127.0.0.77", "/metrics")
    assert status == 403 and json.loads(body)["error"]["code"] == "forbidden"


def test_protocol_paths_are_proxied(stack: Stack) -> None:
    status, body = _get_from(stack, "127.0.0.1", "/v2/models/fashion_mnist")
    assert status == 200 and json.loads(body)["platform"] == "keras_h5"
    status, body = _get_from(stack, "127.0.0.1", "/v1/models/fashion_mnist")
    assert status == 200 and b"AVAILABLE" in body


def test_sslyze_finds_only_the_self_signed_chain_against_mozilla_intermediate(
        stack: Stack) -> None:
    """sslyze (own venv) with Mozilla's "intermediate" profile: TLS 1.2/1.3 only, strong
    suites and curves, HSTS, a short-lived certificate. Only the trust path of the
    self-signed test certificate may fail; a real certificate passes that too."""
    port = stack.https.rsplit(":", 1)[1]
    sslyze = ROOT / ".venv-tools" / "sslyze" / "bin" / "sslyze"
    out = stack.dir / "sslyze.json"
    scans = ["--certinfo", "--sslv2", "--sslv3", "--tlsv1", "--tlsv1_1", "--tlsv1_2",
             "--tlsv1_3", "--elliptic_curves", "--http_headers"]
    result = subprocess.run([str(sslyze), "--mozilla_config=intermediate", *scans,
                             f"--json_out={out}", f"127.0.0.1:{port}"],
                            capture_output=True, text=True, timeout=300)
    problems = re.findall(r"^\s+\* (\w+):", result.stdout, re.M)
    assert problems == ["certificate_path_validation"], result.stdout[-3000:]
    scan = json.loads(out.read_text())["server_scan_results"][0]["scan_result"]
    for old in ("ssl_2_0", "ssl_3_0", "tls_1_0", "tls_1_1"):
        assert scan[f"{old}_cipher_suites"]["result"]["accepted_cipher_suites"] == []
    for new in ("tls_1_2", "tls_1_3"):
        suites = [c["cipher_suite"]["name"]
                  for c in scan[f"{new}_cipher_suites"]["result"]["accepted_cipher_suites"]]
        assert suites and all("GCM" in s or "CHACHA20" in s for s in suites), suites
    hsts = scan["http_headers"]["result"]["strict_transport_security_header"]
    assert hsts["max_age"] == 63072000
    chain = scan["certificate_info"]["result"]["certificate_deployments"][0]
    leaf = chain["received_certificate_chain"][0]
    assert leaf["subject_alternative_name"]["ip_addresses"] == ["127.0.0.1"]


def test_tritonclient_with_its_defaults_through_nginx_tls(stack: Stack) -> None:
    """Binary tensors both ways (the client's defaults) through nginx's TLS, trusting the
    stack's own certificate."""
    import gevent.ssl
    import numpy as np
    import tritonclient.http as triton
    from PIL import Image

    client = triton.InferenceServerClient(
        url=stack.https.removeprefix("https://"), ssl=True,
        ssl_context_factory=lambda: gevent.ssl.create_default_context(cafile=stack.cert))
    assert client.is_server_ready() and client.is_model_ready("fashion_mnist")
    pixels = np.asarray(Image.open(EXAMPLE).convert("L"), np.float32)[None, :, :, None] / 255
    tensor = triton.InferInput("image", list(pixels.shape), "FP32")
    tensor.set_data_from_numpy(pixels)
    probabilities = client.infer("fashion_mnist", [tensor]).as_numpy("probabilities")
    assert probabilities.shape == (1, 10) and probabilities.argmax() == 9  # Ankle boot
    client.close()


def _grpc_target(stack: Stack) -> str:
    return f"127.0.0.1:{stack.env['GRPC_PORT']}"


def test_grpc_clients_with_their_defaults_through_nginx_tls(stack: Stack) -> None:
    """tritonclient.grpc and TF Serving's PredictionServiceStub over nginx's TLS (HTTP/2)."""
    import grpc
    import numpy as np
    import tensorflow as tf
    import tritonclient.grpc as triton
    from PIL import Image
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    certificate = Path(stack.cert).read_bytes()
    client = triton.InferenceServerClient(url=_grpc_target(stack), ssl=True,
                                          root_certificates=stack.cert)
    assert client.is_server_ready() and client.is_model_ready("fashion_mnist")
    pixels = np.asarray(Image.open(EXAMPLE).convert("L"), np.float32)[None, :, :, None] / 255
    tensor = triton.InferInput("image", list(pixels.shape), "FP32")
    tensor.set_data_from_numpy(pixels)
    assert client.infer("fashion_mnist", [tensor]).as_numpy("probabilities").argmax() == 9
    credentials = grpc.ssl_channel_credentials(root_certificates=certificate)
    with grpc.secure_channel(_grpc_target(stack), credentials) as channel:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "fashion_mnist"
        request.inputs["image"].CopyFrom(tf.make_tensor_proto([EXAMPLE.read_bytes()]))
        reply = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
            request, timeout=30)
        assert tf.make_ndarray(reply.outputs["probabilities"]).argmax() == 9


def _grpc_server_ready_fails(stack: Stack, code: str, fragment: str) -> None:
    """ServerReady through nginx fails with this status (nginx's own refusal)."""
    import grpc
    from tritonclient.grpc import service_pb2, service_pb2_grpc

    credentials = grpc.ssl_channel_credentials(Path(stack.cert).read_bytes())
    with grpc.secure_channel(_grpc_target(stack), credentials) as channel, \
            pytest.raises(grpc.RpcError) as raised:
        service_pb2_grpc.GRPCInferenceServiceStub(channel).ServerReady(
            service_pb2.ServerReadyRequest(), timeout=30)
    assert raised.value.code().name == code and fragment in raised.value.details()


def test_a_too_big_grpc_message_gets_a_grpc_status(stack: Stack) -> None:
    """Over MAX_CONTENT_LENGTH: RESOURCE_EXHAUSTED (gRPC's own limit, set to the body
    limit; nginx streams gRPC bodies, so the app's server counts them)."""
    import grpc
    from tritonclient.grpc import service_pb2, service_pb2_grpc

    credentials = grpc.ssl_channel_credentials(Path(stack.cert).read_bytes())
    with grpc.secure_channel(_grpc_target(stack), credentials) as channel:
        request = service_pb2.ModelInferRequest(model_name="fashion_mnist", inputs=[
            service_pb2.ModelInferRequest.InferInputTensor(name="image", datatype="FP32",
                                                           shape=[1, 28, 28, 1])],
            raw_input_contents=[b"\0" * (16 * 1024 * 1024)])
        with pytest.raises(grpc.RpcError) as raised:
            service_pb2_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=30)
    assert raised.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "larger than max" in raised.value.details()
