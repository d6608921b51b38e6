"""gunicorn.conf.py's own variables, declared like the app's and read in the master.

LOG_LEVEL and LOG_FORMAT are the app's (app.config.settings), which gunicorn follows too.
Standard library only: the master must load neither TensorFlow nor Flask.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.config.variables import EnvironmentSettings, variable


@dataclass(frozen=True)
class ServerSettings(EnvironmentSettings):
    """How gunicorn listens, how many workers it runs, and when it recycles them."""

    BIND: str = variable("127.0.0.1:5000", "gunicorn's listen address")
    WORKERS: int = variable(2, "gunicorn worker processes (each loads its own copy of the model)")
    WORKER_CONNECTIONS: int = variable(1000, "concurrent connections per gevent worker")
    # For gevent workers this is a heartbeat: inference runs in a real thread, so the
    # hub keeps answering it even while a batch computes.
    TIMEOUT: int = variable(60, "gunicorn's worker timeout (a heartbeat), in seconds")
    GRACEFUL_TIMEOUT: int = variable(
        30, "gunicorn's graceful timeout: seconds a stopping worker may finish its requests")
    # Keep above nginx's upstream keepalive_timeout (4 s) so nginx closes idle connections first.
    KEEPALIVE: int = variable(5, "gunicorn's keep-alive timeout, in seconds")
    MAX_REQUESTS: int = variable(20000, "recycle a worker after this many requests")
    MAX_REQUESTS_JITTER: int = variable(
        2000, "up to this many more requests, at random, so workers do not recycle together")
    # Only nginx may set X-Forwarded-* (its address; 127.0.0.1 when run natively).
    FORWARDED_ALLOW_IPS: str = variable(
        "127.0.0.1", "addresses gunicorn trusts for forwarded headers")
