"""The verification flow end to end: app in process, real Redis, simulator over HTTP."""

from __future__ import annotations

import json

import pytest
import requests

from service.verification import keys
from service.verification.idempotency import Answered, Refused
from service.verification.phones import PhonePolicy
from tests.conftest import last_code
from tests.helpers import check, start

PHONE = "+41791234567"


def wrong(code: str) -> str:
    return "".join(str((int(c) + 1) % 10) for c in code)


def fault(simulator, **spec):
    requests.post(simulator.url + "/_sim/faults", json=spec, timeout=5).raise_for_status()


def test_start_sends_one_token_sms_and_returns_a_pending_verification(http, auth, simulator):
    response = start(http, auth, reference="signup-42")
    assert response.status_code == 201
    body = response.get_json()
    assert body["status"] == "pending" and body["phone"] == PHONE and body["channel"] == "sms"
    assert body["id"].startswith("vf_") and len(body["id"]) >= 25
    assert body["attempts_remaining"] == 5 and body["send_count"] == 1
    assert body["reference"] == "signup-42" and body["delivery_status"] == "submitted"
    assert body["created_at"].endswith("Z") and body["expires_at"] > body["created_at"]
    code = last_code(simulator, PHONE)
    assert len(code) == 6 and code.isdigit()


def test_the_right_code_approves_once_and_then_the_verification_is_closed(http, auth, simulator):
    vid = start(http, auth).get_json()["id"]
    code = last_code(simulator, PHONE)
    first = check(http, auth, code, id=vid)
    assert first.status_code == 200
    assert first.get_json()["valid"] is True and first.get_json()["status"] == "approved"
    again = check(http, auth, code, id=vid)
    assert again.status_code == 409
    assert again.get_json()["code"] == "verification_closed"
    assert again.get_json()["verification_status"] == "approved"


def test_a_wrong_code_spends_one_attempt_and_the_last_one_ends_the_verification(
        http, auth, simulator):
    vid = start(http, auth).get_json()["id"]
    bad = wrong(last_code(simulator, PHONE))
    for left in (4, 3, 2, 1):
        body = check(http, auth, bad, id=vid).get_json()
        assert body["valid"] is False and body["attempts_remaining"] == left
    last = check(http, auth, bad, id=vid).get_json()
    assert last["attempts_remaining"] == 0 and last["status"] == "max_attempts_reached"
    right = check(http, auth, last_code(simulator, PHONE), id=vid)
    assert right.status_code == 409
    assert right.get_json()["verification_status"] == "max_attempts_reached"


def test_a_second_start_within_the_cooldown_is_refused_with_retry_after(http, auth, simulator):
    start(http, auth)
    response = start(http, auth, phone="0041 79 123 45 67")
    assert response.status_code == 429
    assert response.get_json()["code"] == "rate_limited"
    assert 1 <= int(response.headers["Retry-After"]) <= 30


def test_a_resend_after_the_cooldown_uses_the_same_verification(make_app, auth, simulator):
    http = make_app(OTP_RESEND_COOLDOWN="0").test_client()
    first = start(http, auth).get_json()
    second = start(http, auth)
    assert second.status_code == 200
    assert second.get_json()["id"] == first["id"] and second.get_json()["send_count"] == 2
    code = last_code(simulator, PHONE)
    assert check(http, auth, code, id=first["id"]).get_json()["valid"] is True


def test_sends_beyond_the_maximum_are_refused(make_app, auth, simulator):
    http = make_app(OTP_RESEND_COOLDOWN="0", OTP_MAX_SENDS="2").test_client()
    assert start(http, auth).status_code == 201
    assert start(http, auth).status_code == 200
    refused = start(http, auth)
    assert refused.status_code == 429 and refused.get_json()["reason"] == "max_sends"


def test_another_clients_verification_answers_404(http, auth, other_auth, simulator):
    vid = start(http, auth).get_json()["id"]
    assert http.get(f"/otp/verifications/{vid}", headers=other_auth).status_code == 404
    code = last_code(simulator, PHONE)
    response = check(http, other_auth, code, id=vid)
    assert response.status_code == 404
    assert response.get_json()["code"] == "verification_not_found"
    assert check(http, other_auth, code).status_code == 404


def test_cancel_ends_a_pending_verification_and_masks_the_phone(http, auth, simulator):
    vid = start(http, auth).get_json()["id"]
    canceled = http.post(f"/otp/verifications/{vid}/cancel", headers=auth)
    assert canceled.status_code == 200 and canceled.get_json()["status"] == "canceled"
    status = http.get(f"/otp/verifications/{vid}", headers=auth).get_json()
    assert status["status"] == "canceled" and status["phone"] != PHONE and "*" in status["phone"]
    assert check(http, auth, "123456", id=vid).get_json()["verification_status"] == "canceled"


def test_a_code_that_cannot_match_the_mask_is_refused_without_spending_an_attempt(
        http, auth, simulator):
    vid = start(http, auth).get_json()["id"]
    for typed in ("12345", "1234567", "12a456"):
        response = check(http, auth, typed, id=vid)
        assert response.status_code == 422 and response.get_json()["code"] == "invalid_code"
    assert http.get(f"/otp/verifications/{vid}", headers=auth).get_json()[
        "attempts_remaining"] == 5
    calls = requests.get(simulator.url + "/_sim/stats", timeout=5).json()["calls"]
    assert calls.get("VerifyToken", 0) == 0


def test_an_idempotent_start_replays_the_first_answer_and_sends_once(http, auth, simulator):
    headers = {**auth, "Idempotency-Key": "abc-123"}
    first = http.post("/otp/start", json={"phone": PHONE}, headers=headers)
    second = http.post("/otp/start", json={"phone": PHONE}, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.get_json()["id"] == second.get_json()["id"]
    assert second.headers["Idempotent-Replayed"] == "true"
    messages = requests.get(simulator.url + "/_sim/messages", timeout=5).json()
    assert len(messages) == 1


def test_an_idempotency_key_reused_with_another_body_is_refused(http, auth, simulator):
    headers = {**auth, "Idempotency-Key": "abc-124"}
    http.post("/otp/start", json={"phone": PHONE}, headers=headers)
    other = http.post("/otp/start", json={"phone": "+41791234568"}, headers=headers)
    assert other.status_code == 422 and other.get_json()["code"] == "idempotency_key_reused"


def test_an_idempotent_check_does_not_spend_a_second_attempt(http, auth, simulator):
    vid = start(http, auth).get_json()["id"]
    headers = {**auth, "Idempotency-Key": "chk-1"}
    body = {"id": vid, "code": wrong(last_code(simulator, PHONE))}
    first = http.post("/otp/check", json=body, headers=headers).get_json()
    second = http.post("/otp/check", json=body, headers=headers).get_json()
    assert first["attempts_remaining"] == second["attempts_remaining"] == 4


@pytest.mark.parametrize(("spec", "status", "code"), [
    ({"http_status": 503}, 502, "upstream_error"),
    ({"non_json": True}, 502, "upstream_error"),
    ({"status_code": "3"}, 502, "upstream_auth_failed"),
    ({"status_code": "24"}, 503, "upstream_unavailable"),
    ({"status_code": "5"}, 503, "upstream_insufficient_credits"),
    ({"status_code": "11"}, 502, "upstream_rejected"),
])
def test_gateway_failures_on_send_leave_no_pending_verification(
        http, auth, simulator, redis_db, spec, status, code):
    fault(simulator, endpoints=["SendTokenSMS"], **spec)
    response = start(http, auth)
    assert response.status_code == status
    assert response.get_json()["code"] == code
    assert not [*redis_db.scan_iter(keys.ANY_VERIFICATION),
                *redis_db.scan_iter(keys.pointer_key("*", "*"))]
    requests.delete(simulator.url + "/_sim/faults", timeout=5)
    assert start(http, auth).status_code == 201  # no cooldown was spent


def test_a_refused_connection_to_the_gateway_answers_503(make_app, auth):
    http = make_app(ASPSMS_URL="http://127.0.0.1:9").test_client()
    response = start(http, auth)
    assert response.status_code == 503 and response.get_json()["code"] == "upstream_unavailable"


def test_a_check_that_cannot_reach_the_gateway_spends_no_attempt(http, make_app, auth):
    # only a refused connection surely never reached the gateway (tests/test_unknown_outcomes
    # for every other failure)
    vid = start(http, auth).get_json()["id"]
    unreachable = make_app(ASPSMS_URL="http://127.0.0.1:9").test_client()
    response = check(unreachable, auth, "123456", id=vid)
    assert response.status_code == 503 and response.get_json()["code"] == "upstream_unavailable"
    after = http.get(f"/otp/verifications/{vid}", headers=auth).get_json()
    assert after["attempts_remaining"] == 5 and after["status"] == "pending"


def test_test_numbers_use_their_fixed_code_and_send_nothing(make_app, auth, simulator):
    http = make_app(OTP_TEST_NUMBERS="+41790000000=246810@2099-12-31").test_client()
    vid = start(http, auth, phone="+41790000000").get_json()["id"]
    assert requests.get(simulator.url + "/_sim/messages", timeout=5).json() == []
    assert check(http, auth, "111111", id=vid).get_json()["valid"] is False
    assert check(http, auth, "246810", id=vid).get_json()["valid"] is True


def test_no_code_and_no_phone_of_an_ended_verification_stays_in_redis(
        http, auth, simulator, redis_db):
    vid = start(http, auth).get_json()["id"]
    code = last_code(simulator, PHONE)
    check(http, auth, code, id=vid)
    dump = []
    for key in redis_db.scan_iter("*"):
        assert redis_db.ttl(key) > 0, key
        dump.append(f"{key}={_value(redis_db, key)}")
    text = "\n".join(dump)
    assert PHONE not in text and PHONE[1:] not in text and code not in text


def _value(redis_db, key):
    kind = redis_db.type(key)
    readers = {"hash": redis_db.hgetall, "string": redis_db.get,
               "list": lambda k: redis_db.lrange(k, 0, -1),
               "zset": lambda k: redis_db.zrange(k, 0, -1),
               "stream": lambda k: redis_db.xrange(k)}
    return readers[kind](key)


def test_the_sms_text_follows_the_locale(http, auth, simulator):
    start(http, auth, locale="de-CH")
    text = requests.get(simulator.url + "/_sim/messages", timeout=5).json()[-1]["text"]
    assert text.startswith("Ihr Bestätigungscode")


@pytest.mark.parametrize(("extra", "field"), [
    ({"code_mask": "####"}, "code_mask"),
    ({"code_mask": "<b>###"}, "code_mask"),
    ({"validity_minutes": 11}, "validity_minutes"),
])
def test_options_outside_the_policy_are_refused(http, auth, simulator, extra, field):
    response = start(http, auth, **extra)
    assert response.status_code == 422
    assert field in response.get_json()["errors"]


def test_a_request_parses_its_phone_number_once_its_log_line_included(http, auth, simulator,
                                                                       monkeypatch):
    parsed = []
    original = PhonePolicy.parse
    monkeypatch.setattr(PhonePolicy, "parse",
                        lambda policy, raw: parsed.append(raw) or original(policy, raw))

    assert start(http, auth, phone="+41 79 123 45 67").status_code == 201
    assert parsed == ["+41 79 123 45 67"]


def test_an_idempotency_record_is_typed_and_reads_the_layout_earlier_versions_stored(app):
    store = app.extensions["otp"].idempotency
    fingerprint = store.fingerprint("check", {"code": "1234", "id": "vf_x"})
    store.record("acme", "k-new", fingerprint, Answered(200, "vf_x", valid=False))
    refused = Refused({"status": 422, "code": "invalid_code"}, {"X-A": "1"})
    store.record("acme", "k-refused", fingerprint, refused)
    earlier = {"fp": fingerprint, "state": "done", "status": 201,
               "outcome": {"verification_id": "vf_y"}}
    store.redis.set(store._key("acme", "k-old"), json.dumps(earlier))

    assert store.claim("acme", "k-new", fingerprint) == Answered(200, "vf_x", valid=False)
    assert store.claim("acme", "k-refused", fingerprint) == refused
    assert store.claim("acme", "k-old", fingerprint) == Answered(201, "vf_y")
