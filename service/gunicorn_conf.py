"""gunicorn settings from the environment (``gunicorn -c python:service.gunicorn_conf``).

The gateway call is I/O-bound, so threaded workers (gthread): a slow gateway ties up a
thread, not a process. Timeouts sit above the gateway's and Redis's so a request is never
killed while it still waits for them, and ``graceful_timeout`` lets a SIGTERM finish the
requests in flight (docs/security.md 24).

Logs: every line, gunicorn's own included, leaves as masked JSON through the root logger
(:mod:`service.logs`). The application writes one access event per request itself, so
gunicorn's plain-text access log is off unless ``GUNICORN_ACCESSLOG`` asks for it.

Metrics: each worker writes its counters to ``PROMETHEUS_MULTIPROC_DIR`` (a fresh temporary
directory when unset); the directory is emptied at start, so counters from an earlier run
are not added in, and a worker's files are marked dead when it exits.
"""

import logging
import os
import shutil
import tempfile
from pathlib import Path

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "64"))
_gateway_timeout = float(os.environ.get("ASPSMS_TIMEOUT", "10"))
# a send may wait for one timeout plus two connect retries; keep well above that
timeout = int(os.environ.get("GUNICORN_TIMEOUT", str(int(_gateway_timeout * 3 + 15))))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", str(int(_gateway_timeout + 10))))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
# Recycling workers bounds a slow leak; the jitter keeps them from restarting together.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "0"))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", "0"))
# Heartbeat files; /dev/shm in containers avoids stalls on a slow /tmp.
worker_tmp_dir = os.environ.get("GUNICORN_WORKER_TMP_DIR") or None
accesslog = os.environ.get("GUNICORN_ACCESSLOG") or None
logger_class = "service.logs.GunicornLogger"  # builds access lines only when asked to
# gunicorn's control socket (in $HOME, which a read-only container does not have) is off
# unless a path is given.
control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET") or "gunicorn.ctl"
control_socket_disable = not os.environ.get("GUNICORN_CONTROL_SOCKET")
errorlog = "-"
_level = os.environ.get("LOG_LEVEL", "INFO").upper()
_level = _level if isinstance(logging.getLevelName(_level), int) else "INFO"
loglevel = _level.lower()
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "root": {"level": _level, "handlers": ["json"]},
    "loggers": {
        "gunicorn.error": {"level": _level, "handlers": [], "propagate": True},
        # gunicorn writes access lines whenever logging is configured; only on request
        "gunicorn.access": {"level": "INFO" if accesslog else "WARNING", "handlers": [],
                            "propagate": True},
    },
    "handlers": {"json": {"()": "service.logs.JsonHandler"}},
}

# Decided here, in the master, before any worker imports prometheus-client.
_METRICS_ENV = "PROMETHEUS_MULTIPROC_DIR"
_owns_metrics_dir = not os.environ.get(_METRICS_ENV)
if _owns_metrics_dir:
    os.environ[_METRICS_ENV] = tempfile.mkdtemp(prefix="aspsms-verify-metrics-")
metrics_dir = Path(os.environ[_METRICS_ENV])


def on_starting(server) -> None:
    """Start with an empty metrics directory: old files would be summed into new counters."""
    metrics_dir.mkdir(parents=True, exist_ok=True)
    for stale in metrics_dir.glob("*.db"):
        stale.unlink()


def child_exit(server, worker) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid, str(metrics_dir))


def on_exit(server) -> None:
    if _owns_metrics_dir:
        shutil.rmtree(metrics_dir, ignore_errors=True)
