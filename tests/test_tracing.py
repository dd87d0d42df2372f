"""OpenTelemetry traces: spans exported to an in-memory exporter, a real redis-server and the
simulator over HTTP."""

from __future__ import annotations

import base64
import re

import pytest

from service import tracing
from service.app import build_app
from service.config import ConfigError
from tests.conftest import (
    ADMIN_KEY,
    CLIENT_KEY,
    SIM_PASSWORD,
    SIM_USER,
    last_code,
    service_env,
)
from tests.helpers import check, start

memory_exporter = pytest.importorskip(
    "opentelemetry.sdk.trace.export.in_memory_span_exporter",
    reason="OpenTelemetry is not installed (pip install -e '.[otel,test]')")
from opentelemetry.trace import SpanKind  # noqa: E402 (after the skip)

PHONE, DIGITS = "+41791234567", "791234567"
CLIENT = {"Authorization": f"Bearer {CLIENT_KEY}"}
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
ON = {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}


@pytest.fixture
def traced(redis_db, redis_server, simulator):
    """An app whose spans go to memory (as they would to the OTLP exporter), and them."""
    memory = memory_exporter.InMemorySpanExporter()
    env = service_env(redis_server.url, simulator.url, OTP_DEFAULT_REGION="CH", **ON)
    app = build_app(env, span_exporters=[memory])
    yield app, memory
    tracing.shutdown(app)


def finished(app, memory) -> list:
    app.extensions["otel"].force_flush()
    return list(memory.get_finished_spans())


def children(spans, parent) -> list[str]:
    """The names of ``parent``'s child spans, in the order they started."""
    found = [span for span in spans if span.parent is not None
             and span.parent.span_id == parent.context.span_id]
    return [span.name for span in sorted(found, key=lambda span: span.start_time)]


def server_span(spans, name: str):
    [span] = [span for span in spans if span.name == name and span.kind is SpanKind.SERVER]
    return span


def every_value(span) -> list[str]:
    values = [span.name, span.status.description or ""]
    for attributes in [span.attributes, *(event.attributes for event in span.events)]:
        for value in (attributes or {}).values():
            values += [str(item) for item in (value if isinstance(value, tuple) else [value])]
    return values


def test_a_start_and_a_check_are_one_span_each_with_their_scripts_and_gateway_calls(
        traced, simulator):
    app, memory = traced
    http = app.test_client()
    assert start(http, CLIENT, "079 123 45 67").status_code == 201  # national spelling
    code = last_code(simulator, PHONE)
    assert check(http, CLIENT, code, phone="+41 79 123 45 67").get_json()["valid"] is True
    lookup = http.get("/admin/verifications", query_string={"phone": "0041791234567"},
                      headers=ADMIN)
    assert lookup.status_code == 200
    spans = finished(app, memory)

    started = server_span(spans, "POST /otp/start")
    assert started.parent is None
    assert children(spans, started) == ["redis reserve_send", "redis count_limits", "POST"]
    checked = server_span(spans, "POST /otp/check")
    assert children(spans, checked) == ["redis claim_attempt", "POST", "redis settle_check"]
    gateway = [span for span in spans if span.kind is SpanKind.CLIENT and span.name == "POST"]
    assert {span.attributes["http.url"].rsplit("/", 1)[1] for span in gateway} == {
        "SendTokenSMS", "VerifyToken"}
    assert all(span.context.trace_id == started.context.trace_id
               for span in spans if span.parent and span.parent.span_id == started.context.span_id)
    looked_up = server_span(spans, "GET /admin/verifications")
    assert looked_up.attributes["http.target"] == "/admin/verifications"  # no query
    assert "url.query" not in looked_up.attributes

    secrets = [code, CLIENT_KEY, ADMIN_KEY, SIM_USER, SIM_PASSWORD,
               "test-secret-0123456789abcdef"]
    for span in spans:
        for value in every_value(span):
            assert DIGITS not in re.sub(r"\D", "", value), (span.name, value)
            assert not any(secret in value for secret in secrets), (span.name, value)


def test_a_check_naming_its_end_user_is_traced_too(traced, simulator):
    # its end-user count is pipelined with the read (EVALSHA by the script's sha): a traced
    # script without the sha made every such check a 500
    app, memory = traced
    http = app.test_client()
    user = {"end_user_ip": "203.0.113.7", "end_user_id": "user-17"}
    started = start(http, CLIENT, PHONE, **user)
    assert started.status_code == 201
    code = last_code(simulator, PHONE)
    checked = check(http, CLIENT, code, id=started.get_json()["id"], **user)
    assert checked.status_code == 200 and checked.get_json()["valid"] is True
    spans = finished(app, memory)
    assert "redis claim_attempt" in children(spans, server_span(spans, "POST /otp/check"))
    assert not any("203.0.113.7" in value or "user-17" in value
                   for span in spans for value in every_value(span))


def test_a_script_that_fails_is_an_error_span_naming_only_the_error_s_type(traced):
    app, memory = traced
    store = app.extensions["otp"].store
    with pytest.raises(Exception, match="unknown delivery status"):
        store._scripts["record_delivery"](keys=["otp:{0000}:v:x", "otp:{0000}:tl:x"],
                                          args=[1, "bogus", "", "", ""])
    [span] = [span for span in finished(app, memory) if span.name == "redis record_delivery"]
    assert span.status.description == "ResponseError" and span.parent is None


@pytest.mark.parametrize("env, on", [
    ({}, False),
    ({"OTEL_SERVICE_NAME": "verify"}, False),
    ({"OTEL_TRACES_EXPORTER": "none"}, False),
    ({"OTEL_TRACES_EXPORTER": "console"}, True),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
    ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "true"},
     False),
    ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "TRUE"}, False),
])
def test_traces_are_on_only_when_the_standard_variables_ask_for_them(env, on):
    assert tracing.wanted(env) is on


def test_without_the_variables_nothing_is_traced_and_the_scripts_are_the_plain_ones(make_app):
    app = make_app()
    assert "otel" not in app.extensions
    script = app.extensions["otp"].store._scripts["reserve_send"]
    assert type(script).__name__ == "Script"


def test_the_exporters_are_the_ones_named_and_an_unknown_one_stops_start_up(make_app):
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter

    found = tracing.exporters({"OTEL_TRACES_EXPORTER": "otlp,console"})
    assert [type(exporter) for exporter in found] == [OTLPSpanExporter, ConsoleSpanExporter]
    assert [type(e) for e in tracing.exporters({})] == [OTLPSpanExporter]
    with pytest.raises(ConfigError, match="no span exporter 'zipkin' is installed"):
        make_app(OTEL_TRACES_EXPORTER="zipkin")



SIDS = re.compile(r"\b(?:AC|VA|VE|VL)[0-9a-f]{32}\b")  # their hex may hold any digits


def test_the_twilio_routes_carry_no_number_code_or_key_in_any_span(traced, simulator):
    """Review 19: /v2 takes the number in a form body and, for a fetch, in the path (any
    spelling); Basic credentials carry a key. None of it reaches an exporter."""
    from service.verification.tenant import DEFAULT, twilio_account_sid, twilio_service_sid

    app, memory = traced
    http = app.test_client()
    secret = b"test-secret-0123456789abcdef"  # service_env's OTP_SECRET
    base = f"/v2/Services/{twilio_service_sid(secret, DEFAULT)}"
    basic = base64.b64encode(f"{twilio_account_sid(secret)}:{CLIENT_KEY}".encode()).decode()
    auth = {"Authorization": f"Basic {basic}"}
    created = http.post(f"{base}/Verifications", data={"To": "079 123 45 67", "Channel": "sms"},
                        headers=auth)
    assert created.status_code == 201
    for spelling in ("%2B41791234567", "%2B41%2079%20123%2045%2067", "0041791234567"):
        assert http.get(f"{base}/Verifications/{spelling}", headers=auth).status_code == 200
    code = last_code(simulator, PHONE)
    checked = http.post(f"{base}/VerificationCheck", data={"To": PHONE, "Code": code},
                        headers=auth)
    assert checked.get_json()["status"] == "approved"
    spans = finished(app, memory)
    created_span = server_span(spans, "POST /v2/Services/<service_sid>/Verifications")
    assert children(spans, created_span)[-1] == "POST"  # its gateway call, traced

    secrets = [code, CLIENT_KEY, basic, secret.decode()]
    for span in spans:
        for value in every_value(span):
            assert DIGITS not in re.sub(r"\D", "", SIDS.sub("", value)), (span.name, value)
            assert not any(secret in value for secret in secrets), (span.name, value)
