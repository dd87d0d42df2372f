"""SIGTERM under gunicorn finishes the requests in flight (docs/security.md 24)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import requests

from tests.conftest import CLIENT_KEY, service_env
from tests.helpers import answers_healthz, free_port, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def served(redis_db, redis_server, simulator, tmp_path):
    """gunicorn with the packaged settings; yields (process, base URL, its stdout file)."""
    port = free_port()
    env = {**os.environ, **service_env(redis_server.url, simulator.url, ASPSMS_TIMEOUT="5",
                                       WEB_CONCURRENCY="2", GUNICORN_BIND=f"127.0.0.1:{port}")}
    out = tmp_path / "stdout.log"
    with open(out, "wb") as stdout:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "python:service.gunicorn_conf",
             "service:create_app()"],
            env=env, stdout=stdout, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: answers_healthz(base, process), timeout=20)
        yield process, base, out
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)


def _send_token_calls(simulator) -> int:
    stats = requests.get(simulator.url + "/_sim/stats", timeout=5).json()
    return stats["calls"].get("SendTokenSMS", 0)


def test_sigterm_lets_a_slow_send_answer_201_and_gunicorn_exit_0(served, simulator):
    process, base, _ = served
    requests.post(simulator.url + "/_sim/faults", json={"delay": 2, "endpoints": ["SendTokenSMS"]},
                  timeout=5).raise_for_status()
    answer = {}

    def call():
        answer["response"] = requests.post(
            base + "/otp/start", json={"phone": "+41791234567"},
            headers={"Authorization": f"Bearer {CLIENT_KEY}"}, timeout=20)
        answer["at"] = time.monotonic()

    caller = threading.Thread(target=call)
    caller.start()
    wait_for(lambda: _send_token_calls(simulator) == 1, timeout=10)
    terminated_at = time.monotonic()
    process.send_signal(signal.SIGTERM)
    caller.join(20)

    assert answer["response"].status_code == 201
    assert answer["at"] > terminated_at, "the request was in flight when SIGTERM came"
    assert process.wait(20) == 0


def test_after_sigterm_no_new_connection_is_served_and_every_line_is_json(served):
    process, base, out = served

    process.send_signal(signal.SIGTERM)

    assert process.wait(20) == 0
    with pytest.raises(requests.ConnectionError):
        requests.get(base + "/healthz", timeout=2)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    messages = [line["message"] for line in lines if line["logger"] == "gunicorn.error"]
    assert any("Handling signal: term" in message for message in messages)
