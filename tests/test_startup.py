"""Starting the service: bad configuration stops the gunicorn master (or ``serve``) with one
line per variable before any worker starts; sandbox mode is one worker however it is
started."""

from __future__ import annotations

import importlib.util
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests

from service.cli import main
from tests.config_table import FULL, PROCESS_ROWS, SERVE_ROWS, SERVICE_ROWS
from tests.helpers import OURS, answers_healthz, clean_environ, free_port, wait_for

ROOT = Path(__file__).resolve().parent.parent
ENTRYPOINT = ROOT / "deploy" / "docker-entrypoint.sh"
KEY = {"Authorization": "Bearer sandbox-client-key"}


def one_line_naming(stderr: str, variable: str) -> bool:
    lines = stderr.splitlines()
    return len(lines) == 1 and lines[0].startswith(f"configuration error: {variable}: ")


# -- the master's check, in process -------------------------------------------------------

@pytest.fixture
def master(monkeypatch, tmp_path):
    """Runs gunicorn_conf's on_starting as the master would, on a fresh copy of the module
    loaded under the given environment; returns (exit status, stderr)."""

    def run(env: dict[str, str], capsys) -> tuple[object, str]:
        for name in list(os.environ):
            if name.startswith(OURS):
                monkeypatch.delenv(name)
        monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "metrics"))
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        spec = importlib.util.spec_from_file_location(
            "gunicorn_conf_under_test", ROOT / "service" / "gunicorn_conf.py")
        conf = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(conf)
        server = SimpleNamespace(pidfile=None, num_workers=1, log=logging.getLogger("test"))
        with pytest.raises(SystemExit) as stopped:
            conf.on_starting(server)
        return stopped.value.code, capsys.readouterr().err

    return run


@pytest.mark.parametrize(("variable", "overrides"), SERVICE_ROWS + PROCESS_ROWS)
def test_every_bad_value_stops_the_gunicorn_master_with_one_line(master, capsys, variable,
                                                                 overrides):
    status, stderr = master({**FULL, **overrides}, capsys)

    assert status == 2
    assert one_line_naming(stderr, variable), stderr


def test_the_master_reports_every_problem_at_once(master, capsys):
    status, stderr = master({**FULL, "GUNICORN_THREADS": "many", "LOG_LEVEL": "LOUD",
                             "REDIS_URL": "http://x"}, capsys)

    assert status == 2
    assert [line.split(":")[1].strip() for line in stderr.splitlines()] == [
        "GUNICORN_THREADS", "REDIS_URL", "LOG_LEVEL"]


def test_every_process_variable_of_the_operations_guide_has_a_bad_value_row():
    import re

    guide = (ROOT / "deploy" / "OPERATIONS.md").read_text()
    table = guide.split("### Process settings", 1)[1].split("\n\n", 2)[1]
    documented = {name for row in table.splitlines()[2:]
                  for name in re.findall(r"`([A-Z_]+)`", row.split(" | ")[0])}
    rows = {variable for variable, _ in SERVICE_ROWS + PROCESS_ROWS + SERVE_ROWS}
    assert len(documented) > 10 and documented <= rows, documented - rows


# -- aspsms-verify serve ------------------------------------------------------------------

@pytest.mark.parametrize(("variable", "overrides"), SERVICE_ROWS + SERVE_ROWS)
def test_every_bad_value_stops_serve_with_one_line_before_gunicorn(monkeypatch, capsys,
                                                                   variable, overrides):
    for name in list(os.environ):
        if name.startswith(OURS):
            monkeypatch.delenv(name)
    for name, value in {**FULL, **overrides}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(os, "execvp", lambda *args: pytest.fail("gunicorn was started"))

    assert main(["serve"]) == 2
    assert one_line_naming(capsys.readouterr().err, variable)


# -- real processes -----------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize(("variable", "overrides"), [
    ("REDIS_URL", {"REDIS_URL": "http://x"}),
    ("LOG_LEVEL", {"LOG_LEVEL": "LOUD"}),
    ("OTP_API_KEYS", {"OTP_API_KEYS": "web:fifteen-chars15"}),
    ("REDIS_URL", {"REDIS_URL": ""}),
    ("GUNICORN_ACCESSLOG", {"GUNICORN_ACCESSLOG": "/nonexistent/access.log"}),
])
def test_gunicorn_on_the_factory_refuses_a_bad_value_in_the_master(variable, overrides):
    env = clean_environ(**{**FULL, **overrides}, GUNICORN_BIND=f"127.0.0.1:{free_port()}")
    # from the repository root gunicorn reads ./gunicorn.conf.py (the packaged settings)
    result = subprocess.run([sys.executable, "-m", "gunicorn", "service:create_app()"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)

    assert result.returncode == 2
    assert one_line_naming(result.stderr, variable), result.stderr
    assert "Booting worker" not in result.stdout and "Listening at" not in result.stdout


@pytest.mark.slow
def test_serve_refuses_a_bad_value_as_a_real_process():
    result = subprocess.run([sys.executable, "-m", "service.cli", "serve"], cwd=ROOT,
                            env=clean_environ(**{**FULL, "REDIS_URL": "http://x"}),
                            capture_output=True, text=True, timeout=60)

    assert result.returncode == 2 and one_line_naming(result.stderr, "REDIS_URL")
    assert result.stdout == ""


@pytest.fixture
def gunicorn_wrapper(tmp_path):
    """A ``gunicorn`` on PATH for the entry point: this Python's gunicorn."""
    binary = tmp_path / "bin" / "gunicorn"
    binary.parent.mkdir()
    binary.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m gunicorn "$@"\n')
    binary.chmod(0o755)
    return f"{binary.parent}:{os.environ['PATH']}"


def _start(how: str, port: int, path: str, request) -> tuple[list[str], dict[str, str]]:
    env = clean_environ(GUNICORN_BIND=f"127.0.0.1:{port}", PATH=path)
    if how.startswith("entry point"):  # what `docker run IMAGE` runs
        if "WEB_CONCURRENCY" in how:  # as compose sets it
            env["WEB_CONCURRENCY"] = "2"
        return ["sh", str(ENTRYPOINT)], env
    if how == "serve":  # README command 1
        return [sys.executable, "-m", "service.cli", "serve", "--port", str(port)], env
    if how.startswith("gunicorn -w 4"):
        if "REDIS_URL" in how:  # the store is shared then, but the simulator is not
            env["REDIS_URL"] = request.getfixturevalue("redis_server").url
            request.getfixturevalue("redis_db")
        return [sys.executable, "-m", "gunicorn", "-w", "4", "service:create_app()"], env
    return [sys.executable, "-m", "service.cli", "serve", "--workers", "4", "--port",
            str(port)], env


def quick_start(base: str, phone: str) -> tuple[int, str]:
    """The README's quick start: send, read the code in /sandbox/messages, check it."""
    sent = requests.post(base + "/otp/start", json={"phone": phone}, headers=KEY, timeout=10)
    assert sent.status_code == 201, sent.text
    messages = requests.get(base + "/sandbox/messages", headers=KEY, timeout=10)
    codes = [m["code"] for m in messages.json() if m["recipient"] == phone]
    if not codes:
        return 404, "no message"
    checked = requests.post(base + "/otp/check", json={"phone": phone, "code": codes[-1]},
                            headers=KEY, timeout=10)
    return checked.status_code, checked.json().get("status", checked.json().get("code"))


@pytest.mark.slow
@pytest.mark.parametrize(("how", "warnings"), [
    ("entry point", 0), ("entry point, WEB_CONCURRENCY=2", 1), ("gunicorn -w 4", 1),
    ("serve", 0), ("serve --workers 4", 1), ("gunicorn -w 4 with REDIS_URL", 1)])
def test_sandbox_mode_is_one_worker_however_it_is_started(how, warnings, gunicorn_wrapper,
                                                          tmp_path, request):
    """One worker, and one warning line when more were asked for (none by default)."""
    port = free_port()
    command, env = _start(how, port, gunicorn_wrapper, request)
    out = tmp_path / "out.log"
    with open(out, "wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log,
                                   stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: answers_healthz(base, process), timeout=30)
        results = [quick_start(base, f"+417912345{n:02d}") for n in range(12)]
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)

    assert results == [(200, "approved")] * 12
    text = out.read_text()
    assert text.count("Booting worker") == 1
    assert text.count("so gunicorn runs one worker instead of") == warnings


@pytest.mark.slow
def test_gunicorn_without_the_packaged_settings_refuses_a_split_sandbox(tmp_path):
    port = free_port()
    # elsewhere than the repository root there is no gunicorn.conf.py to force one worker
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}",
         "service:create_app()"], cwd=tmp_path, env=clean_environ(), capture_output=True,
        text=True, timeout=90)

    # 4: gunicorn's "App failed to load", 3 its "Worker failed to boot" (which of the two
    # depends on how far the worker got when the master saw it end); 1 when both workers fail
    # at once and gunicorn's halt meets the second failure (a HaltServer traceback of its own)
    assert result.returncode in (1, 3, 4)
    ours = [line for line in result.stderr.splitlines() if line.startswith("sandbox mode")]
    assert ours and set(ours) == {
        "sandbox mode needs one gunicorn worker, not 2: use -w 1, or "
        "-c python:service.gunicorn_conf, which forces one"}
    assert "Listening at" in result.stderr and "service/" not in result.stderr  # no trace of ours
