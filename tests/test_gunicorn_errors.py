"""Errors gunicorn answers itself, before any route, are problem+json too (raw sockets
against a real gunicorn with the packaged settings)."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import answers_healthz, clean_environ, free_port, wait_for

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def sandbox_base(tmp_path_factory):
    port = free_port()
    out = tmp_path_factory.mktemp("gunicorn") / "out.log"
    with open(out, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "python:service.gunicorn_conf",
             "service:create_app()"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
            env=clean_environ(GUNICORN_BIND=f"127.0.0.1:{port}"))
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: answers_healthz(base, process), timeout=30)
        yield port
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)


def raw(port: int, data: bytes) -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in header_lines)
    return int(status_line.split(" ")[1]), headers, body


@pytest.mark.parametrize(("request_bytes", "status", "code"), [
    (b"NOT A REQUEST LINE\r\n\r\n", 400, "malformed_request"),
    (b"GET /" + b"a" * 8000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "uri_too_long"),
    (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", 431,
     "headers_too_large"),
    (b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(120)) + b"\r\n", 431,
     "headers_too_large"),
], ids=["bad request line", "URI too long", "header too large", "too many headers"])
def test_errors_gunicorn_answers_itself_are_problem_json(sandbox_base, request_bytes, status,
                                                         code):
    answered, headers, body = raw(sandbox_base, request_bytes)

    assert answered == status
    assert headers["Content-Type"] == "application/problem+json"
    assert int(headers["Content-Length"]) == len(body)
    problem = json.loads(body)
    assert problem == {"type": f"https://aspsms-verify.dev/problems/{code}",
                       "title": problem["title"], "status": status,
                       "detail": "The request could not be read.", "code": code}
    assert b"aaaa" not in body  # the request is not echoed
