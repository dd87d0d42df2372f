"""The ``aspsms-verify`` admin commands, run in process against the simulator over HTTP."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys

import pytest
import requests

from service import __version__
from service.cli import main
from tests.conftest import SIM_PASSWORD, last_code, service_env

NUMERIC = "+41791110002"


@pytest.fixture
def cli_env(monkeypatch, simulator):
    """Exactly the contract's variables, as an operator's shell would export them, and the
    logging of a fresh process (an app built by another test installs a JSON handler)."""
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    monkeypatch.setattr(root, "level", logging.WARNING)
    for name in list(os.environ):
        if name.startswith(("ASPSMS_", "OTP_", "REDIS_")):
            monkeypatch.delenv(name)
    # the admin commands never touch Redis: a closed port proves it
    for name, value in service_env("redis://127.0.0.1:1/0", simulator.url).items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def gateway_calls(simulator) -> int:
    calls = requests.get(simulator.url + "/_sim/stats", timeout=5).json()["calls"]
    return sum(calls.values())


def test_credits_prints_the_balance(cli_env, capsys):
    assert run(capsys, "credits") == (0, "credits: 1000000\n", "")


def test_the_unlock_flow_runs_from_the_command_line(cli_env, capsys, simulator):
    assert run(capsys, "originator", "check", NUMERIC) == (
        0, f"{NUMERIC}: not_authorized (may not send yet)\n", "")
    assert run(capsys, "originator", "send-unlock-code", NUMERIC)[1] == (
        f"{NUMERIC}: pending (may not send yet)\n")
    code = last_code(simulator, NUMERIC)

    status, out, err = run(capsys, "originator", "unlock", NUMERIC, "00000000")
    assert (status, out) == (1, "")
    assert err.startswith("refused: The gateway refused this unlock code")

    assert run(capsys, "originator", "unlock", NUMERIC, code) == (
        0, f"{NUMERIC}: authorized (may send)\n", "")
    assert run(capsys, "originator", "check", NUMERIC)[1] == f"{NUMERIC}: authorized (may send)\n"


def test_an_alphanumeric_originator_needs_no_unlocking(cli_env, capsys):
    assert run(capsys, "originator", "check", "Seq Server") == (
        0, "Seq Server: no_authorization_needed (may send)\n", "")


@pytest.mark.parametrize("originator", ["TwelveChars1", "12345", "+41 79 111 00 02"])
def test_an_invalid_originator_is_refused_without_asking_the_gateway(cli_env, capsys,
                                                                     simulator, originator):
    status, out, err = run(capsys, "originator", "check", originator)
    assert (status, out) == (1, "")
    assert err.startswith("refused: An originator is 1-11 letters") and err.count("\n") == 1
    assert gateway_calls(simulator) == 0


def test_unlock_without_a_code_stops_with_a_message(cli_env, capsys, simulator):
    with pytest.raises(SystemExit, match="needs the unlock code"):
        main(["originator", "unlock", NUMERIC])
    assert gateway_calls(simulator) == 0


@pytest.mark.parametrize("variable, value, fault, reason", [
    ("ASPSMS_PASSWORD", "wrong-password", None, "status 3 (authorization failed)"),
    (None, None, {"status_code": "24"}, "status 24 (service temporarily unavailable)"),
    (None, None, {"http_status": 503}, "503"),
])
def test_a_gateway_refusal_exits_non_zero_with_the_reason(cli_env, capsys, simulator, variable,
                                                          value, fault, reason):
    if variable:
        cli_env.setenv(variable, value)
    if fault:
        requests.post(simulator.url + "/_sim/faults", json=fault, timeout=5).raise_for_status()
    status, out, err = run(capsys, "credits")
    assert (status, out) == (1, "")
    last = err.splitlines()[-1]
    assert last.startswith("gateway error: CheckCredits") and reason in last
    assert "wrong-password" not in err and SIM_PASSWORD not in err


@pytest.mark.parametrize("unset, variable", [
    ("ASPSMS_PASSWORD", "ASPSMS_PASSWORD"),
    ("ASPSMS_USERKEY", "ASPSMS_USERKEY"),  # sandbox has no gateway to administer
])
def test_a_configuration_error_exits_2_with_one_line_naming_the_variable(
        cli_env, capsys, simulator, unset, variable):
    cli_env.delenv(unset)
    status, out, err = run(capsys, "credits")
    assert (status, out) == (2, "")
    assert err.startswith(f"configuration error: {variable}: ") and err.count("\n") == 1
    assert gateway_calls(simulator) == 0


SERVICE_ONLY = ("ASPSMS_ORIGINATOR", "OTP_API_KEYS", "OTP_ADMIN_KEYS", "OTP_SECRET",
                "REDIS_URL")
ADMIN_COMMANDS = [["credits"], ["originator", "check", "Seq Server"], ["status-codes"],
                  ["version", "--gateway"]]


@pytest.mark.parametrize("command", ADMIN_COMMANDS, ids=" ".join)
def test_an_admin_command_needs_only_the_gateways_credentials(cli_env, capsys, command):
    for name in SERVICE_ONLY:
        cli_env.delenv(name)
    # what only the service reads may even be wrong
    cli_env.setenv("LOG_LEVEL", "LOUD")
    cli_env.setenv("OTP_CODE_MASK", "#")

    status, out, err = run(capsys, *command)
    assert (status, err) == (0, "") and out


@pytest.mark.parametrize("command", ADMIN_COMMANDS + [["delivery", "poll"]], ids=" ".join)
def test_an_admin_command_reports_every_problem_of_its_own_at_once(cli_env, capsys, simulator,
                                                                   command):
    for name in ("ASPSMS_USERKEY", "ASPSMS_PASSWORD", *SERVICE_ONLY):
        cli_env.delenv(name)
    cli_env.setenv("ASPSMS_TIMEOUT", "soon")
    cli_env.setenv("ASPSMS_URL", "http://gateway.example")

    status, out, err = run(capsys, *command)
    assert (status, out) == (2, "")
    named = [line.split(":")[1].strip() for line in err.splitlines()]
    expected = ["ASPSMS_USERKEY", "ASPSMS_PASSWORD", "ASPSMS_URL", "ASPSMS_TIMEOUT"]
    if command[0] == "delivery":
        expected += ["REDIS_URL", "OTP_SECRET"]
    assert named == expected
    assert all(line.startswith("configuration error: ") for line in err.splitlines())
    assert gateway_calls(simulator) == 0


def test_delivery_poll_runs_with_what_it_uses(cli_env, capsys, redis_server, redis_db):
    for name in ("ASPSMS_ORIGINATOR", "OTP_API_KEYS", "OTP_ADMIN_KEYS"):
        cli_env.delenv(name)
    cli_env.setenv("REDIS_URL", redis_server.url)

    status, out, err = run(capsys, "delivery", "poll")
    assert (status, err) == (0, "")
    assert json.loads(out) == {"due": 0, "inquired": 0, "updated": 0, "expired": 0}


# -- help and the simulator ---------------------------------------------------------------

def help_text(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit) as done:
        main([*argv, "--help"])
    assert done.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("command", [[], ["serve"], ["simulator"], ["credits"], ["originator"],
                                     ["status-codes"], ["version"], ["delivery"],
                                     ["delivery", "poll"]], ids=lambda c: " ".join(c) or "top")
def test_every_help_is_clean_text_and_every_option_explained(capsys, command):
    text = help_text(capsys, *command)
    assert "``" not in text and ":func:" not in text and ":class:" not in text
    option_lines = [line for line in text.splitlines() if line.strip().startswith("--")
                    and not line.strip().startswith("--help")]
    # an option without help text is printed alone on its line
    assert all(len(line.split()) > 2 for line in option_lines), option_lines


def test_the_simulators_help_shows_its_defaults(capsys):
    text = " ".join(help_text(capsys, "simulator").split())
    for default in ("(default: 8090)", "(default: SIMUSER)", "(default: simpass)",
                    "(default: 1000)"):
        assert default in text


def test_the_simulator_on_a_busy_port_exits_1_with_one_line(capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        status, out, err = run(capsys, "simulator", "--port", str(port))
    assert (status, out) == (1, "")
    assert err == f"simulator: cannot listen on 127.0.0.1:{port}: Address already in use\n"


@pytest.mark.slow
def test_the_simulator_on_a_busy_port_as_a_real_process():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "service.cli", "simulator", "--port",
                                 str(port)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.splitlines() == [
        f"simulator: cannot listen on 127.0.0.1:{port}: Address already in use"]


def test_status_codes_prints_the_gateways_table_as_json(cli_env, capsys):
    status, out, _ = run(capsys, "status-codes")
    codes = {entry["StatusCode"] for entry in json.loads(out)["StatusCodes"]}
    assert status == 0 and {"1", "3", "30", "31"} <= codes


def test_version_prints_ours_and_on_request_the_gateways(cli_env, capsys):
    assert run(capsys, "version") == (0, f"aspsms-verify {__version__}\n", "")
    status, out, _ = run(capsys, "version", "--gateway")
    first, rest = out.split("\n", 1)
    assert status == 0 and first == f"aspsms-verify {__version__}"
    assert "build:" in json.loads(rest)["VersionInfo"]
