"""Real parts for tests: a private redis-server, gunicorn, free ports."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager

import requests
from werkzeug.serving import make_server

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


# the service's variables, as prefixes: a test process starts from none of them
OURS = ("ASPSMS_", "OTP_", "REDIS_", "GUNICORN_", "LOG_LEVEL", "WEB_CONCURRENCY",
        "PROMETHEUS_MULTIPROC_DIR", "HOST", "PORT")


def clean_environ(**extra: str) -> dict[str, str]:
    """This process's environment without any of the service's variables, plus ``extra``."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(OURS)}
    return {**env, **extra}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise TimeoutError("condition not reached in time")


class RedisServer:
    """A redis-server of our own on a free port; never the machine's shared 6379."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="otp-redis-")
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self._answers)
        return self

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)


@contextmanager
def wsgi_server(app, port: int = 0):
    """``app`` under werkzeug's threaded server on a loopback port; yields its base URL.

    serve_forever polls for shutdown every 0.5 s by default, and shutdown() waits for that
    poll: half a second per teardown, over a whole suite many seconds.
    """
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02},
                              name="wsgi-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)
        server.server_close()


@contextmanager
def gunicorn(env: dict[str, str], workers: int = 2, threads: int = 8):
    """The app under gunicorn, configured only by environment variables."""
    port = free_port()
    full_env = {**os.environ, **env}
    command = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}",
               "--workers", str(workers), "--threads", str(threads), "--worker-class", "gthread",
               "--graceful-timeout", "5", "--log-level", "warning", "service:create_app()"]
    process = subprocess.Popen(command, env=full_env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _healthy(base, process), timeout=20)
        yield base
    finally:
        process.terminate()
        process.wait(15)
        process.stderr.close()


def _healthy(base: str, process: subprocess.Popen) -> bool:
    if process.poll() is not None:
        raise RuntimeError("gunicorn exited: " + process.stderr.read().decode()[-2000:])
    try:
        return requests.get(base + "/healthz", timeout=0.5).status_code == 200
    except requests.RequestException:
        return False


def answers_healthz(base: str, process: subprocess.Popen) -> bool:
    """For wait_for: whether the service at ``base`` is up; fails if its process ended."""
    assert process.poll() is None, "the service exited during start-up"
    try:
        return requests.get(base + "/healthz", timeout=0.5).status_code == 200
    except requests.RequestException:
        return False


def sim(simulator, method: str, path: str, **kwargs):
    """Call one of the simulator's control endpoints; its JSON answer."""
    response = requests.request(method, simulator.url + path, timeout=5, **kwargs)
    response.raise_for_status()
    return response.json()


def gateway_calls(simulator) -> dict:
    """The gateway operations the simulator saw, those called at least once."""
    calls = sim(simulator, "GET", "/_sim/stats")["calls"]
    return {endpoint: count for endpoint, count in calls.items() if count}


# -- the client API's verbs, for a Flask test client or a running service's base URL ------

PHONE = "+41791234567"


def start(http, auth: dict, phone: str = PHONE, headers: dict | None = None, **fields):
    """POST /otp/start for ``phone``; the response (Flask's or requests')."""
    return _post(http, "/otp/start", {"phone": phone, **fields}, {**auth, **(headers or {})})


def check(http, auth: dict, code: str, headers: dict | None = None, **target):
    """POST /otp/check of ``code``, for ``id=`` or ``phone=`` (``PHONE`` when neither)."""
    target = target or {"phone": PHONE}
    return _post(http, "/otp/check", {"code": code, **target}, {**auth, **(headers or {})})


def _post(http, path: str, body: dict, headers: dict):
    if isinstance(http, str):  # a base URL
        return requests.post(http + path, json=body, headers=headers, timeout=10)
    return http.post(path, json=body, headers=headers)
