"""gunicorn settings for h5serve: the Dockerfile, `make run` and the tests all use this file.

Each worker builds the app (and loads the model) after the fork: TensorFlow does not
survive a fork, so `preload_app` stays off. Every value can be set from the environment,
through the variables app.config declares (docs/settings.md).
"""

import gc
import glob
import os
import shutil
import sys
import tempfile

# The declarations of every variable (app.config: standard library only, so the master
# loads neither TensorFlow nor Flask).
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from app.config import ServerSettings, Settings


def _load_settings() -> tuple[ServerSettings, Settings]:
    """Both sets of variables, or one line naming the bad one (not a traceback)."""
    try:
        return ServerSettings.load(), Settings.load()
    except ValueError as exc:
        sys.exit(f"h5serve: cannot start: {exc}")


_server, _settings = _load_settings()
bind = _server.BIND
workers = _server.WORKERS
worker_class = "gevent"
worker_connections = _server.WORKER_CONNECTIONS
timeout = _server.TIMEOUT  # a heartbeat for gevent workers (app.config.server)
graceful_timeout = _server.GRACEFUL_TIMEOUT
keepalive = _server.KEEPALIVE
max_requests = _server.MAX_REQUESTS
max_requests_jitter = _server.MAX_REQUESTS_JITTER
preload_app = False
# The control socket (gunicorn 27) lives in ~/.gunicorn; parallel servers would share it.
control_socket_disable = True

forwarded_allow_ips = _server.FORWARDED_ALLOW_IPS

accesslog = "-"
errorlog = "-"
loglevel = _settings.LOG_LEVEL.lower()
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
    "JsonLogger" if _settings.LOG_FORMAT == "json" else "AccessLogger")

# Other libraries' variables (app.config.deployment.LIBRARIES), set only where unset.
# One model copy per worker: split the cores between workers rather than
# letting every worker's TensorFlow start a thread per core.
_threads = str(max(1, (os.cpu_count() or 1) // max(1, workers)))
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", _threads)
os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Folders made here are this master's alone, and go when it exits (on_exit).
_made_here = []
# Prometheus multiprocess mode: every worker writes its metrics to files here and
# /metrics sums them. Set before any worker imports prometheus_client; emptied at start.
if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="h5serve-metrics.")
    _made_here.append(os.environ["PROMETHEUS_MULTIPROC_DIR"])
# State the workers of this master share: models unloaded by a repository request
# (Settings.H5SERVE_STATE_DIR). Fresh per master: a restart serves everything on disk.
if "H5SERVE_STATE_DIR" not in os.environ:
    os.environ["H5SERVE_STATE_DIR"] = tempfile.mkdtemp(prefix="h5serve-state.")
    _made_here.append(os.environ["H5SERVE_STATE_DIR"])


def _preflight():
    """Fail in one line, before any worker forks, when the service cannot work.

    Otherwise every worker fails alone, each with a full traceback, and the reason is
    somewhere in the middle. Reads settings and a few bytes of the model file only:
    TensorFlow must not be imported here, in the master.
    """
    from app.http.keys import KeyFile
    from app.runtime.model_file import check_model_file
    from app.runtime.repository_layout import check_repository

    try:
        if _settings.MODEL_PATH is not None:
            check_model_file(_settings.MODEL_PATH)
        else:
            check_repository(_settings.MODEL_REPOSITORY)
        if _settings.AUTH == "keys":
            KeyFile(_settings.keys_file)
    except ValueError as exc:
        sys.exit(f"h5serve: cannot start: {exc}")
    # AUTH=off on an address others can reach, for HTTP or gRPC: say so.
    for name, address in (("BIND", bind), ("GRPC_BIND", _settings.GRPC_BIND)):
        host = address.rsplit(":", 1)[0].strip("[]")
        local = (not address or address.startswith(("unix:", "127."))
                 or host in ("localhost", "::1"))
        if _settings.AUTH == "off" and not local:
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


def on_exit(server):
    """Remove the folders this master made: every start left two in /tmp before."""
    for folder in _made_here:
        shutil.rmtree(folder, ignore_errors=True)


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
