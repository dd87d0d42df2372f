"""Review F9: a send the gateway surely did not carry out (a refused connection, or a status
saying it did nothing: out of credits, credentials, temporarily unavailable) is taken back
from the phone's and the end user's limits and from the budgets, as it is from the
verification; a send whose outcome is unknown (a timeout, an HTTP 5xx) keeps its counts.
App in process, real redis-server, the simulator over HTTP with its faults."""

from __future__ import annotations

import threading

import pytest
import redis

from service.verification.budgets import BREAKER_TAG
from tests.helpers import free_port, sim, start
from tests.test_budgets import PHONES, limits

PHONE = "+41782700001"
TWICE = "2 per hour"
NO_CREDITS = {"status_code": "5", "endpoints": ["SendTokenSMS"]}


def fail_sends(simulator, fault: dict) -> None:
    sim(simulator, "POST", "/_sim/faults", json=fault)


def clear_faults(simulator) -> None:
    sim(simulator, "DELETE", "/_sim/faults")


def reason(response) -> str:
    return response.get_json().get("reason", response.get_json()["code"])


def windows(redis_db) -> dict[str, list[str]]:
    """Every moving window of a send's limits and budgets, with its entries."""
    return {key: redis_db.lrange(key, 0, -1)
            for key in redis_db.scan_iter(f"otp:{BREAKER_TAG}:w:*")}


@pytest.mark.parametrize(("settings", "fields"), [
    ({"OTP_LIMIT_START_PER_PHONE": TWICE}, {}),
    ({"OTP_LIMIT_START_PER_IP": TWICE}, {"end_user_ip": "192.0.2.9"}),
    ({"OTP_BUDGET_PER_PREFIX": TWICE}, {}),
], ids=["start_per_phone", "start_per_end_user_ip", "prefix_budget"])
def test_sends_refused_for_want_of_credits_spend_no_limit_and_no_budget(
        make_app, auth, simulator, redis_db, settings, fields):
    http = make_app(**settings).test_client()
    fail_sends(simulator, NO_CREDITS)
    for _ in range(3):  # one more than the limit holds
        failed = start(http, auth, PHONE, **fields)
        assert failed.status_code == 503, failed.get_json()
        assert failed.get_json()["code"] == "upstream_insufficient_credits"
    assert all(not entries for entries in windows(redis_db).values())
    assert not list(redis_db.scan_iter(f"otp:{BREAKER_TAG}:prefix:*"))  # no breaker tripped

    clear_faults(simulator)  # the account is topped up
    served = start(http, auth, PHONE, **fields)
    assert served.status_code == 201, served.get_json()  # was 429 (limit or budget spent)


def test_an_end_user_ids_limit_and_the_services_other_budgets_are_taken_back_too(
        make_app, auth, simulator, redis_db):
    http = make_app(OTP_LIMIT_START_PER_PHONE=TWICE, OTP_BUDGET_PER_COUNTRY=TWICE,
                    OTP_BUDGET_GLOBAL=TWICE).test_client()
    end_user = {"end_user_id": "user-1", "end_user_ip": "2001:db8::7"}
    served = start(http, auth, "+41782700002", **end_user)  # one count that stays
    assert served.status_code == 201
    counted = windows(redis_db)
    assert len(counted) >= 5 and all(len(entries) == 1 for entries in counted.values())

    for status in ("3", "8", "9", "25", "2", "24"):  # credentials, back end down
        fail_sends(simulator, {"status_code": status, "endpoints": ["SendTokenSMS"]})
        assert start(http, auth, PHONE, **end_user).status_code in (502, 503)
    assert windows(redis_db) == counted  # exactly the failed sends' entries are gone
    clear_faults(simulator)
    assert start(http, auth, PHONE, **end_user).status_code == 201


def test_a_refused_connection_counts_nothing(make_app, auth, simulator, redis_db):
    settings = {"OTP_LIMIT_START_PER_PHONE": TWICE, "OTP_LIMIT_START_PER_IP": TWICE}
    closed = make_app(ASPSMS_URL=f"http://127.0.0.1:{free_port()}", **settings).test_client()
    for _ in range(3):
        failed = start(closed, auth, PHONE, end_user_ip="192.0.2.10")
        assert failed.status_code == 503
        assert failed.get_json()["code"] == "upstream_unavailable"
    # another instance on the same Redis, whose gateway answers
    served = start(make_app(**settings).test_client(), auth, PHONE, end_user_ip="192.0.2.10")
    assert served.status_code == 201, served.get_json()


@pytest.mark.parametrize(("fault", "status", "code"), [
    ({"delay": 1.0}, 504, "upstream_timeout"),
    ({"http_status": 503}, 502, "upstream_error"),
], ids=["timeout", "http_503"])
def test_a_send_whose_outcome_is_unknown_keeps_its_counts(
        make_app, auth, simulator, redis_db, fault, status, code):
    # SECURITY: the gateway may have texted the code and been charged
    http = make_app(ASPSMS_TIMEOUT="0.5", OTP_RESEND_COOLDOWN="0",
                    OTP_LIMIT_START_PER_PHONE=TWICE,
                    OTP_LIMIT_START_PER_IP=TWICE).test_client()
    fail_sends(simulator, {**fault, "endpoints": ["SendTokenSMS"]})
    for _ in range(2):
        failed = start(http, auth, PHONE, end_user_ip="192.0.2.11")
        assert failed.status_code == status and failed.get_json()["code"] == code
    clear_faults(simulator)
    refused = start(http, auth, PHONE, end_user_ip="192.0.2.11")
    assert refused.status_code == 429 and reason(refused) == "start_per_phone"
    other_phone = start(http, auth, "+41782700003", end_user_ip="192.0.2.11")
    assert other_phone.status_code == 429 and reason(other_phone) == "start_per_end_user_ip"


def test_an_undo_the_store_refuses_leaves_the_counts_and_the_gateways_answer(
        make_app, auth, simulator, redis_db, monkeypatch):
    app = make_app(OTP_LIMIT_START_PER_PHONE="1 per hour")
    pool = app.extensions["otp"].store.redis.connection_pool
    get_connection, down = pool.get_connection, threading.Event()

    def connection(*args, **kwargs):
        if down.is_set():
            raise redis.exceptions.ConnectionError("injected: the store is gone")
        return get_connection(*args, **kwargs)

    gateway = app.extensions["otp"].verifications.gateway
    send = gateway.send_token_sms

    def send_then_lose_the_store(*args, **kwargs):
        try:
            return send(*args, **kwargs)
        finally:
            down.set()

    monkeypatch.setattr(pool, "get_connection", connection)
    monkeypatch.setattr(gateway, "send_token_sms", send_then_lose_the_store)
    fail_sends(simulator, NO_CREDITS)
    failed = start(app.test_client(), auth, PHONE)
    assert failed.status_code == 503  # the gateway's answer, not store_unavailable
    assert failed.get_json()["code"] == "upstream_insufficient_credits"
    monkeypatch.undo()  # the store is back; the count stayed (the safe side)
    clear_faults(simulator)
    refused = start(app.test_client(), auth, PHONE)
    assert refused.status_code == 429 and reason(refused) == "start_per_phone"


def test_a_take_back_removes_its_own_entry_and_no_other_sends(redis_db):
    now = [1_000_000.0]
    budgets = limits(redis_db, clock=lambda: now[0], start_per_phone="3 per hour",
                     budget_per_prefix="3 per hour")
    tenant, phone = budgets.tenant, PHONES.parse(PHONE)
    first = budgets.count_send(tenant, phone, "ph-1")
    now[0] += 1
    failed = budgets.count_send(tenant, phone, "ph-1")
    now[0] += 1
    budgets.count_send(tenant, phone, "ph-1")  # a later send, counted meanwhile
    budgets.take_back(failed)
    assert entries(redis_db) == {("1000002000", "1000000000")}
    budgets.take_back(failed)  # a second undo finds nothing of its own
    assert entries(redis_db) == {("1000002000", "1000000000")}
    budgets.take_back(first)
    assert entries(redis_db) == {("1000002000",)}


def entries(redis_db) -> set[tuple[str, ...]]:
    """The distinct contents of the windows (phone, prefix, country, global: all alike)."""
    counted = windows(redis_db)
    assert len(counted) == 4
    return {tuple(values) for values in counted.values()}
