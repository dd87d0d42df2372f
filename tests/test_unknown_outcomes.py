"""Outcomes a start or check cannot see. A gateway call whose answer never arrives (issue
14.1, 14.2): the gateway may have acted, so the service acts as if it had. A store failing
right after a send's reservation (14.8): the reservation is still taken back. App in
process, real Redis, simulator over HTTP (slower than ASPSMS_TIMEOUT where it matters)."""

from __future__ import annotations

import threading
import time

import pytest
import redis

from service.verification import keys
from tests.conftest import last_code
from tests.helpers import check, gateway_calls, sim, start, wait_for

PHONE = "+41791240001"
TIMEOUT = "0.5"
SLOW = 1.0  # the simulator answers after this, having done what it was asked


def read(http, auth, vid):
    return http.get(f"/otp/verifications/{vid}", headers=auth).get_json()


def slow_down(simulator, endpoint: str, count: int | None = 1):
    sim(simulator, "POST", "/_sim/faults",
        json={"delay": SLOW, "endpoints": [endpoint], **({"count": count} if count else {})})


def messages(simulator, phone=PHONE) -> list:
    return [m for m in sim(simulator, "GET", "/_sim/messages") if m["recipient"] == phone]


def wrong(code: str) -> str:
    return "".join(str((int(c) + 1) % 10) for c in code)


# -- checks (14.1) ------------------------------------------------------------------------
def test_a_timed_out_right_code_never_lets_another_code_approve(make_app, auth, simulator):
    http = make_app(ASPSMS_TIMEOUT=TIMEOUT, OTP_RESEND_COOLDOWN="1").test_client()
    vid = start(http, auth, PHONE).get_json()["id"]
    code = last_code(simulator, PHONE)
    slow_down(simulator, "VerifyToken")
    timed_out = check(http, auth, code, id=vid)
    assert timed_out.status_code == 504
    assert timed_out.get_json()["code"] == "upstream_timeout"
    assert timed_out.get_json()["resend_required"] is True
    time.sleep(SLOW)  # the simulator has verified the token by now: it approves any code
    for typed in ("000000", code):
        refused = check(http, auth, typed, id=vid)
        assert refused.status_code == 409, refused.get_json()
        assert refused.get_json()["code"] == "resend_required"
    after = read(http, auth, vid)
    assert after["status"] == "pending" and after["attempts_remaining"] == 4
    assert gateway_calls(simulator)["VerifyToken"] == 1  # refused without asking the gateway

    time.sleep(1)  # the resend cooldown
    assert start(http, auth, PHONE).status_code == 200
    new_code = last_code(simulator, PHONE)
    tokens = {m["token_reference"] for m in messages(simulator)}
    assert len(tokens) == 2  # the resend went out under a new token reference
    assert check(http, auth, "000000" if new_code != "000000" else "111111",
                 id=vid).get_json()["valid"] is False
    approved = check(http, auth, new_code, id=vid).get_json()
    assert approved["valid"] is True and approved["status"] == "approved"


def test_timed_out_guesses_spend_attempts_and_count_toward_the_lockout(make_app, auth, simulator):
    http = make_app(ASPSMS_TIMEOUT=TIMEOUT, OTP_RESEND_COOLDOWN="0",
                    OTP_MAX_FAILURES_PER_PHONE="2").test_client()
    vid = start(http, auth, PHONE).get_json()["id"]
    slow_down(simulator, "VerifyToken", count=None)
    first = check(http, auth, wrong(last_code(simulator, PHONE)), id=vid)
    assert first.status_code == 504 and read(http, auth, vid)["attempts_remaining"] == 4
    assert start(http, auth, PHONE).status_code == 200  # a new code, as the answer asked
    second = check(http, auth, wrong(last_code(simulator, PHONE)), id=vid)
    assert second.status_code == 504 and read(http, auth, vid)["attempts_remaining"] == 3
    sim(simulator, "DELETE", "/_sim/faults")
    assert start(http, auth, PHONE).status_code == 200
    locked = check(http, auth, last_code(simulator, PHONE), id=vid)  # even the right code
    assert locked.status_code == 429 and locked.get_json()["reason"] == "phone_locked"


def test_a_timed_out_check_on_the_last_attempt_ends_the_verification(make_app, auth, simulator):
    http = make_app(ASPSMS_TIMEOUT=TIMEOUT, OTP_MAX_ATTEMPTS="1").test_client()
    vid = start(http, auth, PHONE).get_json()["id"]
    slow_down(simulator, "VerifyToken")
    timed_out = check(http, auth, last_code(simulator, PHONE), id=vid).get_json()
    assert timed_out["code"] == "upstream_timeout" and timed_out["resend_required"] is False
    closed = check(http, auth, "000000", id=vid).get_json()
    assert closed["code"] == "verification_closed"
    assert closed["verification_status"] == "max_attempts_reached"


def test_a_claim_never_settled_is_settled_as_an_unknown_outcome(
        make_app, auth, simulator, redis_db):
    # a worker died (or a failover forgot the settlement) after the code went to the gateway
    http = make_app(OTP_MAX_FAILURES_PER_PHONE="1").test_client()
    vid = start(http, auth, PHONE).get_json()["id"]
    key = keys.verification_key(vid)
    redis_db.hset(key, "busy", int(time.time() * 1000) - 1)  # its hold has run out
    refused = check(http, auth, last_code(simulator, PHONE), id=vid)
    assert refused.status_code == 409 and refused.get_json()["code"] == "resend_required"
    after = read(http, auth, vid)
    assert after["status"] == "pending" and after["attempts_remaining"] == 4
    assert gateway_calls(simulator).get("VerifyToken") is None
    locked = check(http, auth, last_code(simulator, PHONE), id=vid)  # it counted as a failure
    assert locked.status_code == 429 and locked.get_json()["reason"] == "phone_locked"


@pytest.mark.parametrize(("spec", "status"), [
    ({"http_status": 500}, 502),
    ({"non_json": True}, 502),
    ({"status_code": "6"}, 503),  # the gateway's own time-out: it may have verified
    ({"status_code": "39"}, 502),  # a status without a documented meaning
])
def test_any_answer_but_a_refused_connection_or_a_nothing_done_status_spends_the_check(
        http, auth, simulator, spec, status):
    # the request reached something: the gateway may have verified the token behind it
    vid = start(http, auth, PHONE).get_json()["id"]
    sim(simulator, "POST", "/_sim/faults", json={"endpoints": ["VerifyToken"], **spec})
    failed = check(http, auth, last_code(simulator, PHONE), id=vid)
    assert failed.status_code == status and failed.get_json()["resend_required"] is True
    sim(simulator, "DELETE", "/_sim/faults")
    assert check(http, auth, last_code(simulator, PHONE), id=vid).get_json()["code"] == \
        "resend_required"
    assert read(http, auth, vid)["attempts_remaining"] == 4


@pytest.mark.parametrize(("status_code", "status", "code"), [
    ("3", 502, "upstream_auth_failed"),
    ("5", 503, "upstream_insufficient_credits"),
    ("24", 503, "upstream_unavailable"),
])
def test_a_status_that_says_the_gateway_did_nothing_spends_nothing(
        http, auth, simulator, status_code, status, code):
    # credentials or credits refused, or its back end unreachable: no token was verified
    vid = start(http, auth, PHONE).get_json()["id"]
    sim(simulator, "POST", "/_sim/faults",
        json={"endpoints": ["VerifyToken"], "status_code": status_code})
    failed = check(http, auth, last_code(simulator, PHONE), id=vid)
    assert failed.status_code == status and failed.get_json()["code"] == code
    assert "resend_required" not in failed.get_json()
    sim(simulator, "DELETE", "/_sim/faults")
    assert read(http, auth, vid)["attempts_remaining"] == 5
    assert check(http, auth, last_code(simulator, PHONE), id=vid).get_json()["valid"] is True


def test_a_check_read_before_a_resend_never_asks_about_the_spent_token(
        make_app, auth, simulator, monkeypatch):
    # the race: a check reads the verification (token R1, spent by a timed-out check), a
    # resend brings R2, then the check claims: it must ask about R2, never R1 (the gateway
    # approves a verified R1 for any code)
    app = make_app(ASPSMS_TIMEOUT=TIMEOUT, OTP_RESEND_COOLDOWN="0")
    http = app.test_client()
    vid = start(http, auth, PHONE).get_json()["id"]
    first = last_code(simulator, PHONE)
    slow_down(simulator, "VerifyToken")
    assert check(http, auth, first, id=vid).get_json()["resend_required"] is True
    time.sleep(SLOW)  # the gateway has verified R1 by now
    verifications = app.extensions["otp"].verifications
    tenant = app.extensions["otp"].default_tenant
    read_before = verifications.read(tenant, verifications.store.read(vid)["client"], vid)
    assert start(http, auth, PHONE).status_code == 200  # the resend: R2
    monkeypatch.setattr(verifications, "_find_for_check", lambda *_: read_before)
    wrong = "000000" if first != "000000" else "111111"
    refused = check(http, auth, wrong, id=vid)
    assert refused.status_code == 200 and refused.get_json()["valid"] is False
    assert read(http, auth, vid)["status"] == "pending"
    approved = check(http, auth, last_code(simulator, PHONE), id=vid)
    assert approved.get_json()["status"] == "approved"


def test_a_spent_token_is_never_approved_whatever_the_gateway_says(
        http, auth, app, redis_db):
    # settle_check.lua's own guard, below the claim's: 'valid' for the spent token is unknown
    vid = start(http, auth, PHONE).get_json()["id"]
    key = keys.verification_key(vid)
    ref, phone_hash = redis_db.hmget(key, "ref", "ph")
    redis_db.hset(key, "spent_ref", ref)
    store = app.extensions["otp"].verifications.store
    settled = store.settle_check(vid, phone_hash, outcome="valid", now_ms=1,
                                 masked_phone="+41*****01", lockout=(10, 60000, 86400000),
                                 token_reference=ref)
    assert settled.decision.value == "unknown" and settled.state["status"] == "pending"


# -- sends (14.2) -------------------------------------------------------------------------
def test_timed_out_sends_count_toward_max_sends(make_app, auth, simulator):
    http = make_app(ASPSMS_TIMEOUT=TIMEOUT, OTP_MAX_SENDS="2",
                    OTP_RESEND_COOLDOWN="0").test_client()
    slow_down(simulator, "SendTokenSMS", count=None)
    answers = [start(http, auth, PHONE) for _ in range(6)]
    assert [a.status_code for a in answers] == [504, 504, 429, 429, 429, 429]
    assert answers[0].get_json()["code"] == "upstream_timeout"
    assert {a.get_json()["reason"] for a in answers[2:]} == {"max_sends"}
    vid = answers[0].get_json()["verification_id"]
    assert answers[1].get_json()["verification_id"] == vid
    wait_for(lambda: len(messages(simulator)) >= 2)
    time.sleep(SLOW)
    assert len(messages(simulator)) == 2
    assert read(http, auth, vid)["send_count"] == 2


def test_a_retry_with_the_same_idempotency_key_replays_a_timed_out_send(
        make_app, auth, simulator):
    # the SMS may have gone out: the retry must not text the person a second time
    http = make_app(ASPSMS_TIMEOUT=TIMEOUT, OTP_RESEND_COOLDOWN="0").test_client()
    slow_down(simulator, "SendTokenSMS", count=None)
    once = {"Idempotency-Key": "signup-42"}
    first = start(http, auth, PHONE, headers=once)
    assert first.status_code == 504
    again = start(http, auth, PHONE, headers=once)
    assert again.status_code == 504 and again.get_json() == first.get_json()
    time.sleep(SLOW)
    assert len(messages(simulator)) == 1


def test_a_retry_with_the_same_idempotency_key_replays_a_timed_out_check(
        make_app, auth, simulator):
    http = make_app(ASPSMS_TIMEOUT=TIMEOUT).test_client()
    vid = start(http, auth, PHONE).get_json()["id"]
    slow_down(simulator, "VerifyToken")
    once = {"Idempotency-Key": "login-7"}
    code = last_code(simulator, PHONE)
    first = check(http, auth, code, headers=once, id=vid)
    assert first.status_code == 504 and first.get_json()["resend_required"] is True
    again = check(http, auth, code, headers=once, id=vid)
    assert again.status_code == 504 and again.get_json() == first.get_json()


def test_a_timed_out_send_leaves_a_pending_verification_its_code_can_approve(
        make_app, auth, simulator):
    http = make_app(ASPSMS_TIMEOUT=TIMEOUT, OTP_LIMIT_START_PER_PHONE="1 per hour").test_client()
    slow_down(simulator, "SendTokenSMS")
    timed_out = start(http, auth, PHONE)
    assert timed_out.status_code == 504
    vid = timed_out.get_json()["verification_id"]
    pending = read(http, auth, vid)
    assert pending["status"] == "pending" and pending["send_count"] == 1
    assert pending["resend_available_at"] is not None
    again = start(http, auth, PHONE)  # the cooldown holds, as after a send that was answered
    assert again.status_code == 429 and again.get_json()["reason"] == "resend_cooldown"
    wait_for(lambda: messages(simulator))  # the SMS did go out
    approved = check(http, auth, last_code(simulator, PHONE), id=vid).get_json()
    assert approved["valid"] is True
    # the send counted toward the phone's limit like one that was answered
    other = start(http, auth, PHONE)
    assert other.status_code == 429 and other.get_json()["reason"] == "start_per_phone"


# -- the store failing after a reservation (14.8) ----------------------------------------
@pytest.fixture
def store_down(monkeypatch):
    """A fault at the storage boundary: while set, every command of the service's own Redis
    client (state, phone limits, budgets) fails as if the server were gone."""
    down = threading.Event()

    def attach(app, error=redis.exceptions.ConnectionError):
        pool = app.extensions["otp"].store.redis.connection_pool
        original = pool.get_connection

        def get_connection(*args, **kwargs):
            if down.is_set():
                raise error("injected: the store is gone")
            return original(*args, **kwargs)

        monkeypatch.setattr(pool, "get_connection", get_connection)
        return down

    return attach


def fail_right_after(monkeypatch, owner, name: str, down: threading.Event):
    """The store goes away as ``owner.name`` is called, the step after the reservation."""
    original = getattr(owner, name)

    def call(*args, **kwargs):
        down.set()
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, call)


def reservations(redis_db) -> list[str]:
    return [*redis_db.scan_iter(keys.ANY_VERIFICATION),
            *redis_db.scan_iter(keys.pointer_key("*", "*"))]


def test_a_start_the_store_fails_after_its_reservation_can_be_retried(
        make_app, auth, simulator, redis_db, store_down, monkeypatch):
    app = make_app()
    down = store_down(app)
    fail_right_after(monkeypatch, app.extensions["otp"].verifications.limits, "count_send",
                     down)
    failed = start(app.test_client(), auth, PHONE)
    assert failed.status_code == 503 and failed.get_json()["code"] == "store_unavailable"
    assert reservations(redis_db)  # the undo could not reach the store either
    monkeypatch.undo()  # the store is back
    retried = start(app.test_client(), auth, PHONE)
    assert retried.status_code == 201, retried.get_json()  # not 429 resend_cooldown
    assert len(messages(simulator)) == 1


@pytest.mark.parametrize("error", [redis.exceptions.ConnectionError,
                                   redis.exceptions.TimeoutError])  # refused, or frozen
def test_the_undo_lands_by_itself_once_the_store_is_back(
        make_app, auth, simulator, redis_db, store_down, monkeypatch, error):
    app = make_app()
    down = store_down(app, error)
    fail_right_after(monkeypatch, app.extensions["otp"].verifications.gateway,
                     "send_token_sms", down)
    sim(simulator, "POST", "/_sim/faults", json={"http_status": 500,
                                                 "endpoints": ["SendTokenSMS"]})
    failed = start(app.test_client(), auth, PHONE)
    # the gateway's failure is the answer; the undo the store refused is retried later
    assert failed.status_code == 502 and failed.get_json()["code"] == "upstream_error"
    assert reservations(redis_db)
    time.sleep(0.3)  # the background retries meet the outage too
    sim(simulator, "DELETE", "/_sim/faults")
    down.clear()
    wait_for(lambda: not reservations(redis_db), timeout=5)
    elsewhere = make_app().test_client()  # another process: it knows of no kept undo
    assert start(elsewhere, auth, PHONE).status_code == 201
    assert len(messages(simulator)) == 1


def lose_the_answer(monkeypatch, store, down: threading.Event):
    """reserve_send.lua runs, then its answer is lost (a Redis timeout) and the store stays
    away: the caller cannot tell whether anything was reserved."""
    original = store._scripts["reserve_send"]

    def run(*args, **kwargs):
        answer = original(*args, **kwargs)
        if answer[0] not in ("created", "resend"):
            return answer  # a 'retry' (another pointer than guessed) reserved nothing
        down.set()
        raise redis.exceptions.TimeoutError("injected: the answer was lost")

    monkeypatch.setitem(store._scripts, "reserve_send", run)


@pytest.mark.parametrize("resend", [False, True], ids=["creation", "resend"])
def test_a_reservation_whose_answer_was_lost_is_taken_back(
        make_app, auth, simulator, redis_db, store_down, monkeypatch, resend):
    app = make_app(OTP_RESEND_COOLDOWN="1")
    http = app.test_client()
    if resend:
        vid = start(http, auth, PHONE).get_json()["id"]
        time.sleep(1)  # the cooldown
    lose_the_answer(monkeypatch, app.extensions["otp"].store, store_down(app))
    lost = start(http, auth, PHONE)
    assert lost.status_code == 503 and lost.get_json()["code"] == "store_unavailable"
    assert reservations(redis_db)
    monkeypatch.undo()  # the store is back
    retried = start(http, auth, PHONE)
    assert retried.status_code == (200 if resend else 201), retried.get_json()
    assert read(http, auth, retried.get_json()["id"])["send_count"] == (2 if resend else 1)
    assert len(messages(simulator)) == (2 if resend else 1)
    if resend:
        assert retried.get_json()["id"] == vid


def test_a_lost_resend_is_found_by_its_token_reference_under_a_later_one(
        make_app, auth, simulator, redis_db):
    from service.verification.decisions import Reservation

    app = make_app(OTP_RESEND_COOLDOWN="0")
    vid = start(app.test_client(), auth, PHONE).get_json()["id"]
    store = app.extensions["otp"].store
    ph, now = store.phone_hash(PHONE), int(time.time() * 1000)
    first_ref = redis_db.hget(keys.verification_key(vid), "ref")
    for later, ref in ((1000, "ref-two"), (2000, "ref-three")):  # two resends, unanswered
        reserved = store.reserve_send(
            client="acme", phone_hash=ph, seen_pointer=vid, new_id=keys.new_id(ph),
            now_ms=now + later, cooldown_ms=0, max_sends=5, expires_ms=now + 600_000,
            fields={"ref": ref})
        assert reserved.outcome == "resend"

    def undo(ref):
        return store.undo_send(client="acme", phone_hash=ph, seen_pointer=vid, reference=ref,
                               reservation=Reservation("resend", vid))

    assert undo("never-sent") == "gone"
    assert undo("ref-two") == "superseded"  # the later send stands
    assert undo("ref-two") == "gone"  # a second run finds nothing left
    assert undo("ref-three") == "reverted"
    state = redis_db.hgetall(keys.verification_key(vid))
    # the superseded send still counts toward OTP_MAX_SENDS (undo_send.lua); the token
    # is the first send's again
    assert (state["sends"], state["ref"]) == ("2", first_ref)


def test_kept_undos_are_retried_per_phone_until_the_store_answers_or_they_expire():
    from service.errors import StoreUnavailable
    from service.verification.take_backs import TakeBacks

    now = [1000.0]
    ran: list[str] = []
    store_up = threading.Event()

    def undo(name):
        def run():
            ran.append(name)
            if not store_up.is_set():
                raise StoreUnavailable("down")
        return run

    take_backs = TakeBacks(clock=lambda: now[0], first_pause=60, longest_pause=60)
    for name, key, until in (("a1", "a", 2000), ("b1", "b", 2000), ("a2", "a", 1500)):
        take_backs.run(undo(name), key=key, until=until)
    assert take_backs.kept == 3 and ran == ["a1", "b1", "a2"]
    ran.clear()
    assert take_backs.flush("a") is False
    assert ran == ["a1"]  # stopped at the first failure: the store is still down
    store_up.set()
    now[0] = 1600.0  # a2's verification has expired meanwhile
    ran.clear()
    assert take_backs.flush("a") is True and ran == ["a1"]
    assert take_backs.kept == 1  # b's undo waits for its own phone or the background
    assert take_backs.flush() is True and ran == ["a1", "b1"] and take_backs.kept == 0
