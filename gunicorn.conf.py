"""gunicorn settings for h5serve: the Dockerfile, `make run` and the tests all use this file.

Each worker builds the app (and loads the model) after the fork: TensorFlow does not
survive a fork, so `preload_app` stays off. Every value can be set from the environment.
"""

import gc
import glob
import os
import sys
import tempfile

bind = os.environ.get("BIND", "127.0.0.1:5000")
workers = int(os.environ.get("WORKERS", "2"))
worker_class = "gevent"
worker_connections = int(os.environ.get("WORKER_CONNECTIONS", "1000"))
# For gevent workers this is a heartbeat: inference runs in a real thread, so the
# hub keeps answering it even while a batch computes.
timeout = int(os.environ.get("TIMEOUT", "60"))
graceful_timeout = int(os.environ.get("GRACEFUL_TIMEOUT", "30"))
# Keep above nginx's upstream keepalive_timeout (4 s) so nginx closes idle connections first.
keepalive = int(os.environ.get("KEEPALIVE", "5"))
max_requests = int(os.environ.get("MAX_REQUESTS", "20000"))
max_requests_jitter = int(os.environ.get("MAX_REQUESTS_JITTER", "2000"))
preload_app = False
# The control socket (gunicorn 27) lives in ~/.gunicorn; parallel servers would share it.
control_socket_disable = True

# Only nginx may set X-Forwarded-* (its address; 127.0.0.1 when run natively).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
# %(h)s is the client address: with TRUST_PROXY=true, ProxyFix has already replaced
# nginx's address with the client's from X-Forwarded-For. Request time in ms.
# key=: the API key's name (app.http.auth), never the key; "-" with AUTH=off. cert=: the
# client certificate's subject nginx verified on its mTLS port ("-" elsewhere).
access_log_format = ('%(h)s "%(r)s" %(s)s %(B)s %(M)sms xff="%({x-forwarded-for}i)s" "%(a)s" '
                     '%(p)s key=%({h5serve.caller}e)s cert="%({x-client-cert-subject}i)s" '
                     'rid=%({x-request-id}o)s')
# Each line built from only the atoms the format names (app.http.gunicorn_logging);
# LOG_FORMAT=json: the access log as JSON lines on stdout, beside the app's (app.http.logs).
logger_class = "app.http.gunicorn_logging." + (
    "JsonLogger" if os.environ.get("LOG_FORMAT", "text") == "json" else "AccessLogger")

# One model copy per worker: split the cores between workers rather than
# letting every worker's TensorFlow start a thread per core.
_threads = str(max(1, (os.cpu_count() or 1) // max(1, workers)))
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", _threads)
os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Prometheus multiprocess mode: every worker writes its metrics to files here and
# /metrics sums them. Set before any worker imports prometheus_client; emptied at start.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="h5serve-metrics."))
# State the workers of this master share: models unloaded by a repository request
# (app.runtime.hidden_models). Fresh per master: a restart serves everything on disk.
os.environ.setdefault("H5SERVE_STATE_DIR", tempfile.mkdtemp(prefix="h5serve-state."))


def _preflight():
    """Fail in one line, before any worker forks, when the service cannot work.

    Otherwise every worker fails alone, each with a full traceback, and the reason is
    somewhere in the middle. Reads settings and a few bytes of the model file only:
    TensorFlow must not be imported here, in the master.
    """
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from app.config import Settings
    from app.http.keys import KeyFile
    from app.runtime.model_file import check_model_file
    from app.runtime.repository_layout import check_repository

    try:
        settings = Settings.load()
        if settings.MODEL_PATH is not None:
            check_model_file(settings.MODEL_PATH)
        else:
            check_repository(settings.MODEL_REPOSITORY)
        if settings.AUTH == "keys":
            KeyFile(settings.keys_file)
    except ValueError as exc:
        sys.exit(f"h5serve: cannot start: {exc}")
    # AUTH=off on an address others can reach, for HTTP or gRPC: say so.
    for name, address in (("BIND", bind), ("GRPC_BIND", settings.GRPC_BIND)):
        host = address.rsplit(":", 1)[0].strip("[]")
        local = (not address or address.startswith(("unix:", "127."))
                 or host in ("localhost", "::1"))
        if settings.AUTH == "off" and not local:
            print(f"h5serve: warning: listening on {name}={address} with AUTH=off: anyone "
                  "who reaches it can use every model (README: Access control)",
                  file=sys.stderr)
    metrics_dir = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    try:
        os.makedirs(metrics_dir, exist_ok=True)
    except OSError as exc:
        sys.exit(f"h5serve: cannot start: PROMETHEUS_MULTIPROC_DIR={metrics_dir}: "
                 f"{exc.strerror} (create it, or unset it for a fresh one)")


_preflight()


def on_starting(server):
    """Start with no stale metric files from an earlier run."""
    for path in glob.glob(os.path.join(os.environ["PROMETHEUS_MULTIPROC_DIR"], "*.db")):
        os.remove(path)


def child_exit(server, worker):
    """Drop a dead worker's live gauges (its counters stay in the totals)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def post_worker_init(worker):
    """Freeze what start-up made, then say this worker is ready.

    TensorFlow and Keras leave ~300,000 long-lived objects behind; every full
    collection would walk them all (~170 ms with the hub stopped, measured). Frozen,
    they are never scanned again. Until this line the worker accepts no connection, so
    scripts/stack.sh and the tests wait for it from every booted worker.
    """
    gc.collect()
    gc.freeze()
    worker.log.info("Worker ready (pid: %s)", worker.pid)
