"""Variables the service never reads, declared so that docs/settings.md lists them all.

DEPLOYMENT: read by the deployment files (docker-compose.yml and its `.env`,
scripts/stack.sh, deploy/swarm/stack.yml, nginx's templates). LIBRARIES: other
libraries' variables that h5serve sets or consults, and why. tests/test_settings_doc.py
checks that every variable those files use is here, in ServerSettings or in Settings.
"""

from __future__ import annotations

from app.config.variables import Documented

_COMPOSE_NETWORK = ("APP_IP", "NGINX_IP", "PROMETHEUS_IP", "GRAFANA_IP", "SUBNET")
_BUILD_ARGS = ("EXTRA_CA_CERT", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_TRUSTED_HOST")

DEPLOYMENT = (
    Documented(("APP_PORT", "HTTP_PORT", "HTTPS_PORT"), "`15000` / `18080` / `18443`",
               "`scripts/stack.sh` listen ports (compose: nginx listens on 80/443 inside its "
               "container)"),
    Documented(("GRPC_PORT", "APP_GRPC_PORT"), "unset (no gRPC) / `18501`",
               "`scripts/stack.sh`: nginx's gRPC port (TLS), and the app's behind it "
               "(`GRPC_BIND`)"),
    Documented(("PUBLISH_IP",), "`0.0.0.0`",
               "compose: host address nginx's ports are published on (`127.0.0.1` keeps them "
               "off the network)"),
    Documented(("HTTP_PUBLISH_PORT", "HTTPS_PUBLISH_PORT"), "`80` / `443`",
               "compose: host ports nginx publishes (the redirect uses the HTTPS one)"),
    Documented(("PUBLIC_HTTPS_PORT",), "as `HTTPS_PORT`",
               "`scripts/stack.sh`: the HTTPS port the redirect names (compose and Swarm: "
               "`HTTPS_PUBLISH_PORT`)"),
    Documented(("GRPC_PUBLISH_PORT",), "`8500`", "compose: host port for gRPC over TLS"),
    Documented(("SERVER_NAME",), "`localhost`",
               "nginx `server_name` and the self-signed certificate's name"),
    Documented(("TLS_CERT", "TLS_KEY"), "self-signed", "certificate chain and key nginx uses"),
    Documented(("RATE_LIMIT", "RATE_LIMIT_BURST"), "`50r/s` / `100`",
               "nginx per-client request rate and burst (429 JSON above)"),
    Documented(("KEY_RATE_LIMIT", "KEY_RATE_LIMIT_BURST"), "`50r/s` / `100`",
               "nginx request rate and burst per API key, across all workers (429 JSON above)"),
    Documented(("TLS_CLIENT_CA", "MTLS_PORT"), "unset / `8443` (`18444` natively)",
               "client certificates: nginx's CA bundle for them, and the port that requires "
               "them"),
    Documented(("MTLS_PUBLISH_PORT",), "`8443`", "compose: host port for `MTLS_PORT`"),
    Documented(("PROMETHEUS_PUBLISH_PORT", "GRAFANA_PUBLISH_PORT", "GRAFANA_ADMIN_PASSWORD"),
               "`9090` / `3000` / `admin`",
               "compose monitoring profile: loopback ports and Grafana's first admin password"),
    Documented(("API_KEYS_DIR",), "`./secrets`",
               "compose: the host folder holding `api-keys`, mounted read-only"),
    Documented(("TLS_CLIENT_CA_DIR",), "`./secrets/client-ca`",
               "compose: the host folder holding the client CA bundle for `TLS_CLIENT_CA`, "
               "nginx's only view of `secrets/` (mounted read-only at `/etc/nginx/client-ca`)"),
    Documented(("TLS_CERT_FILE", "TLS_KEY_FILE", "TLS_VERSION"), "required / required / `1`",
               "Swarm: the certificate files and the version their secrets' names carry "
               "(raise it to rotate)"),
    Documented(("API_KEYS_HOST_FILE", "API_KEYS_VERSION"), "no keys / `none`",
               "Swarm: the API keys file and the version its secret's name carries (raise it "
               "to rotate)"),
    Documented(("APP_REPLICAS",), "`2`", "Swarm: app tasks behind nginx"),
    Documented(("H5SERVE_IMAGE", "H5SERVE_NGINX_IMAGE"),
               "`h5serve:latest` / `h5serve-nginx:latest`", "Swarm: the two images"),
    Documented(("HEALTH_INTERVAL", "HEALTH_START_PERIOD", "UPDATE_MONITOR"),
               "`5s` / `60s` / `30s`",
               "Swarm: the app's healthcheck interval and start period, and how long a new "
               "task is watched before the rollout goes on"),
    Documented(("APP_MEMORY_LIMIT", "APP_CPUS"), "`3g` / `2.0`",
               "compose and Swarm: the app container's memory and CPU limits"),
    Documented(("MAX_INFLIGHT",), "`128`",
               "requests inside the app at once, all clients together; nginx answers 503 JSON "
               "beyond"),
    Documented(("MAX_BODY_MIB", "PROXY_READ_TIMEOUT"), "`15` / `60s`",
               "nginx body limit in MiB (keep equal to `MAX_CONTENT_LENGTH`) and upstream read "
               "timeout"),
    Documented(_COMPOSE_NETWORK, "see `.env.example`",
               "compose: the bridge network and its fixed addresses (Prometheus finds the app "
               "by its service name, `app:5000`, whatever `APP_IP` is)"),
    Documented(_BUILD_ARGS, "unset",
               "compose build args behind a proxy: a CA (PEM text) pip trusts during the "
               "build, another package index"),
    Documented(("READY_TIMEOUT", "STOP_GRACE"), "`120` / `30`",
               "`scripts/stack.sh`: seconds to wait for a healthy start, and for a process to "
               "stop before SIGKILL"),
    Documented(("STACK_DIR", "STACK_STATE", "VENV"),
               "a new folder under `/tmp` / `run/stack.dir` / `.venv`",
               "`scripts/stack.sh`: where pids, logs and the nginx prefix go, the file "
               "recording `STACK_DIR`, and the virtualenv gunicorn runs from"),
)

LIBRARIES = (
    Documented(("PROMETHEUS_MULTIPROC_DIR",), "a fresh folder per gunicorn master",
               "prometheus_client: every worker writes its metrics there and `/metrics` sums "
               "them; gunicorn.conf.py creates it if missing and empties it at start"),
    Documented(("TF_NUM_INTRAOP_THREADS",), "the cores divided by `WORKERS`",
               "TensorFlow's threads per operation, set by gunicorn.conf.py when unset; ONNX "
               "Runtime and OpenVINO get the same budget"),
    Documented(("TF_NUM_INTEROP_THREADS",), "`1`",
               "TensorFlow's parallel operations, set by gunicorn.conf.py when unset"),
    Documented(("TF_CPP_MIN_LOG_LEVEL",), "`2`",
               "TensorFlow's C++ log level, set by gunicorn.conf.py (and the Makefile) when "
               "unset: errors only"),
    Documented(("ORT_DISABLE_TELEMETRY",), "`1`",
               "ONNX Runtime's telemetry, turned off when unset (app.runtime.engines)"),
    Documented(("OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES"), "`h5serve` / unset",
               "OpenTelemetry: the traces' service name and resource attributes "
               "(with `OTEL_EXPORTER_OTLP_ENDPOINT`)"),
    Documented(("OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG"), "`parentbased_always_on`",
               "OpenTelemetry: which requests are traced, e.g. `parentbased_traceidratio` and "
               "`0.1`"),
    Documented(("OTEL_BSP_MAX_QUEUE_SIZE", "OTEL_BSP_SCHEDULE_DELAY"), "`2048` / `5000`",
               "OpenTelemetry: spans waiting for export per worker (more are dropped and "
               "counted) and the milliseconds between exports"),
    Documented(("XDG_CACHE_HOME",), "`~/.cache`", "the default `RUNTIME_CACHE_DIR` is under it"),
)
