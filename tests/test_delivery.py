"""Delivery notifications end to end: the simulator calls our signed URLs over HTTP, the app
serves them on a loopback port, and the poll command inquires the sends whose calls were lost.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from contextlib import ExitStack
from dataclasses import dataclass

import pytest
import requests

from service import cli
from service.verification import keys
from service.verification.delivery import DeliveryNotifier
from service.verification.trn import parse_trn, trn_base, trn_for
from tests.conftest import ADMIN_KEY, CLIENT_KEY, last_code, service_env
from tests.helpers import free_port, start, wait_for, wsgi_server

PHONE, OTHER = "+41791234567", "+41791234568"
WHEN = "2024-05-01T10:00:00Z"
AUTH = {"Authorization": f"Bearer {CLIENT_KEY}"}


@dataclass
class Live:
    base: str
    app: object

    @property
    def services(self):
        return self.app.extensions["otp"]

    def start(self, phone=PHONE) -> dict:
        response = start(self.app.test_client(), AUTH, phone)
        assert response.status_code in (200, 201), response.get_json()
        return response.get_json()

    def read(self, vid: str) -> dict:
        return self.app.test_client().get(f"/otp/verifications/{vid}", headers=AUTH).get_json()

    def record(self, vid: str) -> dict:
        return self.services.store.read(vid)

    def urls(self, vid: str, send: int | None = None) -> dict:
        verification = self.services.verifications.read(self.services.default_tenant, "acme",
                                                        vid)
        if send is not None:
            verification = dataclasses.replace(verification, send_count=send)
        return self.services.verifications.notifier.urls_for(verification)


@pytest.fixture
def make_live(make_app):
    apps, servers = [], ExitStack()

    def factory(**overrides: str) -> Live:
        port = free_port()
        app = make_app(**{"OTP_PUBLIC_URL": f"http://127.0.0.1:{port}", **overrides})
        apps.append(app)
        return Live(servers.enter_context(wsgi_server(app, port)), app)

    with servers:
        yield factory
    for app in apps:
        services = app.extensions["otp"]
        services.gateway.close()
        services.redis.close()  # closed now, not whenever the collector gets to it


@pytest.fixture
def live(make_live):
    return make_live()


def outcomes(simulator, delay=None, **numbers):
    """`outcomes(sim, PHONE=("failed", "107"))`-style: number → (outcome, reason)."""
    spec = {"numbers": {number: {"outcome": kind, **({"reason": reason} if reason else {})}
                        for number, (kind, reason) in numbers.items()}}
    if delay is not None:
        spec["delay"] = delay
    requests.post(simulator.url + "/_sim/delivery", json=spec, timeout=5).raise_for_status()


def fill(url: str, st: str, r: str = "000", t: str = WHEN) -> str:
    return url.replace("<DST>", st).replace("<RSN>", r).replace("<DSCTSUTC>", t)


def delivery_of(live, vid):
    body = live.read(vid)
    return body["delivery_status"], body["delivery_reason"], body["delivery_reason_text"]


# -- the gateway's callbacks ----------------------------------------------------------------
def test_a_delivered_sms_shows_on_the_verification_within_a_second(live, simulator):
    vid = live.start()["id"]
    wait_for(lambda: live.read(vid)["delivery_status"] == "delivered", timeout=1.0)
    body = live.read(vid)
    assert body["delivery_reason"] == "000" and body["delivery_reason_text"] is None
    assert body["delivery_updated_at"].endswith("Z")


def test_a_failed_sms_shows_its_reason_and_counts_one_delivery_event(live, simulator):
    seen = []
    live.services.events.subscribe(
        lambda name, **details: seen.append(details) if name == "delivery" else None)
    outcomes(simulator, **{PHONE: ("failed", "107")})
    vid = live.start()["id"]
    wait_for(lambda: live.read(vid)["delivery_status"] == "failed", timeout=1.0)
    assert delivery_of(live, vid) == (
        "failed", "107", "absent subscriber (phone off / out of coverage)")
    assert seen == [{"status": "failed", "reason_class": "subscriber", "verification_id": vid}]


def test_buffered_then_delivered_shows_both_in_order(live, simulator):
    outcomes(simulator, delay=0.3, **{PHONE: ("buffered_then_delivered", "107")})
    vid = live.start()["id"]
    seen = []

    def delivered():
        state = delivery_of(live, vid)
        if not seen or seen[-1] != state:
            seen.append(state)
        return state[0] == "delivered"

    wait_for(delivered, timeout=1.0, interval=0.02)
    assert seen[0][0] == "submitted"
    assert ("buffered", "107", "absent subscriber (phone off / out of coverage)") in seen
    assert seen[-1] == ("delivered", "000", None)


def test_a_replayed_or_late_callback_changes_nothing(live, simulator):
    vid = live.start()["id"]
    wait_for(lambda: live.read(vid)["delivery_status"] == "delivered", timeout=1.0)
    before, urls = live.record(vid), live.urls(vid)
    again = requests.get(fill(urls["url_delivery"], "0"), timeout=5)
    late = requests.get(fill(urls["url_buffered"], "1", "107"), timeout=5)
    assert (again.status_code, late.status_code) == (204, 204)
    assert live.record(vid) == before


def test_the_endpoint_accepts_a_post_and_answers_with_an_empty_204(live, simulator):
    outcomes(simulator, **{PHONE: ("lost", None)})
    vid = live.start()["id"]
    url = fill(live.urls(vid)["url_non_delivery"], "2", "206")
    response = requests.post(url, data={"ignored": "body"}, timeout=5)
    assert response.status_code == 204 and response.content == b""
    assert delivery_of(live, vid) == ("failed", "206", "invalid destination address")


def test_a_callback_after_the_verification_ended_still_updates_its_delivery(live, simulator):
    outcomes(simulator, **{PHONE: ("lost", None)})
    vid = live.start()["id"]
    live.app.test_client().post(f"/otp/verifications/{vid}/cancel", headers=AUTH)
    response = requests.get(fill(live.urls(vid)["url_delivery"], "0"), timeout=5)
    assert response.status_code == 204
    body = live.read(vid)
    assert body["status"] == "canceled" and body["phone"] != PHONE
    assert body["delivery_status"] == "delivered"


def test_a_resend_starts_over_and_a_late_report_on_the_first_send_is_stale(
        make_live, simulator):
    live = make_live(OTP_RESEND_COOLDOWN="0")
    outcomes(simulator, delay=0.3)
    vid = live.start()["id"]
    wait_for(lambda: live.read(vid)["delivery_status"] == "delivered", timeout=1.0)
    resent = live.start()
    assert resent["send_count"] == 2 and resent["delivery_status"] == "submitted"
    wait_for(lambda: live.read(vid)["delivery_status"] == "delivered", timeout=1.0)
    before = live.record(vid)
    late = requests.get(fill(live.urls(vid, send=1)["url_non_delivery"], "2", "107"), timeout=5)
    assert late.status_code == 204 and live.record(vid) == before


# -- refusals -------------------------------------------------------------------------------
def _flip(signature: str) -> str:
    return signature[:-1] + ("A" if signature[-1] != "A" else "B")


FORGERIES = {
    "tampered signature": lambda mine, theirs: re.sub(
        r"s=([^&]+)", lambda m: "s=" + _flip(m.group(1)), mine["url_delivery"]),
    "another verification's signature": lambda mine, theirs: theirs["url_delivery"].replace(
        re.search(r"/(vf_[^/]+)/", theirs["url_delivery"]).group(1),
        re.search(r"/(vf_[^/]+)/", mine["url_delivery"]).group(1)),
    "unsigned": lambda mine, theirs: re.sub(r"s=[^&]+&", "", mine["url_delivery"]),
    "empty signature": lambda mine, theirs: re.sub(r"s=[^&]+&", "s=&", mine["url_delivery"]),
    "another kind's signature": lambda mine, theirs: mine["url_delivery"].replace(
        "/d1?", "/f1?"),
    "another send's signature": lambda mine, theirs: mine["url_delivery"].replace(
        "/d1?", "/d2?"),
}


@pytest.mark.parametrize("forge", FORGERIES.values(), ids=FORGERIES.keys())
def test_a_forged_callback_is_refused_and_changes_nothing(live, simulator, forge):
    outcomes(simulator, **{PHONE: ("lost", None), OTHER: ("lost", None)})
    mine, theirs = live.start(PHONE)["id"], live.start(OTHER)["id"]
    before = live.record(mine), live.record(theirs)
    forged = forge(live.urls(mine), live.urls(theirs))
    response = requests.get(fill(forged, "2" if "/f1?" in forged else "0"), timeout=5)
    assert response.status_code == 403
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "invalid_signature"
    assert (live.record(mine), live.record(theirs)) == before


MALFORMED = [
    ("st", dict(st="3")),
    ("st", dict(st="2")),  # a failure reported on the delivered URL
    ("r", dict(st="0", r="1x7")),
    ("r", dict(st="0", r="0000")),
    ("t", dict(st="0", t="yesterday")),
    ("t", dict(st="0", t="<DSCTSUTC>")),
]


@pytest.mark.parametrize(("field", "values"), MALFORMED)
def test_a_signed_callback_with_a_malformed_tag_is_refused_with_422(
        live, simulator, field, values):
    outcomes(simulator, **{PHONE: ("lost", None)})
    vid = live.start()["id"]
    before = live.record(vid)
    response = requests.get(fill(live.urls(vid)["url_delivery"], **values), timeout=5)
    assert response.status_code == 422
    assert response.json()["code"] == "validation_failed" and field in response.json()["errors"]
    assert live.record(vid) == before


def _usable(live, simulator, vid):
    """Every read of the verification answers, and its right code still approves it."""
    client = live.app.test_client()
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    assert client.get(f"/otp/verifications/{vid}", headers=AUTH).status_code == 200
    assert client.get(f"/admin/verifications/{vid}", headers=admin).status_code == 200
    checked = client.post("/otp/check", json={"id": vid, "code": last_code(simulator, PHONE)},
                          headers=AUTH)
    assert checked.status_code == 200 and checked.get_json()["status"] == "approved"
    assert client.post(f"/otp/verifications/{vid}/cancel", headers=AUTH).status_code == 409
    return checked.get_json()


# Parseable, but no notification about a verification we still keep can be from then.
ABSURD_TIMES = ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00%2B14:00",
                "2999-01-01T00:00:00Z", "1970-01-01T00:00:00Z", "2001-01-01"]


@pytest.mark.parametrize("stamp", ABSURD_TIMES)
def test_an_absurd_notification_time_is_not_stored_and_the_verification_stays_usable(
        live, simulator, stamp):
    outcomes(simulator, **{PHONE: ("lost", None)})
    vid = live.start()["id"]
    before_ms = time.time() * 1000
    response = requests.get(fill(live.urls(vid)["url_delivery"], "0", t=stamp), timeout=5)
    assert response.status_code == 204
    stored = int(live.record(vid)["delivery_at"])
    assert before_ms - 1000 <= stored <= time.time() * 1000  # the moment it arrived
    assert _usable(live, simulator, vid)["delivery_status"] == "delivered"


def test_a_plausible_notification_time_is_the_one_shown(live, simulator):
    outcomes(simulator, **{PHONE: ("lost", None)})
    vid = live.start()["id"]
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60))
    requests.get(fill(live.urls(vid)["url_delivery"], "0", t=stamp), timeout=5)
    assert live.read(vid)["delivery_updated_at"] == stamp


@pytest.mark.parametrize("stored", ["253402300799000000", "-62135596800000", "soon", "1e99"])
def test_a_bad_delivery_time_already_stored_does_not_break_any_read(
        live, simulator, redis_db, stored):
    outcomes(simulator, **{PHONE: ("lost", None)})
    vid = live.start()["id"]
    redis_db.hset(keys.verification_key(vid), "delivery_at", stored)
    assert live.read(vid)["delivery_updated_at"] is None
    assert _usable(live, simulator, vid)["delivery_updated_at"] is None


def test_a_signed_callback_for_an_unknown_verification_answers_404(live, simulator):
    unknown = keys.new_id("0" * 32)
    signature = live.services.verifications.notifier.signature(unknown, "d1")
    response = requests.get(f"{live.base}/delivery/{unknown}/d1?s={signature}&st=0&r=000",
                            timeout=5)
    assert response.status_code == 404
    assert response.json()["code"] == "verification_not_found"
    assert live.services.store.read(unknown) is None


# -- what goes to the gateway ---------------------------------------------------------------
def test_urls_stay_within_200_characters_at_the_longest_public_url_and_tenth_send(
        make_live, simulator):
    longest = "http://127.0.0.1:9/"
    longest += "p" * (80 - len(longest))
    live = make_live(OTP_PUBLIC_URL=longest, OTP_MAX_SENDS="10", OTP_RESEND_COOLDOWN="0",
                     OTP_LIMIT_START_PER_PHONE="20 per hour")
    outcomes(simulator, **{PHONE: ("lost", None)})
    for _ in range(10):  # the simulator refuses a URL over 200 characters (status 18)
        body = live.start()
    assert body["send_count"] == 10
    urls = live.urls(body["id"])
    assert set(urls) == {"trn", "url_delivery", "url_buffered", "url_non_delivery"}
    assert all(150 < len(urls[name]) <= 200 for name in urls if name != "trn")


def test_without_a_public_url_no_urls_are_sent_but_each_send_carries_its_trn(
        make_app, simulator):
    app = make_app()
    body = app.test_client().post("/otp/start", json={"phone": PHONE}, headers=AUTH).get_json()
    verification = app.extensions["otp"].verifications.read(
        app.extensions["otp"].default_tenant, "acme", body["id"])
    assert app.extensions["otp"].verifications.notifier.urls_for(verification) == {
        "trn": trn_for(body["id"], 1)}
    message = requests.get(simulator.url + "/_sim/messages", timeout=5).json()[-1]
    assert re.fullmatch(r"[A-Za-z0-9]+", message["trn"])
    assert parse_trn(message["trn"]) == (body["id"], 1)


# -- the poll fallback ----------------------------------------------------------------------
@pytest.fixture
def poll(redis_server, simulator, monkeypatch, capsys):
    for name, value in service_env(redis_server.url, simulator.url).items():
        monkeypatch.setenv(name, value)

    def run(*options: str) -> dict:
        capsys.readouterr()
        assert cli.main(["delivery", "poll", *options]) == 0
        return json.loads(capsys.readouterr().out.strip().splitlines()[-1])

    return run


def inquiries(simulator) -> int:
    stats = requests.get(simulator.url + "/_sim/stats", timeout=5).json()
    return stats["calls"]["InquireDeliveryNotifications"]


def gateway_knows(live, vid):
    rows = live.services.gateway.inquire_delivery_notifications([trn_for(vid, 1)])
    return rows and rows[-1].delivery_status == 0


def test_poll_fills_in_the_status_of_sends_whose_callbacks_were_lost(live, simulator, poll):
    outcomes(simulator, **{PHONE: ("lost", None), OTHER: ("failed", "107")})
    lost, failed = live.start(PHONE)["id"], live.start(OTHER)["id"]
    wait_for(lambda: live.read(failed)["delivery_status"] == "failed", timeout=1.0)
    wait_for(lambda: gateway_knows(live, lost), timeout=1.0)
    asked = inquiries(simulator)
    assert poll("--older-than", "0", "--batch", "1") == {
        "due": 1, "inquired": 1, "updated": 1, "expired": 0}
    assert delivery_of(live, lost) == ("delivered", "000", None)
    assert inquiries(simulator) == asked + 1
    assert poll("--older-than", "0")["due"] == 0  # a final status leaves the pending set


def test_poll_leaves_recent_sends_alone_and_gives_up_very_old_ones(live, simulator, poll):
    outcomes(simulator, **{PHONE: ("lost", None)})
    vid = live.start()["id"]
    asked = inquiries(simulator)
    assert poll("--older-than", "60")["inquired"] == 0
    # a second later (an injected clock, no sleep), the send is older than --max-age 0
    later = DeliveryNotifier(live.services.store, b"signs-nothing-here", None,
                             clock=lambda: time.time() + 1)
    assert later.poll(live.services.gateway, older_than=0, batch=1000,
                      max_age=0)["expired"] == 1
    assert inquiries(simulator) == asked
    assert live.read(vid)["delivery_status"] == "submitted"


def awaiting(live) -> set[str]:
    """Every TRN awaiting a delivery status, whatever its slot."""
    redis = live.services.redis
    return {trn for key in redis.keys(keys.awaiting_delivery_key("*"))
            for trn in redis.zrange(key, 0, -1)}


def test_each_send_awaits_its_status_in_its_verifications_slot(make_live, simulator):
    live = make_live(OTP_RESEND_COOLDOWN="0")
    outcomes(simulator, **{PHONE: ("lost", None)})
    vid = live.start()["id"]
    live.start()  # a resend on the same verification
    tag = vid[3:7]
    assert live.services.redis.zrange(keys.awaiting_delivery_key(tag), 0, -1) == [
        trn_for(vid, 1), trn_for(vid, 2)]
    assert live.services.redis.pttl(keys.awaiting_delivery_key(tag)) > 24 * 3600 * 1000


def test_a_send_the_gateway_refused_or_a_test_number_awaits_nothing(
        make_live, simulator, poll):
    live = make_live(OTP_TEST_NUMBERS="+41790000000=123456@2099-12-31")
    requests.post(simulator.url + "/_sim/faults",
                  json={"status_code": "24", "endpoints": ["SendTokenSMS"], "count": 1},
                  timeout=5).raise_for_status()
    refused = live.app.test_client().post("/otp/start", json={"phone": PHONE}, headers=AUTH)
    assert refused.status_code >= 500
    live.start("+41790000000")
    assert awaiting(live) == set()
    assert poll("--older-than", "0")["due"] == 0


def _refuse_next_send(simulator) -> None:
    requests.post(simulator.url + "/_sim/faults",
                  json={"status_code": "24", "endpoints": ["SendTokenSMS"], "count": 1},
                  timeout=5).raise_for_status()


def test_a_failed_resend_is_taken_back_whole_and_the_first_sends_report_still_counts(
        make_live, simulator):
    live = make_live(OTP_RESEND_COOLDOWN="0")
    outcomes(simulator, **{PHONE: ("lost", None)})
    vid = live.start()["id"]
    before = live.read(vid)
    _refuse_next_send(simulator)
    refused = live.app.test_client().post("/otp/start", json={"phone": PHONE}, headers=AUTH)
    assert refused.status_code == 503
    assert live.read(vid) == before  # sends, expiry, resend time and delivery as they were
    assert awaiting(live) == {trn_for(vid, 1)}

    report = requests.get(fill(live.urls(vid, send=1)["url_delivery"], "0"), timeout=5)
    assert report.status_code == 204
    assert live.read(vid)["delivery_status"] == "delivered"  # send 1 is the latest again


def _two_resends(live):
    """A verification (send 1, no report yet) with sends 2 and 3 reserved as concurrent
    starts do when the cooldown is shorter than a slow gateway call; nothing sent yet."""
    outcomes(live.simulator, **{PHONE: ("lost", None)})
    vid = live.start()["id"]
    store = live.services.store
    ph = store.phone_hash(PHONE)
    base = trn_base(vid)
    before = live.read(vid)

    def reserve(now_ms):
        return store.reserve_send(
            client="acme", phone_hash=ph, seen_pointer=vid, new_id=keys.new_id(ph),
            now_ms=now_ms, cooldown_ms=0, max_sends=5, expires_ms=now_ms + 600_000,
            fields={}, trns=(base, ""))

    now = int(time.time() * 1000)
    second, third = reserve(now + 1000), reserve(now + 2000)
    assert (second.state["sends"], third.state["sends"]) == ("2", "3")

    def undo(reservation):
        return store.undo_send(client="acme", phone_hash=ph, reservation=reservation,
                               seen_pointer=vid, trn=base)

    return vid, before, second, third, undo


@pytest.fixture
def racing(make_live, simulator):
    live = make_live(OTP_RESEND_COOLDOWN="0")
    live.simulator = simulator
    return live


def test_a_failed_send_superseded_by_a_later_one_leaves_the_later_ones_state(racing):
    vid, before, second, third, undo = _two_resends(racing)
    later = racing.read(vid)

    assert undo(second) == "superseded"
    assert racing.read(vid) == later  # send 3 stands; the failed send 2 still counts
    assert awaiting(racing) == {trn_for(vid, 1), trn_for(vid, 3)}

    assert undo(third) == "reverted"  # and if send 3 fails too, neither happened
    assert racing.read(vid) == {**before, "send_count": 2}
    assert racing.record(vid)["delivery_send"] == "1"
    assert awaiting(racing) == {trn_for(vid, 1)}


def test_concurrent_failed_sends_are_taken_back_in_either_order(racing):
    vid, before, second, third, undo = _two_resends(racing)

    assert (undo(third), undo(second)) == ("reverted", "reverted")
    assert racing.read(vid) == before
    assert not [f for f in racing.record(vid) if f.startswith("u")]
    assert undo(second) == "gone"  # taken back once only


def test_a_report_on_the_previous_send_during_a_resend_that_fails_is_not_lost(racing):
    vid, before, second, third, undo = _two_resends(racing)
    undo(third)  # send 2's reservation stands; send 1's report arrives meanwhile
    report = requests.get(fill(racing.urls(vid, send=1)["url_delivery"], "0"), timeout=5)
    assert report.status_code == 204
    assert racing.read(vid)["delivery_status"] == "submitted"  # about send 2, still out

    assert undo(second) == "reverted"
    assert racing.read(vid)["delivery_status"] == "delivered"
    assert awaiting(racing) == set()  # final: nothing left to inquire
