"""The dashboard's counters (service/stats/) against a real redis-server and the simulator:
what a scripted mix counts, per service and country, in GET /admin/stats; the buckets'
TTLs; one background pipeline per flush and no round trip on a request's path; forks,
exits and a store that is down."""

from __future__ import annotations

import os
import threading
import time
from types import SimpleNamespace

import pytest
import redis as redis_py
import requests
from redis.backoff import NoBackoff
from redis.connection import AbstractConnection
from redis.retry import Retry

from service.errors import StoreUnavailable
from service.events import Event
from service.stats import StatsReader, StatsRecorder, keys
from service.stats.recorder import THREAD_NAME
from service.verification.budgets import PhoneLimits
from tests import stats_mix
from tests.conftest import ADMIN_KEY, last_code, service_env
from tests.helpers import check, free_port, gunicorn, start, wait_for, wsgi_server

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
HOUR_MS = 3600 * 1000


@pytest.fixture
def live(make_app):
    """The app on a loopback port that is its OTP_PUBLIC_URL (delivery reports come back)."""
    port = free_port()
    app = make_app(OTP_PUBLIC_URL=f"http://127.0.0.1:{port}", **stats_mix.SETTINGS)
    with wsgi_server(app, port) as base:
        yield SimpleNamespace(app=app, base=base)


def stats(base: str, window: str | None = None) -> requests.Response:
    query = {} if window is None else {"window": window}
    return requests.get(base + "/admin/stats", params=query, headers=ADMIN, timeout=10)


def picked(row: dict, like: dict) -> dict:
    return {name: row[name] for name in like}


def test_a_scripted_mix_shows_in_the_stats_per_country_service_and_window(live, simulator,
                                                                          redis_db):
    before = time.time()
    stats_mix.run_mix(live.base, simulator)
    for window in ("hour", "day", "week", None):
        body = stats(live.base, window).json()
        assert body["window"] == (window or "day")
        assert picked(body["totals"], stats_mix.TOTALS) == stats_mix.TOTALS, window
        assert [picked(row, stats_mix.CH) for row in body["countries"]] == [
            stats_mix.CH, stats_mix.DE]
        assert [(row["service"], row["sent"], row["approved"]) for row in body["services"]] == [
            ("default", 4, 2)]
        # the series adds up to the totals, bucket by bucket
        assert sum(point["sent"] for point in body["series"]) == 4
        assert len(body["series"]) == {"hour": 60, "day": 24, "week": 168, None: 24}[window]
    body = stats(live.base, "hour").json()
    assert body["bucket_seconds"] == 60
    assert [p["approved"] for p in body["series"] if p["approved"]] == [2]  # within a minute

    # the Swiss budget's breaker tripped and resets an hour after; the global one is closed
    breakers = {(b["kind"], b["country"]): b for b in body["breakers"]}
    swiss = breakers["country", "CH"]
    assert swiss["open"] is True
    resets = int(redis_db.get(PhoneLimits.breaker_key("country", "CH")))
    assert swiss["resets_at"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(resets // 1000))
    assert before * 1000 + HOUR_MS - 2000 < resets < time.time() * 1000 + HOUR_MS
    assert breakers["global", None]["open"] is False
    assert body["credits"]["current"] is not None  # read for the trend
    assert body["webhook_backlog"] is None  # no webhooks yet: nothing to show


def test_buckets_are_hashes_under_one_hash_tag_that_expire(live, simulator, redis_db):
    stats_mix.run_mix(live.base, simulator)
    stats(live.base, "hour")  # writes this process's counts
    minute, hour = (int(time.time() // seconds) for seconds in (60, 3600))
    found = set(redis_db.keys("otp:{otp-stats}:*"))
    assert {keys.minute_key(minute), keys.hour_key(hour)} <= found or {
        keys.minute_key(minute - 1), keys.hour_key(hour)} <= found
    for key in found:
        ttl = redis_db.ttl(key)
        if ":m:" in key:
            assert 2 * 86400 < ttl <= keys.MINUTE_TTL_SECONDS, key
        elif ":h:" in key:
            assert 8 * 86400 < ttl <= keys.HOUR_TTL_SECONDS, key
        else:
            assert key in (keys.CREDITS_KEY, keys.BREAKERS_KEY) and 0 < ttl <= 8 * 86400
    fields = {}
    for key in found:
        if ":h:" in key:
            fields.update(redis_db.hgetall(key))
    assert fields["sent|default|CH"] == "3" and fields["undelivered|default|CH"] == "1"


def test_a_managed_service_s_sends_and_deliveries_are_counted_as_its_own(live, simulator):
    made = requests.post(live.base + "/admin/services", json={"name": "signup"},
                         headers=ADMIN, timeout=5).json()
    key = requests.post(f"{live.base}/admin/services/{made['id']}/keys",
                        json={"name": "backend"}, headers=ADMIN, timeout=5).json()["key"]
    theirs = {"Authorization": f"Bearer {key}"}
    vid = start(live.base, theirs, "+4367612345678").json()["id"]
    assert check(live.base, theirs, last_code(simulator, "+4367612345678"), id=vid).json()[
        "valid"]
    assert start(live.base, stats_mix.AUTH, "+41791110070").status_code == 201  # default's
    wait_for(lambda: requests.get(f"{live.base}/otp/verifications/{vid}", headers=theirs,
                                  timeout=5).json()["delivery_status"] == "delivered")
    rows = {row["service"]: picked(row, {"sent": 0, "approved": 0, "delivered": 0})
            for row in stats(live.base, "hour").json()["services"]}
    # the delivery report is placed by the verification's stored service
    assert rows[made["id"]] == {"sent": 1, "approved": 1, "delivered": 1}
    assert rows["default"]["sent"] == 1 and rows["default"]["approved"] == 0


def test_an_unknown_window_is_a_validation_problem_and_stats_need_an_admin_key(live, auth):
    answer = stats(live.base, "year")
    assert answer.status_code == 422
    assert answer.json()["errors"] == {"window": ["Must be one of: hour, day, week."]}
    assert requests.get(live.base + "/admin/stats", headers=auth, timeout=5).status_code == 403
    assert requests.get(live.base + "/admin/stats", timeout=5).status_code == 401


# -- services and the recorder itself -------------------------------------------------------
def verification(service: str | None, country: str = "CH", test: bool = False):
    return SimpleNamespace(service=service, country=country, test=test)


def test_counts_are_kept_per_service_from_the_verification_and_its_stored_hash(redis_db):
    recorder = StatsRecorder(redis_db)
    shop = verification("shop", "AT")
    recorder.on_event(Event.SENT, country="AT", test=False, verification=shop)
    recorder.on_event(Event.SENT, country="CH", test=False, verification=verification(None))
    recorder.on_event(Event.SENT, country="CH", test=True, verification=verification(None))
    recorder.on_event(Event.CHECKED, verification=shop, valid=True)
    recorder.on_event(Event.CHECKED, verification=verification(None, test=True), valid=True)
    # a delivery report names its verification: its service and country come from the hash
    vid = "vf_abcd" + "x" * 22
    redis_db.hset(f"otp:{{abcd}}:v:{vid}", mapping={"country": "AT", "svc": "shop"})
    recorder.on_event(Event.DELIVERY, status="failed", reason_class="subscriber",
                      verification_id=vid)
    recorder.on_event(Event.DELIVERY, status="delivered", verification_id="vf_gone" + "y" * 22)
    reader = StatsReader(redis_db, recorder=recorder, service_ids=lambda: ["default", "idle"])
    body = reader.read("day")
    rows = {row["service"]: picked(row, {"sent": 0, "approved": 0, "undelivered": 0,
                                         "delivered": 0}) for row in body["services"]}
    assert rows == {"shop": {"sent": 1, "approved": 1, "undelivered": 1, "delivered": 0},
                    "default": {"sent": 1, "approved": 0, "undelivered": 0, "delivered": 1},
                    "idle": {"sent": 0, "approved": 0, "undelivered": 0, "delivered": 0}}
    assert {row["country"] for row in body["countries"]} == {"AT", "CH", "ZZ"}  # gone: ZZ
    recorder.close()


def test_a_request_makes_no_round_trip_for_the_counters_and_a_flush_makes_one(
        make_app, simulator, auth, monkeypatch):
    sent: list[tuple[str, bytes]] = []
    original = AbstractConnection.send_packed_command

    def send(connection, command, check_health=True):
        packed = b"".join(bytes(c) for c in (command if isinstance(command, list) else [command]))
        sent.append((threading.current_thread().name, packed))
        return original(connection, command, check_health)

    app = make_app()
    http = app.test_client()
    http.post("/otp/start", json={"phone": "+41791110900"}, headers=auth)  # warm
    monkeypatch.setattr(AbstractConnection, "send_packed_command", send)
    vid = http.post("/otp/start", json={"phone": "+41791110901"}, headers=auth).get_json()["id"]
    http.post("/otp/check", json={"id": vid, "code": last_code(simulator, "+41791110901")},
              headers=auth)
    mine = [packed for thread, packed in sent if thread == threading.current_thread().name]
    assert mine and not any(b"HINCRBY" in packed for packed in mine)
    sent.clear()
    assert app.extensions["otp"].stats.recorder.flush() is True
    # one pipeline: sends and approvals, each into its minute's and hour's hash, which
    # expire (a third hash when a minute ended in between)
    assert len(sent) == 1
    assert sent[0][1].count(b"HINCRBY") in (4, 6) and sent[0][1].count(b"EXPIRE") in (2, 3)


def test_the_flush_thread_writes_within_its_interval_and_close_stops_it(redis_db):
    recorder = StatsRecorder(redis_db, flush_seconds=0.05)
    recorder.on_event(Event.SENT, country="CH", verification=verification(None))
    thread = recorder._thread
    assert thread is not None and thread.name == THREAD_NAME and thread.daemon
    wait_for(lambda: redis_db.keys("otp:{otp-stats}:m:*"), timeout=2)
    recorder.on_event(Event.SENT, country="CH", verification=verification(None))
    recorder.close()
    assert not thread.is_alive()
    hour = redis_db.keys("otp:{otp-stats}:h:*")[0]
    assert redis_db.hget(hour, "sent|default|CH") == "2"  # the last count written by close


def test_counts_wait_while_the_store_is_down_and_land_once_it_is_back(redis_db):
    down = redis_py.Redis(port=free_port(), socket_connect_timeout=0.2,
                          retry=Retry(NoBackoff(), 0))  # as the service's own (storage.py)
    recorder = StatsRecorder(down)
    recorder.on_event(Event.SENT, country="CH", verification=verification(None))
    recorder.on_event(Event.DELIVERY, status="delivered", verification_id="vf_abcd" + "z" * 22)
    assert recorder.flush() is False
    with pytest.raises(StoreUnavailable):  # the API's 503 store_unavailable
        StatsReader(down, recorder=recorder).read("hour")
    recorder.redis = redis_db
    assert recorder.flush() is True
    body = StatsReader(redis_db).read("hour")
    assert (body["totals"]["sent"], body["totals"]["delivered"]) == (1, 1)
    recorder.close()


def test_a_forked_child_starts_empty_with_a_thread_of_its_own(redis_db):
    recorder = StatsRecorder(redis_db, flush_seconds=60)
    recorder.on_event(Event.SENT, country="CH", verification=verification(None))
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: what it inherited is the parent's to write
        ok = not recorder._counts and recorder._thread is None
        recorder.on_event(Event.SENT, country="DE", verification=verification(None))
        ok = ok and recorder._thread is not None and recorder._thread.is_alive()
        recorder.close()
        os.write(write, b"1" if ok else b"0")
        os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(read, 1) == b"1"
    recorder.close()
    countries = {row["country"]: row["sent"] for row in StatsReader(redis_db).read("hour")
                 ["countries"]}
    assert countries == {"CH": 1, "DE": 1}  # each counted once, by the process that saw it


@pytest.mark.slow
def test_gunicorn_workers_write_their_last_counts_when_they_stop(redis_server, redis_db,
                                                                 simulator, auth):
    env = service_env(redis_server.url, simulator.url)
    with gunicorn(env, workers=2) as base:
        assert requests.post(base + "/otp/start", json={"phone": "+41791110950"},
                             headers=auth, timeout=10).status_code == 201
    # the flush interval has not passed: the worker wrote its count on its way out
    hour = redis_db.keys("otp:{otp-stats}:h:*")
    assert hour and redis_db.hget(hour[0], "sent|default|CH") == "1"


# -- the credits' trend ---------------------------------------------------------------------
def test_readings_give_a_rate_and_days_left_since_the_last_top_up(redis_db):
    clock = [1_800_000_000.0]
    recorder = StatsRecorder(redis_db, clock=lambda: clock[0])
    for hour, credits in enumerate((100, 1000, 990, 980, 970)):  # a top-up, then 10 an hour
        clock[0] = 1_800_000_000.0 + hour * 3600
        recorder.on_event(Event.CREDITS, credits=credits)
    clock[0] += 30
    recorder.on_event(Event.CREDITS, credits=965)  # within the minute of the last: ignored
    recorder.flush()
    trend = StatsReader(redis_db, clock=lambda: clock[0]).read("week")["credits"]
    assert trend["current"] == 970 and trend["per_day"] == 240.0
    assert trend["days_left"] == round(970 / 240, 1)
    assert [r["credits"] for r in trend["readings"]] == [100, 1000, 990, 980, 970]


def test_too_short_a_history_tells_no_days_left(redis_db):
    recorder = StatsRecorder(redis_db)
    recorder.on_event(Event.CREDITS, credits=50)
    recorder.flush()
    trend = StatsReader(redis_db).read("day")["credits"]
    assert trend["current"] == 50 and trend["per_day"] is None and trend["days_left"] is None


def test_the_sandbox_counts_in_its_embedded_store(make_app):
    """Sandbox mode without REDIS_URL: the same counters, in fakeredis."""
    from service.config import SANDBOX_ADMIN_KEY, SANDBOX_CLIENT_KEY

    app = make_app(ASPSMS_USERKEY="", ASPSMS_ORIGINATOR="", OTP_API_KEYS="", OTP_ADMIN_KEYS="",
                   REDIS_URL="")
    try:
        assert "fakeredis" in type(app.extensions["otp"].redis).__module__
        http = app.test_client()
        client = {"Authorization": f"Bearer {SANDBOX_CLIENT_KEY}"}
        assert http.post("/otp/start", json={"phone": "+41791110080"},
                         headers=client).status_code == 201
        body = http.get("/admin/stats?window=hour",
                        headers={"Authorization": f"Bearer {SANDBOX_ADMIN_KEY}"}).get_json()
        assert body["totals"]["sent"] == 1 and body["countries"][0]["country"] == "CH"
    finally:
        app.extensions["otp"].simulator.stop()
