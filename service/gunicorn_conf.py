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

import os
import shutil
import tempfile
from pathlib import Path

from service import serving
from service.config import sandbox as _sandbox  # private: public names here are settings
from service.config_readers import gateway_timeout, log_level
from service.envreader import Collector, ConfigError, Env

# Every value is read leniently here and its problems kept: on_starting reports them all,
# with the service's own, before a socket is bound (a raise here would be a traceback).
_env, _collect = Env(os.environ), Collector()


def _int(name: str, default: int, low: int = 0, high: int = 100_000) -> int:
    value = _collect(lambda: _env.integer(name, default, low, high))
    return default if value is None else value


def _path(name: str, directory: bool) -> str | None:
    """A directory that exists (``directory``), or a file whose directory exists."""
    value = os.environ.get(name) or None
    if value is not None and value != "-":
        place = Path(value) if directory else Path(value).parent
        if not place.is_dir() or not os.access(place, os.W_OK):
            _collect.errors.append(ConfigError(name, f"{place} is not a writable directory"))
            return None
    return value


def _bind() -> str:
    from gunicorn.util import parse_address

    value = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
    try:
        parse_address(value)
    except (RuntimeError, ValueError):
        _collect.errors.append(ConfigError("GUNICORN_BIND", f"must be HOST:PORT or "
                                                            f"unix:PATH, got {value!r}"))
        return "127.0.0.1:0"  # never bound: on_starting stops first
    return value


bind = _bind()
# sandbox mode is one worker (service.serving); only asking for more earns a warning
workers = _int("WEB_CONCURRENCY", 1 if _sandbox() else 2, 1, 256)
worker_class = "service.serving.ProblemWorker"  # gthread; gunicorn's own errors as problem+json
threads = _int("GUNICORN_THREADS", 64, 1, 1024)
try:
    _gateway_timeout = gateway_timeout(_env)
except ConfigError:  # the service's own check (on_starting) reports it
    _gateway_timeout = 10.0
# a send may wait for one timeout plus two connect retries; keep well above that
timeout = _int("GUNICORN_TIMEOUT", int(_gateway_timeout * 3 + 15), 1)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", int(_gateway_timeout + 10), 1)
keepalive = _int("GUNICORN_KEEPALIVE", 5)
# Recycling workers bounds a slow leak; the jitter keeps them from restarting together.
max_requests = _int("GUNICORN_MAX_REQUESTS", 0, 0, 10**9)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", 0, 0, 10**9)
# Heartbeat files; /dev/shm in containers avoids stalls on a slow /tmp.
worker_tmp_dir = _path("GUNICORN_WORKER_TMP_DIR", directory=True)
accesslog = _path("GUNICORN_ACCESSLOG", directory=False)
logger_class = "service.logs.GunicornLogger"  # builds access lines only when asked to
# gunicorn's control socket (in $HOME, which a read-only container does not have) is off
# unless a path is given.
control_socket = _path("GUNICORN_CONTROL_SOCKET", directory=False) or "gunicorn.ctl"
control_socket_disable = not os.environ.get("GUNICORN_CONTROL_SOCKET")
errorlog = "-"
try:
    _level = log_level(_env)
except ConfigError:  # refused in on_starting
    _level = "INFO"
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


def _metrics_dir() -> None:
    """Start with an empty metrics directory: old files would be summed into new counters."""
    try:
        metrics_dir.mkdir(parents=True, exist_ok=True)
        for stale in metrics_dir.glob("*.db"):
            stale.unlink()
    except OSError as e:
        raise ConfigError(_METRICS_ENV, f"cannot use {metrics_dir}: {e.strerror}") from None


def on_starting(server) -> None:
    """In the master, before binding: every configuration problem, or one worker in the
    sandbox (service.serving)."""
    _collect(_metrics_dir)
    serving.check_master(server, _collect)


def nworkers_changed(server, new_value, old_value) -> None:
    serving.keep_one_worker(server, new_value)


def post_worker_init(worker) -> None:
    """In sandbox mode the webhook worker runs in the serving process (issue 18)."""
    from service.webhooks.running import start_in_process

    start_in_process(worker.wsgi)


def child_exit(server, worker) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid, str(metrics_dir))


def on_exit(server) -> None:
    if _owns_metrics_dir:
        shutil.rmtree(metrics_dir, ignore_errors=True)
