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


ROOMY_BUDGETS = {"OTP_BUDGET_PER_PREFIX": "1000 per hour", "OTP_BUDGET_PER_COUNTRY":
                 "1000 per hour", "OTP_BUDGET_GLOBAL": "1000 per hour"}


def test_the_calling_backend_is_never_counted_as_an_end_user(
        redis_server, redis_db, simulator):
    # issue 17: one login backend calls for all its users; the 101st start of the hour, on
    # behalf of the 101st end user, is served (the per-IP limit used to count the backend)
    env = service_env(redis_server.url, simulator.url, OTP_LIMIT_START_PER_IP="100 per hour",
                      **ROOMY_BUDGETS)
    with (gunicorn(env, workers=1) as first, gunicorn(env, workers=1) as second,
          ThreadPoolExecutor(max_workers=8) as pool):
        answers = list(pool.map(
            lambda i: start((first, second)[i % 2], AUTH, f"+41791{i:06d}",
                            end_user_ip=f"198.51.{i // 200}.{i % 200}"), range(101)))
        without = start(first, AUTH, "+41791200000")  # an end user the caller does not name
    assert [a.status_code for a in answers] == [201] * 101
    assert without.status_code == 201 and sms_count(simulator) == 102


def test_starts_for_one_end_user_ip_are_cut_at_its_limit_across_processes_and_phones(
        redis_server, redis_db, simulator):
    env = service_env(redis_server.url, simulator.url, OTP_LIMIT_START_PER_IP="10 per hour",
                      OTP_TRUSTED_PROXIES="1", **ROOMY_BUDGETS)
    with gunicorn(env, workers=1) as first, gunicorn(env, workers=1) as second:
        # a forwarded address for each request changes nothing: only end_user_ip counts
        answers = [start((first, second)[i % 2], AUTH, f"+417911124{i:02d}",
                         {"X-Forwarded-For": f"203.0.113.{i}"}, end_user_ip="192.0.2.7")
                   for i in range(11)]
        elsewhere = start(second, AUTH, "+41791112499", end_user_ip="192.0.2.8")
    assert [a.status_code for a in answers] == [201] * 10 + [429]
    refused = answers[10].json()
    assert refused["reason"] == "start_per_end_user_ip" and refused["retry_after"] > 3000
    assert answers[10].headers["X-RateLimit-Limit"] == "10"
    assert elsewhere.status_code == 201 and sms_count(simulator) == 11


def test_an_ipv6_end_user_counts_as_its_64_network(make_app, auth):
    http = make_app(OTP_LIMIT_START_PER_IP="2 per hour").test_client()
    answers = [start(http, auth, f"+4179111241{i}", end_user_ip=ip) for i, ip in enumerate(
        ["2001:db8:1:2::1", "2001:0db8:0001:0002:ffff::9", "2001:db8:1:2:3:4:5:6",
         "2001:db8:1:3::1", "::ffff:192.0.2.1", "192.0.2.1"])]
    assert [a.status_code for a in answers] == [201, 201, 429, 201, 201, 201]


def test_checks_for_one_end_user_ip_are_cut_at_their_limit_whatever_they_check(
        make_app, auth, simulator):
    http = make_app(OTP_LIMIT_CHECK_PER_IP="3 per hour", OTP_MAX_ATTEMPTS="5").test_client()
    vid = start(http, auth, "+41791112420").get_json()["id"]
    code = last_code(simulator, "+41791112420")
    answers = [check(http, auth, _wrong(code), id=vid, end_user_ip="192.0.2.9"),
               check(http, auth, "000000", id="vf_0000AAAAAAAAAAAAAAAAAAAAAA",
                     end_user_ip="192.0.2.9"),  # an unknown id counts too: guessing
               check(http, auth, _wrong(code), phone="+41791112420", end_user_ip="192.0.2.9"),
               check(http, auth, code, id=vid, end_user_ip="192.0.2.9")]
    assert [a.status_code for a in answers] == [200, 404, 200, 429]
    assert answers[3].get_json()["reason"] == "check_per_end_user_ip"
    # another end user (or none named) checks the same verification
    assert check(http, auth, code, id=vid, end_user_ip="192.0.2.10").get_json()["valid"]


def test_starts_for_one_end_user_id_are_cut_at_their_limit(make_app, auth, redis_db):
    http = make_app(**ROOMY).test_client()
    answers = [start(http, auth, f"+417911124{30 + i}", end_user_id="account-7") for i in range(11)]
    assert [a.status_code for a in answers] == [201] * 10 + [429]  # 10 per hour by default
    assert answers[10].get_json()["reason"] == "start_per_end_user"
    # kept only as an HMAC: not in any key or value
    dump = [key for key in redis_db.scan_iter("*")] + [
        value for key in redis_db.scan_iter("otp:*:v:*") for value in redis_db.hvals(key)]
    assert not any("account-7" in item for item in dump)


@pytest.mark.parametrize(("field", "value"), [
    ("end_user_ip", "192.0.2.300"), ("end_user_ip", "not an address"), ("end_user_ip", 7),
    ("end_user_ip", "2001:db8::1::2"), ("end_user_ip", " 192.0.2.1"),
    ("end_user_ip", "fe80::1%eth0"), ("end_user_id", ""), ("end_user_id", "x" * 129)])
@pytest.mark.parametrize("route", ["start", "check"])
def test_a_bad_end_user_field_is_a_422_naming_it(make_app, auth, field, value, route):
    http = make_app().test_client()
    body = {"phone": "+41791112440", field: value}
    answer = http.post(f"/otp/{route}", json={**body, **({"code": "123456"}
                                                          if route == "check" else {})},
                       headers=auth)
    assert answer.status_code == 422 and field in answer.get_json()["errors"]


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
    env = service_env(redis_server.url, simulator.url,
                      OTP_BUDGET_PER_PREFIX="10 per hour", OTP_BUDGET_GLOBAL="1000 per hour")
    with gunicorn(env) as base:
        answers = [start(base, AUTH, f"+417911130{i:02d}", end_user_ip=f"198.51.100.{i}")
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


@pytest.mark.parametrize(("setting", "reason", "end_user"), [
    ("OTP_LIMIT_PER_CLIENT", "per_client", {}),  # Flask-Limiter's
    ("OTP_LIMIT_START_PER_IP", "start_per_end_user_ip", {"end_user_ip": "192.0.2.1"}),
])
def test_refusals_carry_retry_after_and_the_rate_limit_headers_and_successes_do_not(
        make_app, auth, setting, reason, end_user):
    http = make_app(**{setting: "1 per hour"}).test_client()
    passed = http.post("/otp/start", json={"phone": "+41791112801", **end_user}, headers=auth)
    refused = http.post("/otp/start", json={"phone": "+41791112802", **end_user},
                        headers=auth)
    assert passed.status_code == 201 and "Retry-After" not in passed.headers
    assert refused.status_code == 429 and refused.get_json()["reason"] == reason
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
