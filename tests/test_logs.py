"""Structured logs: one JSON object per line, and nothing secret in any of them."""

from __future__ import annotations

import io
import json
import logging
import re

import pytest

from service import logs
from service.config import ConfigError
from tests.conftest import ADMIN_KEY, CLIENT_KEY, OTHER_KEY, SIM_PASSWORD, SIM_USER, last_code

PHONE = "+41791234567"
SECRETS = [CLIENT_KEY, ADMIN_KEY, SIM_PASSWORD, "test-secret-0123456789abcdef"]
log = logging.getLogger("tests.logs")


@pytest.fixture
def root_logging():
    """The root logger as it was, restored after the test changes it."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    filters = {h: list(h.filters) for h in handlers}
    yield root
    root.handlers[:] = handlers
    root.setLevel(level)
    for handler, kept in filters.items():
        handler.filters[:] = kept


@pytest.fixture
def output(root_logging) -> io.StringIO:
    """What the root handler writes, with the configured secrets known to its filter."""
    stream = io.StringIO()
    logs.install("DEBUG", SECRETS, stream=stream)
    return stream


def events(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_record_is_one_json_object_with_time_level_logger_message_and_extras(output):
    log.warning("gateway slow: %s ms", 812, extra={"endpoint": "SendTokenSMS"})

    [event] = events(output)
    assert event["level"] == "WARNING" and event["logger"] == "tests.logs"
    assert event["message"] == "gateway slow: 812 ms"
    assert event["endpoint"] == "SendTokenSMS"
    assert event["time"].endswith("Z") and "T" in event["time"]


@pytest.mark.parametrize("emit, secret", [
    (lambda: log.debug("client key %s", CLIENT_KEY), CLIENT_KEY),
    (lambda: log.debug("admin key in text: " + ADMIN_KEY), ADMIN_KEY),
    (lambda: log.debug("calling with password=%s", SIM_PASSWORD), SIM_PASSWORD),
    (lambda: log.debug("auth", extra={"headers": {"X": f"k={CLIENT_KEY}"}}), CLIENT_KEY),
    (lambda: log.debug("Authorization: Bearer unknown-key-987"), "unknown-key-987"),
    (lambda: log.debug("body %s", {"id": "vf_x", "code": "482913"}), "482913"),
    (lambda: log.debug('{"VerificationCode": "A7K2Q9", "Phone": 1}'), "A7K2Q9"),
    (lambda: log.debug("checking code=093817"), "093817"),
    (lambda: log.debug("unlock", extra={"unlock_code": "5512"}), "5512"),
    (lambda: log.debug("unlock", extra={"form": {"code": "771203"}}), "771203"),
    (lambda: log.debug("sending to %s", PHONE), "791234567"),
    (lambda: log.debug("sending to +41 79 123 45 67"), "123 45"),
    (lambda: log.debug("sending to 0041791234567"), "791234567"),
    (lambda: log.debug("recipient", extra={"to": [PHONE]}), "791234567"),
], ids=["client-key", "admin-key", "password", "key-in-extra", "bearer-token", "code-in-dict",
        "code-in-json", "code-equals", "code-extra", "code-nested", "e164", "spaced",
        "00-prefix", "phone-in-list"])
def test_no_secret_code_or_full_number_reaches_a_line_even_at_debug(output, emit, secret):
    emit()

    line = output.getvalue()
    assert line.count("\n") == 1, "one record, one line"
    assert secret not in line
    assert secret not in json.dumps(json.loads(line), ensure_ascii=False)


# Percent-encoded (once or nested) as in a path or query; digits in the clear after decoding.
ENCODED = {
    "path": "GET /admin/originators/%2B41791234567",
    "lower-case": "GET /admin/originators/%2b41791234567",
    "spaces": "GET /admin/originators/%2B41%2079%20123%2045%2067",
    "query-plus": "GET /otp/x?phone=%2B41+79+123+45+67",
    "double": "GET /admin/originators/%252B41791234567",
    "triple": "GET /x/%25252B41%252079%2520123%252045%252067",
    "digits": "GET /x/%2B%34%31%37%39%31%32%33%34%35%36%37",
    "00-prefix": "GET /x?to=0041%20791234567",
    "dashes": "GET /x/%2B41-79-123-45-67",
    "parentheses": "GET /x/%2B41%20%2879%29%20123%2045%2067",
}


@pytest.mark.parametrize("level", [logging.DEBUG, logging.INFO, logging.ERROR])
@pytest.mark.parametrize("text", ENCODED.values(), ids=ENCODED.keys())
def test_a_percent_encoded_number_is_masked_at_every_level(output, text, level):
    logging.getLogger("gunicorn.error").log(level, text)
    log.log(level, "request", extra={"url": text})

    assert "791234567" not in _decoded_digits(output.getvalue())


@pytest.mark.parametrize("text, secret", [
    ("GET /x?code%3D482913", "482913"),
    ("Authorization%3A%20Bearer%20unknown-key-987", "unknown-key-987"),
    ("GET /x/" + CLIENT_KEY.replace("-", "%2D"), CLIENT_KEY),
    ("GET /x/" + CLIENT_KEY.replace("-", "%252D"), CLIENT_KEY),
    ("GET /x?password=%73im-password", SIM_PASSWORD),
])
def test_an_encoded_secret_or_code_is_masked(output, text, secret):
    log.debug(text)

    assert secret not in _decoded(output.getvalue())


@pytest.mark.parametrize("text", ["code=482913", "Authorization: Bearer x-1", PHONE,
                                  "GET /x?code%3D1&phone=%2B41791234567", CLIENT_KEY])
def test_masking_twice_changes_nothing_more(text):
    # A record the root hands to two handlers passes the same filter twice.
    masking = logs.MaskingFilter(SECRETS)
    once = masking.mask(text)
    assert masking.mask(once) == once != text


def test_decoding_never_turns_an_escape_into_a_line_break(output):
    log.info("GET /x/%0A%0D%E2%80%A8%7F%2B41791234567")

    [event] = events(output)
    assert event["message"] == "GET /x/%0A%0D%E2%80%A8%7F+41*******67"


def _up(base: str, process) -> bool:
    import requests

    assert process.poll() is None, "gunicorn exited"
    try:
        return requests.get(base + "/healthz", timeout=0.5).status_code == 200
    except requests.RequestException:
        return False


def _decoded(text: str) -> str:
    from urllib.parse import unquote_plus

    for _ in range(5):
        text = unquote_plus(text)
    return text


def _decoded_digits(text: str) -> str:
    """The text fully decoded, with everything that may separate a number's digits gone."""
    return re.sub(r"[\s()+\-]", "", _decoded(text))


def test_an_exception_and_its_traceback_are_masked(output):
    log.error("send failed", exc_info=ValueError(f"cannot text {PHONE} with key {CLIENT_KEY}"))

    [event] = events(output)
    assert "ValueError" in event["exception"]
    assert "791234567" not in event["exception"] and CLIENT_KEY not in event["exception"]


def test_a_masked_number_keeps_its_country_and_last_digits(output):
    log.info("to %s", PHONE)

    assert events(output)[0]["message"] == "to +41*******67"


@pytest.mark.parametrize("text", [
    "Listening at: http://127.0.0.1:49741 (16714)",
    "test number expired on 2027-01-31",
    "verification vf_3q2RZk1234567890aBc read",
    "aspsms SendTokenSMS outcome=ok status=1 duration_ms=13",
    "status_code=503 after 2 retries",
    "request 5239789000714cec8b044da61af7914a",
])
def test_ordinary_text_is_left_readable(output, text):
    log.info(text)

    assert events(output)[0]["message"] == text


@pytest.mark.parametrize("value", [
    PHONE + '\n{"level": "CRITICAL", "message": "forged"}',
    PHONE + '\r\n{"level": "CRITICAL"}',
    PHONE + '\u2028{"level": "CRITICAL"}',
])
def test_a_value_with_a_line_break_cannot_forge_a_second_line(output, value):
    log.info("start for %s", value, extra={"phone": value})

    text = output.getvalue()
    assert text.count("\n") == 1 and "\r" not in text and "\u2028" not in text
    [event] = events(output)
    assert event["level"] == "INFO"
    assert "\n" in event["message"] or "\u2028" in event["message"]


def test_every_root_handler_gets_the_masking_filter(root_logging):
    other = logging.StreamHandler(io.StringIO())
    root_logging.addHandler(other)

    logs.install("INFO", SECRETS, stream=io.StringIO())
    log.info("key %s", CLIENT_KEY)

    assert CLIENT_KEY not in other.stream.getvalue()
    assert logs.REDACTED in other.stream.getvalue()


def test_an_unknown_log_level_stops_start_up_naming_the_variable(make_app, root_logging):
    with pytest.raises(ConfigError, match="LOG_LEVEL"):
        make_app(LOG_LEVEL="LOUD")


# -- through the app ---------------------------------------------------------------------

@pytest.fixture
def app_output(make_app, root_logging, capsys):
    app = make_app(LOG_LEVEL="DEBUG")
    capsys.readouterr()
    return app


def test_a_whole_flow_at_debug_logs_no_code_key_password_or_number(
        app_output, simulator, capsys, auth):
    http = app_output.test_client()
    started = http.post("/otp/start", json={"phone": "+41 79 123 45 67"}, headers=auth)
    code = last_code(simulator, PHONE)
    wrong = "000000" if code != "000000" else "111111"
    rejected = http.post("/otp/check", json={"id": started.json["id"], "code": wrong},
                         headers=auth)
    approved = http.post("/otp/check", json={"phone": PHONE, "code": code}, headers=auth)
    hidden = http.get("/otp/verifications/" + started.json["id"],
                      headers={"Authorization": f"Bearer {OTHER_KEY}"})

    assert (started.status_code, hidden.status_code) == (201, 404)
    assert (rejected.json["valid"], approved.json["valid"]) == (False, True)
    text = capsys.readouterr().out
    lines = [json.loads(line) for line in text.splitlines()]
    assert len([e for e in lines if e["logger"] == "service.access"]) == 4
    for secret in [code, CLIENT_KEY, OTHER_KEY, SIM_PASSWORD, SIM_USER, "791234567",
                   "123 45 67"]:
        assert secret not in text


def test_each_request_writes_one_access_event_with_its_id_route_client_and_masked_phone(
        app_output, capsys, auth):
    http = app_output.test_client()
    response = http.post("/otp/start", json={"phone": "+41 79 123 45 67"},
                         headers={**auth, "X-Request-ID": "req-42"})
    http.get("/otp/verifications/" + response.json["id"], headers=auth)

    access = [e for e in events_of(capsys) if e["logger"] == "service.access"]
    assert response.headers["X-Request-ID"] == "req-42"
    assert [e["route"] for e in access] == ["/otp/start", "/otp/verifications/<verification_id>"]
    first = access[0]
    assert first["request_id"] == "req-42" and first["method"] == "POST"
    assert first["status"] == 201 and first["client"] == "acme"
    assert first["phone"] == "+417******67" and first["duration_ms"] >= 0
    assert "phone" not in access[1] and access[1]["request_id"] != "req-42"


@pytest.mark.parametrize("offered", ["", "x" * 129, "bad id", "<script>", "a;b"])
def test_an_unusable_request_id_is_replaced_by_a_generated_one(app_output, capsys, offered):
    response = app_output.test_client().get("/healthz", headers={"X-Request-ID": offered})

    generated = response.headers["X-Request-ID"]
    assert generated != offered and len(generated) == 32
    assert events_of(capsys)[-1]["request_id"] == generated


def test_a_refused_request_names_its_problem_and_every_app_line_carries_the_request_id(
        app_output, capsys, auth):
    app_output.test_client().post("/otp/start", json={"phone": "+41 79 123\n45 67"},
                                  headers={**auth, "X-Request-ID": "req-43"})

    lines = events_of(capsys)
    [access] = [e for e in lines if e["logger"] == "service.access"]
    assert access["status"] == 422 and access["problem"] == "invalid_phone"
    assert access["phone"] == "invalid"
    assert all(e.get("request_id") == "req-43" for e in lines)


def events_of(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


@pytest.mark.parametrize("path, logged", [
    ("/otp/nothing-here", "/otp/nothing-here"),
    ("/admin/originator/%2B41791234567?phone=%2B41791234567", "/admin/originator/+41*******67"),
    ("/otp/verification/vf_0226jCuKNsbhu_9bv5hs541eAw",) * 2,  # an id stays readable
    ("/otp/start/sk_live_4eC39HqLyjWDarjtT1zdp7dc/x", f"/otp/start/{logs.REDACTED}/x"),
    (f"/otp/{CLIENT_KEY}", f"/otp/{logs.REDACTED}"),
    ("/x/code=482913", f"/x/code={logs.REDACTED}"),
])
def test_an_unmatched_request_logs_its_path_masked_without_the_query(
        app_output, capsys, auth, path, logged):
    app_output.test_client().get(path, headers=auth)

    [access] = [e for e in events_of(capsys) if e["logger"] == "service.access"]
    assert access["route"] == "unmatched" and access["status"] == 404
    assert access["path"] == logged


def test_a_matched_request_logs_its_route_not_its_path(app_output, capsys, auth):
    app_output.test_client().get("/otp/verifications/vf_0226jCuKNsbhu_9bv5hs541eAw",
                                 headers=auth)

    [access] = [e for e in events_of(capsys) if e["logger"] == "service.access"]
    assert access["route"] == "/otp/verifications/<verification_id>" and "path" not in access


@pytest.mark.parametrize("body, status", [
    ("[" * 100_000 + "]" * 100_000, 413),
    ("[" * 30_000 + "]" * 30_000, 400),
    ('{"phone": ', 400),
])
def test_a_malformed_or_oversized_body_still_gets_its_access_event(
        app_output, capsys, auth, body, status):
    response = app_output.test_client().post(
        "/otp/start", data=body, headers={**auth, "Content-Type": "application/json"})

    [access] = [e for e in events_of(capsys) if e["logger"] == "service.access"]
    assert response.status_code == access["status"] == status
    assert "phone" not in access


@pytest.mark.parametrize("settings, built", [
    ({}, False), ({"accesslog": "-"}, True), ({"syslog": True}, True),
    ({"syslog": True, "disable_redirect_access_to_syslog": True}, False),
])
def test_gunicorn_builds_its_access_line_only_when_something_consumes_it(
        root_logging, monkeypatch, settings, built):
    # With any logging config gunicorn's own Logger builds the line's fields for every
    # request and only then lets the level drop it.
    from gunicorn.config import Config
    from gunicorn.glogging import Logger

    cfg = Config()
    cfg.set("logconfig_dict", {"version": 1, "disable_existing_loggers": False})
    for name, value in settings.items():
        cfg.set(name, value)
    monkeypatch.setattr(Logger, "setup", lambda self, cfg: None)  # no syslog socket
    assert Logger(cfg).access_log_enabled  # the stock logger would build it either way
    logger = logs.GunicornLogger(cfg)
    calls = []
    monkeypatch.setattr(logger, "atoms", lambda *args: calls.append(args) or {})
    monkeypatch.setattr(logger, "access_log", logging.getLogger("tests.gunicorn.access"))

    logger.access(None, None, {}, None)

    assert bool(calls) is built


def test_with_a_statsd_host_the_gunicorn_logger_still_sends_request_timers(
        root_logging, monkeypatch):
    from datetime import timedelta

    from gunicorn.config import Config
    from gunicorn.instrument.statsd import Statsd

    cfg = Config()
    cfg.set("logconfig_dict", {"version": 1, "disable_existing_loggers": False})
    cfg.set("statsd_host", "127.0.0.1:9")
    logger = logs.GunicornLogger(cfg)
    sent = []
    monkeypatch.setattr(logger, "_sock_send", sent.append)
    monkeypatch.setattr(logger, "atoms", lambda *args: {})

    logger.access(type("Resp", (), {"status": "200 OK"})(), None, {}, timedelta(seconds=0.01))

    logger.sock.close()
    assert isinstance(logger, Statsd)
    assert any(b"gunicorn.request.duration" in (m if isinstance(m, bytes) else m.encode())
               for m in sent)


def test_the_gunicorn_settings_use_that_logger():
    import subprocess
    import sys

    printed = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", "python:service.gunicorn_conf",
         "--print-config", "service:create_app()"],
        capture_output=True, text=True, timeout=60, check=True).stdout
    assert re.search(r"^logger_class\s+= service\.logs\.GunicornLogger$", printed, re.M)


# -- under gunicorn, at DEBUG, everything it writes ------------------------------------------
def _raw_request(port: int, head: bytes) -> None:
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(head)
        sock.recv(65536)


def test_under_gunicorn_at_debug_no_line_carries_a_number_however_it_is_encoded(tmp_path):
    import os
    import subprocess
    import sys

    import requests

    from tests.helpers import free_port, wait_for

    port, out = free_port(), tmp_path / "gunicorn.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASPSMS_", "OTP_"))}
    env.update(LOG_LEVEL="DEBUG", GUNICORN_ACCESSLOG="-", GUNICORN_BIND=f"127.0.0.1:{port}",
               WEB_CONCURRENCY="1", GUNICORN_THREADS="4")  # sandbox mode: no gateway key
    with out.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "python:service.gunicorn_conf",
             "service:create_app()"], env=env, stdout=sink, stderr=subprocess.STDOUT)
        base, admin = f"http://127.0.0.1:{port}", {"Authorization": "Bearer sandbox-admin-key"}
        try:
            wait_for(lambda: _up(base, process), timeout=30)
            for text in ENCODED.values():
                target = text.split(" ", 1)[1]
                requests.get(base + target, headers=admin, timeout=5)
                requests.get(base + "/admin/originators" + target.replace("/", "%2F"),
                             headers=admin, timeout=5)
            requests.post(base + "/otp/start", headers={
                "Authorization": "Bearer sandbox-client-key", "Content-Type": "application/json",
                "Referer": base + "/?phone=%2B41791234567"}, data='{"phone": "+41791234567"}',
                timeout=5)
            _raw_request(port, b"GET /%2B41791234567 HTTP/1.1 x\r\n\r\n")  # a bad request line
            _raw_request(port, b"GET /x HTTP/1.1\r\nHost: x\r\nX-%2B41791234567: 1\x00\r\n\r\n")
        finally:
            process.terminate()
            process.wait(20)
    text = out.read_text()
    assert "GET /admin/originators/" in text and '"level": "DEBUG"' in text  # it did log
    assert "791234567" not in _decoded_digits(text)
