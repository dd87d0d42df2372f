"""Abuse protection against a real redis-server, with the app under gunicorn (2 workers)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from service.verification import keys
from tests.conftest import CLIENT_KEY, OTHER_KEY, last_code, service_env
from tests.helpers import RedisServer, check, gunicorn, start

pytestmark = pytest.mark.slow
AUTH = {"Authorization": f"Bearer {CLIENT_KEY}"}
OTHER = {"Authorization": f"Bearer {OTHER_KEY}"}
ROOMY = {"OTP_RESEND_COOLDOWN": "0", "OTP_MAX_SENDS": "10"}


def sms_count(simulator) -> int:
    return len(requests.get(simulator.url + "/_sim/messages", timeout=5).json())


def test_exactly_the_configured_number_of_starts_pass_for_50_concurrent_requests(
        redis_server, redis_db, simulator):
    env = service_env(redis_server.url, simulator.url, OTP_LIMIT_START_PER_PHONE="3 per hour",
                      **ROOMY)
    with gunicorn(env) as base, ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(lambda _: start(base, AUTH, "+41791112201"), range(50)))
    assert sum(a.status_code in (200, 201) for a in answers) == 3
    refused = [a for a in answers if a.status_code == 429]
    assert len(refused) == 47 and all(int(a.headers["Retry-After"]) > 0 for a in refused)
    assert {a.json()["code"] for a in refused} == {"rate_limited"}
    assert sms_count(simulator) == 3


def test_limits_hold_across_two_service_processes_sharing_one_redis(
        redis_server, redis_db, simulator):
    env = service_env(redis_server.url, simulator.url, OTP_LIMIT_START_PER_PHONE="4 per hour",
                      **ROOMY)
    with gunicorn(env, workers=1) as first, gunicorn(env, workers=1) as second:
        answers = [start(base, AUTH, "+41791112202") for base in (first, second) * 5]
    assert [a.status_code for a in answers].count(429) == 6
    assert sms_count(simulator) == 4


def test_a_forged_forwarded_for_header_cannot_dodge_the_per_ip_limit(
        redis_server, redis_db, simulator):
    env = service_env(redis_server.url, simulator.url, OTP_LIMIT_START_PER_IP="2 per hour")
    with gunicorn(env) as base:
        answers = [start(base, AUTH, f"+4179111230{i}", {"X-Forwarded-For": f"203.0.113.{i}"})
                   for i in range(4)]
    assert [a.status_code for a in answers] == [201, 201, 429, 429]


def test_a_trusted_proxy_hop_makes_the_forwarded_address_count(
        redis_server, redis_db, simulator):
    env = service_env(redis_server.url, simulator.url, OTP_LIMIT_START_PER_IP="1 per hour",
                      OTP_TRUSTED_PROXIES="1")
    with gunicorn(env) as base:
        answers = [start(base, AUTH, f"+4179111240{i}", {"X-Forwarded-For": f"203.0.113.{i}"})
                   for i in range(3)]
        repeat = start(base, AUTH, "+41791112409", {"X-Forwarded-For": "203.0.113.0"})
    assert [a.status_code for a in answers] == [201, 201, 201]
    assert repeat.status_code == 429


def _wrong(code: str) -> str:
    return "".join(str((int(c) + 1) % 10) for c in code)


def test_the_phone_lockout_survives_new_codes_answers_identically_and_resets_on_success(
        redis_server, redis_db, simulator):
    phone = "+41791112501"
    env = service_env(redis_server.url, simulator.url, OTP_MAX_FAILURES_PER_PHONE="3",
                      OTP_MAX_ATTEMPTS="2", **ROOMY)
    with gunicorn(env) as base:
        first = start(base, AUTH, phone).json()["id"]
        bad = _wrong(last_code(simulator, phone))
        assert check(base, AUTH, bad, id=first).json()["valid"] is False
        assert check(base, AUTH, bad, id=first).json()["status"] == "max_attempts_reached"
        second = start(base, AUTH, phone).json()["id"]  # a new code does not reset the count
        code = last_code(simulator, phone)
        assert check(base, AUTH, _wrong(code), id=second).json()["valid"] is False  # third: locks
        right = check(base, AUTH, code, id=second)
        wrong = check(base, AUTH, _wrong(code), id=second)
        assert right.status_code == wrong.status_code == 429
        assert right.json() == wrong.json() and right.json()["reason"] == "phone_locked"
        status = requests.get(f"{base}/otp/verifications/{second}", headers=AUTH, timeout=5)
        assert status.json()["attempts_remaining"] == 1  # nothing counted while locked
        # the wait is over (as an admin would)
        redis_db.delete(*redis_db.keys(keys.failure_key("*")))
        assert check(base, AUTH, code, id=second).json()["valid"] is True
        third = start(base, AUTH, phone).json()["id"]
        code = last_code(simulator, phone)
        for _ in range(2):  # after a success the count starts again from zero
            assert check(base, AUTH, _wrong(code), id=third).status_code == 200


def test_a_pumping_run_on_one_prefix_trips_the_breaker_before_the_budget_is_spent(
        redis_server, redis_db, simulator):
    env = service_env(redis_server.url, simulator.url, OTP_TRUSTED_PROXIES="1",
                      OTP_BUDGET_PER_PREFIX="10 per hour", OTP_BUDGET_GLOBAL="1000 per hour",
                      OTP_LIMIT_START_PER_IP="1000 per hour")
    with gunicorn(env) as base:
        answers = [start(base, AUTH, f"+417911130{i:02d}", {"X-Forwarded-For": f"198.51.100.{i}"})
                   for i in range(60)]
        other_prefix = start(base, AUTH, "+41781113000")
    codes = [a.status_code for a in answers]
    assert codes[:10] == [201] * 10 and set(codes[10:]) == {429}
    assert {a.json()["reason"] for a in answers[10:]} == {"prefix_budget"}
    assert sms_count(simulator) == 11  # ten to the pumped prefix, one elsewhere
    assert other_prefix.status_code == 201


def test_the_kill_switch_answers_503_without_calling_the_gateway(
        redis_server, redis_db, simulator):
    from service import create_app

    app = create_app(service_env(redis_server.url, simulator.url, OTP_SMS_ENABLED="false"))
    response = app.test_client().post("/otp/start", json={"phone": "+41791112601"},
                                      headers=AUTH)
    assert response.status_code == 503 and response.get_json()["code"] == "sms_disabled"
    assert sms_count(simulator) == 0


def test_redis_going_away_fails_closed_and_the_service_recovers_by_itself(simulator):
    redis = RedisServer().start()
    env = service_env(redis.url, simulator.url, REDIS_TIMEOUT="0.5")
    try:
        with gunicorn(env) as base:
            assert start(base, AUTH, "+41791112701").status_code == 201
            redis.stop()
            began = time.monotonic()
            refused = start(base, AUTH, "+41791112702")
            assert refused.status_code == 503
            assert refused.json()["code"] == "store_unavailable"
            assert time.monotonic() - began < 3
            assert requests.get(base + "/readyz", timeout=5).status_code == 503
            assert requests.get(base + "/healthz", timeout=5).status_code == 200
            assert sms_count(simulator) == 1
            redis.start()
            assert start(base, AUTH, "+41791112703").status_code == 201
            assert requests.get(base + "/readyz", timeout=5).status_code == 200
    finally:
        redis.stop()


def test_refusals_carry_retry_after_and_the_rate_limit_headers_and_successes_do_not(
        make_app, auth):
    http = make_app(OTP_LIMIT_START_PER_IP="1 per hour").test_client()
    passed = http.post("/otp/start", json={"phone": "+41791112801"}, headers=auth)
    refused = http.post("/otp/start", json={"phone": "+41791112802"}, headers=auth)
    assert passed.status_code == 201 and "Retry-After" not in passed.headers
    assert refused.status_code == 429 and refused.get_json()["reason"] == "start_per_ip"
    assert 3500 <= int(refused.headers["Retry-After"]) <= 3601
    assert refused.headers["X-RateLimit-Limit"] == "1"
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert int(refused.headers["X-RateLimit-Reset"]) > 0


def test_phone_limit_refusals_name_the_limit_in_their_headers(make_app, auth):
    http = make_app(OTP_LIMIT_START_PER_PHONE="1 per hour", **ROOMY).test_client()
    http.post("/otp/start", json={"phone": "+41791112901"}, headers=auth)
    refused = http.post("/otp/start", json={"phone": "+41791112901"}, headers=auth)
    assert refused.status_code == 429 and refused.get_json()["reason"] == "start_per_phone"
    assert refused.headers["X-RateLimit-Limit"] == "1"
    assert int(refused.headers["Retry-After"]) > 3000
