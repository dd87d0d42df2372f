"""The service under gunicorn: checks in the master, one worker for the sandbox, and
gunicorn's own error pages as problem+json.

The master checks the whole configuration before it binds a socket or forks a worker
(``on_starting`` in :mod:`service.gunicorn_conf`): a bad value ends start-up with one line
per variable on standard error and exit status 2, not with a worker's traceback.

Sandbox mode keeps its gateway (the simulator, with its tokens and messages) and, without
``REDIS_URL``, its store in process, so it must run in exactly one worker: the master forces
one, whatever ``--workers``/``WEB_CONCURRENCY`` say, with one warning. A gunicorn started
without these settings cannot be corrected from a worker, so there the application factory
refuses to start instead (:func:`refuse_split_sandbox`).
"""

from __future__ import annotations

import json
import sys

from gunicorn import util
from gunicorn.errors import AppImportError
from gunicorn.workers.gthread import ThreadWorker

from service import config
from service.config import ConfigError, Settings, load_settings
from service.envreader import Collector, report
from service.errors import PROBLEM_BASE
from service.http.problems import HTTP_CODES

EXIT_CONFIG = 2
ONE_WORKER = ("sandbox mode: the simulator and its codes live in one process, so gunicorn "
              "runs one worker instead of {requested}")


def check_master(server, collect: Collector) -> None:
    """gunicorn's ``on_starting``: every problem, one line each, then exit before binding."""
    collect(load_settings)
    if collect.errors:
        report(ConfigError.of(collect.errors))
        if server.pidfile is not None:
            server.pidfile.unlink()
        sys.exit(EXIT_CONFIG)
    keep_one_worker(server, server.num_workers)


def keep_one_worker(server, requested: int) -> None:
    """gunicorn's ``nworkers_changed`` (also at start, TTIN/TTOU): one worker in the sandbox."""
    if requested != 1 and config.sandbox():
        server.log.warning(ONE_WORKER.format(requested=requested))
        server.num_workers = 1


def _arbiter():
    """The gunicorn arbiter that forked this worker, found on the call stack, or None."""
    from gunicorn.arbiter import Arbiter

    frame = sys._getframe(1)
    while frame is not None:
        candidate = frame.f_locals.get("self")
        if isinstance(candidate, Arbiter):
            return candidate
        frame = frame.f_back
    return None


def refuse_split_sandbox(settings: Settings) -> None:
    """In a gunicorn worker of several, each would have a simulator (and store) of its own."""
    if not settings.sandbox:
        return
    arbiter = _arbiter()
    if arbiter is not None and arbiter.num_workers > 1:
        # AppImportError: gunicorn prints this one line and the master exits non-zero
        raise AppImportError(
            f"sandbox mode needs one gunicorn worker, not {arbiter.num_workers}: use -w 1, "
            "or -c python:service.gunicorn_conf, which forces one")


def config_failure(error: ConfigError) -> Exception:
    """What the factory raises for a bad configuration: under gunicorn (without the
    master's check) one printed line and a non-zero exit instead of a traceback."""
    if _arbiter() is not None:
        return AppImportError("configuration error: " + "; ".join(error.lines))
    return error


# -- gunicorn's own errors ----------------------------------------------------------------

class _Page:
    """Stands in for the client socket while gunicorn writes its HTML error page."""

    def __init__(self):
        self.data = b""

    def gettimeout(self) -> float:
        return 0.0

    def sendall(self, data: bytes) -> None:
        self.data += data


def problem_bytes(status: int, reason: str) -> bytes:
    code = HTTP_CODES.get(status, "internal_error")
    detail = ("The request could not be read." if status < 500
              else "The request could not be served.")
    body = json.dumps({"type": PROBLEM_BASE + code, "title": reason, "status": status,
                       "detail": detail, "code": code}).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
            f"Content-Type: application/problem+json\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode("latin-1") + body


class ProblemWorker(ThreadWorker):
    """gthread, with gunicorn's own error responses (a malformed request line, 414, 431…)
    as application/problem+json. gunicorn decides the status, logs and writes the access
    line as usual; only the page it would send is replaced."""

    def handle_error(self, req, client, addr, exc):
        page = _Page()
        super().handle_error(req, page, addr, exc)
        status_line = page.data.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
        try:
            status, reason = int(status_line[1]), status_line[2]
        except (IndexError, ValueError):
            status, reason = 500, "Internal Server Error"
        try:
            util.write_nonblock(client, problem_bytes(status, reason))
        except Exception:  # the client is gone: as gunicorn does, nothing more to do
            self.log.debug("Failed to send error message.")
