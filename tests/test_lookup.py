"""The support lookup (GET /admin/verifications?phone=…): a real redis-server, the simulator
over HTTP calling the delivery URLs of the app on a loopback port."""

from __future__ import annotations

import json

import pytest

from service.verification import keys
from tests import test_delivery
from tests.conftest import ADMIN_KEY, CLIENT_KEY, last_code
from tests.helpers import check, sim, start, wait_for
from tests.test_delivery import outcomes
from tests.test_services import create, new_key

make_live = test_delivery.make_live  # the fixture: the app served for the delivery callbacks

PHONE, MASKED = "+41791234567", "+417******67"
DIGITS = "791234567"  # the number's national part: no stored key or value may hold it
TEST_PHONE, TEST_CODE = "+41790000000", "123456"
CLIENT = {"Authorization": f"Bearer {CLIENT_KEY}"}
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
THIRTY_DAYS_MS = 30 * 24 * 3600 * 1000
MIX = {"OTP_RESEND_COOLDOWN": "0", "OTP_MAX_FAILURES_PER_PHONE": "3", "OTP_MAX_ATTEMPTS": "5",
       "OTP_DEFAULT_REGION": "CH"}


def wrong(code: str) -> str:
    return ("1" if code[0] != "1" else "2") + code[1:]


def lookup(http, phone: str = PHONE):
    return http.get("/admin/verifications", query_string={"phone": phone}, headers=ADMIN)


def events(verification: dict) -> list[tuple]:
    """Each timeline entry as a tuple of its details, without its time."""
    return [tuple(value for name, value in event.items() if name != "at")
            for event in verification["timeline"]]


def delivered(live, vid: str, send: int, status: str) -> bool:
    body = live.read(vid)
    return body["send_count"] == send and body["delivery_status"] == status


@pytest.fixture
def mix(make_live, simulator):
    """Approved after a wrong code; then a failed delivery, a resend, a lockout."""
    live = make_live(**MIX)
    http = live.app.test_client()
    first = start(http, CLIENT).get_json()["id"]
    wait_for(lambda: delivered(live, first, 1, "delivered"))
    code = last_code(simulator, PHONE)
    assert check(http, CLIENT, wrong(code), id=first).get_json()["valid"] is False
    assert check(http, CLIENT, code, id=first).get_json()["valid"] is True

    outcomes(simulator, **{PHONE: ("failed", "107")})
    second = start(http, CLIENT).get_json()["id"]
    wait_for(lambda: delivered(live, second, 1, "failed"))
    assert start(http, CLIENT).status_code == 200  # the resend
    wait_for(lambda: delivered(live, second, 2, "failed"))
    code = last_code(simulator, PHONE)
    for _ in range(3):
        assert check(http, CLIENT, wrong(code), id=second).get_json()["valid"] is False
    assert check(http, CLIENT, code, id=second).status_code == 429  # locked
    return live, first, second, code


ABSENT = "absent subscriber (phone off / out of coverage)"


def test_the_lookup_shows_each_verification_with_its_timeline_newest_first(mix):
    live, first, second, code = mix
    response = lookup(live.app.test_client())
    assert response.status_code == 200
    body = response.get_json()
    assert body["phone"] == MASKED and body["count"] == 2
    [service] = body["services"]
    assert service["service"] == "default"
    newest, oldest = service["verifications"]
    assert (newest["id"], oldest["id"]) == (second, first)
    assert oldest["status"] == "approved" and oldest["client"] == "acme"
    assert oldest["country"] == "CH" and oldest["send_count"] == 1
    assert [event[0] for event in events(oldest)] == [
        "sent", "delivery", "check", "check", "ended"]
    assert events(oldest)[1:] == [("delivery", 1, "delivered", "000", None),
                                  ("check", "wrong"), ("check", "right"), ("ended", "approved")]
    assert newest["status"] == "pending" and newest["send_count"] == 2
    assert events(newest)[1:] == [
        ("delivery", 1, "failed", "107", ABSENT), ("sent", 2, events(newest)[2][2]),
        ("delivery", 2, "failed", "107", ABSENT),
        ("check", "wrong"), ("check", "wrong"), ("check", "wrong"),
        ("lockout", events(newest)[-2][1]), ("check_refused", "phone_locked")]
    lockout = newest["timeline"][-2]
    assert lockout["until"] > lockout["at"]
    text = json.dumps(body)
    assert DIGITS not in text and code not in text and wrong(code) not in text


@pytest.mark.parametrize("typed", ["+41 79 123 45 67", "0041791234567", "079 123 45 67",
                                   "(079) 123-45-67"])
def test_every_spelling_of_the_number_finds_the_same(mix, typed):
    http = mix[0].app.test_client()
    assert lookup(http, typed).get_json() == lookup(http, PHONE).get_json()


def test_nothing_stored_holds_the_number_but_the_pending_verification_s_own_hash(mix, redis_db):
    live, first, second, _ = mix
    lookup(live.app.test_client())
    holding = [key for key in redis_db.scan_iter() if DIGITS in key + _dump(redis_db, key)]
    assert holding == [keys.verification_key(second)]  # pending: it holds the number to send to
    phone_hash = live.services.store.phone_hash(PHONE)
    assert redis_db.zrange(keys.history_key(phone_hash), 0, -1) == [first, second]


def _dump(client, key: str) -> str:
    kind = client.type(key)
    readers = {"string": client.get, "hash": client.hgetall, "set": client.smembers,
               "list": lambda k: client.lrange(k, 0, -1),
               "zset": lambda k: client.zrange(k, 0, -1, withscores=True),
               "stream": lambda k: client.xrange(k)}
    return json.dumps(readers[kind](key), default=str)


def test_the_record_is_kept_thirty_days_and_outlives_the_verification(mix, redis_db):
    live, first, second, _ = mix
    phone_hash = live.services.store.phone_hash(PHONE)
    for key in (keys.history_key(phone_hash), keys.timeline_key(first),
                keys.timeline_key(second)):
        assert THIRTY_DAYS_MS - 60_000 < redis_db.pttl(key) <= THIRTY_DAYS_MS
    # their retention (a day after the end) is over; the pending one's time was up unseen
    redis_db.delete(keys.verification_key(first), keys.verification_key(second))
    [service] = lookup(live.app.test_client()).get_json()["services"]
    assert [v["status"] for v in service["verifications"]] == ["expired", "approved"]
    assert [v["send_count"] for v in service["verifications"]] == [2, 1]


def test_a_send_the_gateway_refused_shows_it_was_never_sent(make_live, simulator):
    sim(simulator, "POST", "/_sim/faults", json={"http_status": 503, "count": 1})
    http = make_live().app.test_client()
    assert start(http, CLIENT).status_code == 502
    [service] = lookup(http).get_json()["services"]
    [verification] = service["verifications"]
    assert verification["status"] == "not_sent"
    assert [event[0] for event in events(verification)] == ["sent", "not_sent"]


def test_the_caps_hold_per_verification_and_per_phone(make_app):
    http = make_app(OTP_TEST_NUMBERS=f"{TEST_PHONE}={TEST_CODE}@2099-12-31",
                    OTP_MAX_FAILURES_PER_PHONE="1", OTP_MAX_ATTEMPTS="5",
                    OTP_LIMIT_START_PER_PHONE="1000 per hour",
                    OTP_LIMIT_CHECK_PER_PHONE="1000 per hour",
                    OTP_LIMIT_PER_CLIENT="10000 per hour").test_client()
    first = start(http, CLIENT, TEST_PHONE).get_json()["id"]
    assert check(http, CLIENT, "000000", id=first).get_json()["valid"] is False  # locks
    for _ in range(keys.HISTORY_PER_VERIFICATION + 5):
        assert check(http, CLIENT, TEST_CODE, id=first).status_code == 429
    [service] = lookup(http, TEST_PHONE).get_json()["services"]
    [verification] = service["verifications"]
    assert len(verification["timeline"]) == keys.HISTORY_PER_VERIFICATION
    assert verification["timeline_truncated"] is True
    assert events(verification)[0][:2] == ("sent", 1)  # the creation stays
    assert events(verification)[1:] == [("check_refused", "phone_locked")] * (
        keys.HISTORY_PER_VERIFICATION - 1)

    ids = [first]
    for _ in range(keys.HISTORY_PER_PHONE + 2):
        http.post(f"/otp/verifications/{ids[-1]}/cancel", headers=CLIENT)
        ids.append(start(http, CLIENT, TEST_PHONE).get_json()["id"])
    [service] = lookup(http, TEST_PHONE).get_json()["services"]
    shown = [verification["id"] for verification in service["verifications"]]
    assert shown == list(reversed(ids))[:keys.HISTORY_PER_PHONE]
    store = http.application.extensions["otp"].store
    assert not store.redis.exists(keys.timeline_key(first))  # pushed out, with its timeline


def test_the_lookup_is_audited_with_the_number_masked(mix):
    live, *_ = mix
    http = live.app.test_client()
    lookup(http)
    lookup(http, "+41791234599")
    entries, _ = live.services.admin.audit.page(10)
    assert [(e.action, e.target, e.outcome) for e in entries[:2]] == [
        ("verification.lookup", "+417******99", "none"),
        ("verification.lookup", MASKED, "found")]


@pytest.mark.parametrize("query, status", [({}, 422), ({"phone": "not a number"}, 422),
                                           ({"phone": "+4179"}, 422),
                                           ({"phone": PHONE, "extra": "1"}, 422)])
def test_a_bad_query_is_a_clear_problem(app, query, status):
    response = app.test_client().get("/admin/verifications", query_string=query, headers=ADMIN)
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"


def test_only_an_admin_key_may_look_up(app):
    response = app.test_client().get("/admin/verifications", query_string={"phone": PHONE},
                                     headers=CLIENT)
    assert response.status_code in (401, 403)


def test_each_service_s_verifications_are_listed_under_its_id(app, simulator):
    http = app.test_client()
    service = create(http, name="signup")
    key = new_key(http, service["id"])["key"]
    assert start(http, CLIENT).status_code == 201
    assert start(http, {"Authorization": f"Bearer {key}"}, "+41 79 123 45 67").status_code == 201
    body = lookup(http).get_json()
    assert body["count"] == 2
    assert {group["service"]: [v["client"] for v in group["verifications"]]
            for group in body["services"]} == {"default": ["acme"],
                                               service["id"]: [service["id"]]}
