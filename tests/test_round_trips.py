"""Issue 8's budget for Redis on the hot path, against a real redis-server: each limit costs
at most one round trip, each state decision one, and nothing else touches Redis. Counted
at the client: every command or pipeline redis-py sends is one packed write."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from redis.connection import AbstractConnection

from service.stats.recorder import THREAD_NAME
from tests.conftest import last_code
from tests.helpers import wait_for


@pytest.fixture
def round_trips(monkeypatch):
    """What the app sends to Redis, one entry per round trip (a pipeline's commands joined
    by '+', a script by its first line); not the dashboard counters' background flush,
    which no request waits for (tests/test_stats.py counts it)."""
    sent: list[str] = []
    original = AbstractConnection.send_packed_command

    def send(connection, command, check_health=True):
        # no request's round trip: the services cache's poll (one GET per process every
        # 0.2 s, issue 17), the dashboard counters' flush (every 5 s)
        if threading.current_thread().name not in ("services-cache", THREAD_NAME):
            sent.append(_describe(command))
        return original(connection, command, check_health)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", send)
    return sent


def _describe(packed) -> str:
    """The names of the commands in one packed write (RESP arrays of bulk strings)."""
    data = b"".join(bytes(chunk) for chunk in (packed if isinstance(packed, list) else [packed]))
    names, at = [], 0
    while at < len(data):
        end = data.index(b"\r\n", at)
        count, at = int(data[at + 1:end]), end + 2
        for index in range(count):
            end = data.index(b"\r\n", at)
            size = int(data[at + 1:end])
            if index == 0:
                names.append(data[end + 2:end + 2 + size].decode())
            at = end + 2 + size + 2
    return "+".join(names)


TWO_WINDOWS = "50 per hour;500 per day"
END_USER = {"end_user_ip": "2001:db8:1:2::42", "end_user_id": "user-1842"}


def test_a_start_and_a_check_cost_one_round_trip_per_limit_and_decision(
        make_app, simulator, auth, round_trips, redis_db):
    # Flask-Limiter counts each item of a request-level limit in its own round trip, so
    # those have one item here; the domain's limits cost one round trip whatever they hold
    # (the end user's among them: both are named, so both are counted).
    http = make_app(OTP_RESEND_COOLDOWN="0", OTP_LIMIT_START_PER_IP=TWO_WINDOWS,
                    OTP_LIMIT_CHECK_PER_IP=TWO_WINDOWS, OTP_LIMIT_PER_CLIENT="1000 per minute",
                    OTP_LIMIT_START_PER_PHONE=TWO_WINDOWS, OTP_LIMIT_CHECK_PER_PHONE=TWO_WINDOWS,
                    OTP_BUDGET_PER_PREFIX=TWO_WINDOWS, OTP_BUDGET_PER_COUNTRY=TWO_WINDOWS,
                    OTP_BUDGET_GLOBAL=TWO_WINDOWS).test_client()
    warm = http.post("/otp/start", json={"phone": "+41791110900", **END_USER}, headers=auth)
    http.post("/otp/check", json={"id": warm.get_json()["id"], "code": "000000", **END_USER},
              headers=auth)  # scripts loaded, replica state known

    round_trips.clear()
    started = http.post("/otp/start", json={"phone": "+41791110901", **END_USER},
                        headers=auth)
    assert started.status_code == 201
    start_trips = list(round_trips)

    code = last_code(simulator, "+41791110901")
    round_trips.clear()
    checked = http.post("/otp/check", json={"id": started.get_json()["id"], "code": code,
                                            **END_USER}, headers=auth)
    assert checked.status_code == 200 and checked.get_json()["valid"] is True
    check_trips = list(round_trips)

    # start: per-client limit (Flask-Limiter), the phone's and the end user's limits with
    # the budgets and breakers (count_limits.lua), the reservation (reserve_send.lua, which
    # also enters the send among those awaiting a delivery status)
    assert Counter(start_trips) == Counter({"EVALSHA": 3}), start_trips
    # check: per-client limit, the read pipelined with the end-user IP limit (in a slot of
    # its own), the claim with the phone's check limit, the settlement
    assert Counter(check_trips) == Counter({"EVALSHA": 3, "HGETALL+EVALSHA": 1}), check_trips
    # the end user's limits were counted, in those round trips
    windows = {key.split(":w:")[1].split(":")[0] for key in redis_db.scan_iter("otp:*:w:*")}
    assert {"start_per_end_user_ip", "start_per_end_user", "check_per_end_user_ip"} <= windows


def test_a_check_by_phone_counts_its_end_user_ip_beside_the_pointers_read(
        make_app, simulator, auth, round_trips):
    http = make_app(OTP_LIMIT_PER_CLIENT="1000 per minute").test_client()
    http.post("/otp/start", json={"phone": "+41791110902"}, headers=auth)
    http.post("/otp/check", json={"phone": "+41791110902", "code": "000000", **END_USER},
              headers=auth)  # scripts loaded
    http.post("/otp/start", json={"phone": "+41791110903"}, headers=auth)
    code = last_code(simulator, "+41791110903")
    round_trips.clear()
    checked = http.post("/otp/check", json={"phone": "+41791110903", "code": code,
                                            **END_USER}, headers=auth)
    assert checked.get_json()["valid"] is True
    assert Counter(round_trips) == Counter({"EVALSHA": 3, "GET+EVALSHA": 1, "HGETALL": 1})


def test_flask_limiter_resolves_a_routes_limits_once_per_request(make_app, auth, monkeypatch):
    # Its before-request pass would resolve them a second time, for limits (default,
    # application, blueprint, meta) this service does not declare.
    from service.http.limits import limiter

    resolved = []
    original = limiter.limit_manager.resolve_limits

    def resolve(*args, **kwargs):
        resolved.append(kwargs.get("in_middleware", args[4] if len(args) > 4 else None))
        return original(*args, **kwargs)

    monkeypatch.setattr(limiter.limit_manager, "resolve_limits", resolve)
    http = make_app(OTP_LIMIT_PER_CLIENT="2 per minute").test_client()
    answers = [http.post("/otp/start", json={"phone": f"+4179111095{n}"}, headers=auth)
               for n in range(3)]
    assert [a.status_code for a in answers] == [201, 201, 429]
    assert answers[2].get_json()["reason"] == "per_client"
    assert resolved == [False, False, False]  # by the route's decorator, never in middleware


def test_flask_limiters_before_request_pass_stays_when_a_limit_needs_it(make_app, monkeypatch):
    from flask import Flask

    from service.http.limits import limiter, skip_request_level_pass

    assert limiter._check_request_limit not in make_app().before_request_funcs[None]
    app = Flask(__name__)
    app.before_request(limiter._check_request_limit)
    monkeypatch.setattr(limiter.limit_manager, "_application_limits", [["declared"]])
    skip_request_level_pass(app)
    assert limiter._check_request_limit in app.before_request_funcs[None]


def test_checks_queued_behind_a_slow_check_poll_redis_a_bounded_number_of_times(
        make_app, simulator, auth, round_trips):
    # 50 checks wait for one the gateway takes 2 s to answer (under CLAIM_WAIT_SECONDS, so
    # they are decided, not refused as check_in_progress)
    from concurrent.futures import ThreadPoolExecutor

    from tests.helpers import sim

    app = make_app(ASPSMS_TIMEOUT="5", OTP_LIMIT_PER_CLIENT="1000 per minute",
                   OTP_LIMIT_CHECK_PER_PHONE="1000 per hour")
    vid = app.test_client().post("/otp/start", json={"phone": "+41791110950"},
                                 headers=auth).get_json()["id"]
    wrong = "".join(str((int(c) + 1) % 10) for c in last_code(simulator, "+41791110950"))
    sim(simulator, "POST", "/_sim/faults",
        json={"delay": 2.0, "endpoints": ["VerifyToken"], "count": 1})

    def check():
        return app.test_client().post("/otp/check", json={"id": vid, "code": wrong},
                                      headers=auth)

    with ThreadPoolExecutor(51) as pool:
        slow = pool.submit(check)
        wait_for(lambda: sim(simulator, "GET", "/_sim/stats")["calls"]["VerifyToken"])
        round_trips.clear()
        queued = list(pool.map(lambda _: check(), range(50)))
        waited = list(round_trips)
    assert slow.result().status_code == 200
    # four spend the attempts left, the others find it ended (or, on a loaded machine,
    # give up waiting)
    assert {a.status_code for a in queued} == {200, 409}
    assert sum(a.status_code == 200 for a in queued) <= 4
    assert {a.get_json()["code"] for a in queued if a.status_code == 409} <= {
        "verification_closed", "check_in_progress"}
    # per check: its client limit, the read, a settlement or none, and its claim polls
    # (about a dozen when it waits the whole CLAIM_WAIT_SECONDS; ~200 each at a fixed 10 ms)
    assert len(waited) <= 50 * (3 + 16), Counter(waited)


def test_events_for_webhooks_cost_a_start_and_a_check_no_round_trip(
        make_app, simulator, auth, round_trips):
    """Issue 18: each decision's script appends its event; nothing else is sent."""
    from tests.conftest import ADMIN_KEY

    app = make_app(OTP_RESEND_COOLDOWN="0", OTP_LIMIT_START_PER_IP="100 per hour",
                   OTP_LIMIT_PER_CLIENT="1000 per minute")  # one item each, as above
    services = app.extensions["otp"]
    http = app.test_client()
    assert http.patch("/admin/services/default", json={"webhook_url": "https://example.org/h"},
                      headers={"Authorization": f"Bearer {ADMIN_KEY}"}).status_code == 200
    warm = http.post("/otp/start", json={"phone": "+41791110910"}, headers=auth)
    http.post("/otp/check", json={"id": warm.get_json()["id"], "code": "000000"}, headers=auth)

    round_trips.clear()
    started = http.post("/otp/start", json={"phone": "+41791110911"}, headers=auth)
    start_trips = list(round_trips)
    round_trips.clear()
    checked = http.post("/otp/check", json={"id": started.get_json()["id"],
                                            "code": last_code(simulator, "+41791110911")},
                        headers=auth)
    check_trips = list(round_trips)

    assert checked.get_json()["valid"] is True
    assert Counter(start_trips) == Counter({"EVALSHA": 3}), start_trips
    assert Counter(check_trips) == Counter({"EVALSHA": 3, "HGETALL": 1}), check_trips
    stream = services.redis.xrange("otp:{events}:ev")
    assert [fields["type"] for _, fields in stream][-2:] == ["verification.started",
                                                             "verification.approved"]
