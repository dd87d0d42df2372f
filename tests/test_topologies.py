"""The same service on a standalone Redis, a 3-master Redis Cluster and Redis Sentinel
(issue 9): flow, races and cross-instance limits on each, with two gunicorn service
processes sharing the store; then Sentinel failovers: one in the middle of traffic, one
that loses an approval, and a replica that stops confirming."""

from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pytest
import requests

from service import create_app, storage
from service.verification import errors, keys
from tests.conftest import ADMIN_KEY, CLIENT_KEY, last_code, service_env
from tests.helpers import check, gunicorn, start, wait_for
from tests.topologies import TOPOLOGIES, Sentinel

pytestmark = pytest.mark.slow
AUTH = {"Authorization": f"Bearer {CLIENT_KEY}"}
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
ROOMY = {"OTP_LIMIT_START_PER_PHONE": "4 per hour", "OTP_RESEND_COOLDOWN": "0",
         "OTP_MAX_SENDS": "10", "OTP_LIMIT_START_PER_IP": "3 per hour",
         "OTP_LIMIT_CHECK_PER_IP": "3 per hour"}
UNLIMITED = {name: "100000 per hour" for name in (
    "OTP_LIMIT_START_PER_IP", "OTP_BUDGET_PER_PREFIX", "OTP_BUDGET_PER_COUNTRY",
    "OTP_BUDGET_GLOBAL", "OTP_LIMIT_START_PER_PHONE")}


@pytest.fixture(scope="module", params=sorted(TOPOLOGIES))
def topology(request):
    with TOPOLOGIES[request.param]() as running:
        yield running


@pytest.fixture(scope="module")
def services(topology, simulator_server):
    env = service_env(topology.url, simulator_server.url, **ROOMY)
    with gunicorn(env, workers=1) as first, gunicorn(env, workers=1) as second:
        yield first, second


@pytest.fixture
def fresh(services, topology, simulator):
    for primary in topology.primaries():
        primary.flushall()
        primary.close()
    return services


def wrong(code: str) -> str:
    return "".join(str((int(c) + 1) % 10) for c in code)


def messages(simulator) -> list[dict]:
    return requests.get(simulator.url + "/_sim/messages", timeout=5).json()


def verify_calls(simulator) -> int:
    return requests.get(simulator.url + "/_sim/stats", timeout=5).json()["calls"]["VerifyToken"]


def across(bases, count, action):
    """``action(base)`` ``count`` times at once, alternating between the service processes."""
    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(lambda i: action(bases[i % len(bases)]), range(count)))


@pytest.mark.parametrize(("url", "limits_url", "expected"), [
    ("redis://h:6379/0", "redis://h:6379/0", {}),
    ("redis+cluster://u:p%40ss@a:7000,b:7001", "redis+cluster://u:p%40ss@a:7000,b:7001",
     {"username": "u", "password": "p@ss"}),
    ("rediss+cluster://a:7000", "redis+cluster://a:7000", {"ssl": True}),
    ("rediss+sentinel://u:p%3Aw@s:26379/otp", "redis+sentinel://u:p%3Aw@s:26379/otp",
     {"ssl": True, "password": "p:w", "use_replicas": False}),
])
def test_the_limits_library_connects_as_the_service_does(url, limits_url, expected):
    options = storage.limiter_storage_options(url, 0.5)
    assert storage.limiter_storage_uri(url) == limits_url
    assert options["socket_timeout"] == options["socket_connect_timeout"] == 0.5
    assert expected.items() <= options.items()
    if "sentinel" in url:  # the sentinels: the same credentials, TLS and time-outs
        assert {"password": "p:w", "ssl": True, "socket_timeout": 0.5}.items() \
            <= options["sentinel_kwargs"].items()


def test_a_code_read_from_the_simulator_approves_once(fresh, simulator):
    first, second = fresh
    vid = start(first, AUTH, "+41791130001").json()["id"]
    answer = check(second, AUTH, last_code(simulator, "+41791130001"), id=vid)
    assert answer.status_code == 200 and answer.json()["valid"] is True
    assert check(first, AUTH, last_code(simulator, "+41791130001"), id=vid).status_code == 409


def test_24_concurrent_wrong_checks_reach_the_gateway_at_most_5_times(fresh, simulator):
    vid = start(fresh[0], AUTH, "+41791130002").json()["id"]
    bad = wrong(last_code(simulator, "+41791130002"))
    answers = across(fresh, 24, lambda base: check(base, AUTH, bad, id=vid))
    assert verify_calls(simulator) <= 5
    assert not any(a.status_code == 200 and a.json()["valid"] for a in answers)
    final = requests.get(f"{fresh[1]}/otp/verifications/{vid}", headers=AUTH, timeout=5).json()
    assert final["status"] == "max_attempts_reached"


def test_12_concurrent_right_checks_approve_exactly_once(fresh, simulator):
    vid = start(fresh[0], AUTH, "+41791130003").json()["id"]
    code = last_code(simulator, "+41791130003")
    answers = across(fresh, 12, lambda base: check(base, AUTH, code, id=vid))
    assert sum(a.status_code == 200 and a.json()["valid"] for a in answers) == 1
    assert sorted(a.status_code for a in answers) == [200] + [409] * 11


def test_two_concurrent_starts_with_one_idempotency_key_send_one_sms(fresh, simulator):
    key = {"Idempotency-Key": "one-intent"}
    answers = across(fresh, 2, lambda base: start(base, AUTH, "+41791130004", key))
    assert len(messages(simulator)) == 1
    assert [a.status_code for a in answers] == [201, 201]
    assert answers[0].json()["id"] == answers[1].json()["id"]


def test_exactly_4_of_10_starts_pass_across_two_service_processes(fresh, simulator):
    answers = [start(base, AUTH, "+41791130005") for base in fresh * 5]
    assert sum(a.status_code in (200, 201) for a in answers) == 4
    assert [a.status_code for a in answers].count(429) == 6
    assert len(messages(simulator)) == 4


def test_end_user_limits_hold_across_two_service_processes(fresh, simulator):
    # a start counts its end user with its phone (one slot); a check beside its read, in a
    # slot of the IP's own (on a cluster, most often on another node than the verification)
    starts = [start(base, AUTH, f"+4179113060{i}", end_user_ip="2001:db8:7::1")
              for i, base in enumerate(fresh * 2)]
    assert [a.status_code for a in starts] == [201, 201, 201, 429]
    assert starts[3].json()["reason"] == "start_per_end_user_ip"
    vid = starts[0].json()["id"]
    wrong_code = wrong(last_code(simulator, "+41791130600"))
    checks = [check(base, AUTH, wrong_code, id=vid, end_user_ip="192.0.2.44")
              for base in fresh * 2]
    assert [a.status_code for a in checks] == [200, 200, 200, 429]
    assert checks[3].json()["reason"] == "check_per_end_user_ip"
    code = last_code(simulator, "+41791130600")
    assert check(fresh[1], AUTH, code, id=vid, end_user_ip="192.0.2.45").json()["valid"]


def test_a_managed_service_runs_its_flow_limits_and_budgets_on_the_topology(
        fresh, topology, simulator):
    # the domain as a managed service's request calls it (the registry hands the tenant)
    import dataclasses

    from service.config import load_settings
    from service.verification.budgets import PhoneLimits
    from service.verification.service import StartRequest, VerificationService
    from service.verification.store import VerificationStore
    from service.verification.tenant import Tenant

    settings = load_settings(service_env(topology.url, simulator.url, **ROOMY))
    client = settings.redis.connect()
    domain = VerificationService(
        store=VerificationStore(client, settings.secret), gateway=settings.gateway.client(),
        limits=PhoneLimits(store_client=client, secret=settings.secret))
    service = Tenant("sv_" + "c" * 32, settings.policy, dataclasses.replace(
        settings.limits, budget_per_prefix="2 per hour"), settings.phones)
    started = domain.start(service, service.id, StartRequest(
        "+41791130700", end_user_ip="192.0.2.50", end_user_id="u-1")).verification
    _, valid = domain.check(service, service.id, last_code(simulator, "+41791130700"),
                            verification_id=started.id, end_user_ip="192.0.2.50")
    assert valid and started.service == service.id
    domain.start(service, service.id, StartRequest("+41791130701"))
    with pytest.raises(errors.RateLimited):  # its prefix budget is spent …
        domain.start(service, service.id, StartRequest("+41791130702"))
    # … and only its own: the default service sends to that prefix
    assert start(fresh[0], AUTH, "+41791130703").status_code == 201
    client.close()


def test_a_send_taken_back_after_its_event_failed_a_delivery_is_followed_on_the_topology(
        fresh, topology, simulator):
    """undo_send.lua's keys (the stream's retries among them) share one slot on a cluster:
    an event whose first delivery failed meanwhile (acknowledged, a retry scheduled) is
    kept and followed by verification.canceled."""
    from service.config import load_settings
    from service.errors import ServiceError
    from service.verification.budgets import PhoneLimits
    from service.verification.event_log import EventLog
    from service.verification.service import StartRequest, VerificationService
    from service.verification.store import VerificationStore
    from service.verification.tenant import Tenant
    from service.webhooks.queue import Queue

    settings = load_settings(service_env(topology.url, simulator.url, **ROOMY))
    client = settings.redis.connect()
    events = EventLog(sharded=topology.name == "cluster", enabled=lambda: True)
    store = VerificationStore(client, settings.secret, events)
    domain = VerificationService(store=store, gateway=settings.gateway.client(),
                                 limits=PhoneLimits(store_client=client, secret=settings.secret))
    service = Tenant(keys.DEFAULT, settings.policy, settings.limits, settings.phones)
    stream = events.stream(store.phone_hash("+41791130710")[:4])
    queue = Queue(client, events, "test")
    requests.post(simulator.url + "/_sim/faults", timeout=5,
                  json={"delay": 1.0, "http_status": 503, "endpoints": ["SendTokenSMS"]})

    def first_attempt_fails():  # as the worker does while the gateway is still answering
        [event] = wait_for(lambda: queue.read_new(stream, 10), timeout=5, interval=0.01)
        queue.retry_at(event, 1, 0)

    with ThreadPoolExecutor(1) as pool:
        failing = pool.submit(first_attempt_fails)
        with pytest.raises(ServiceError):
            domain.start(service, service.id, StartRequest("+41791130710"))
        failing.result()
    assert [fields["type"] for _, fields in client.xrange(stream)] == [
        "verification.started", "verification.canceled"]
    client.close()


def test_a_service_key_made_on_one_process_works_on_the_other_and_its_revocation_too(
        fresh, simulator):
    """Issue 17: the services registry under its one hash tag, on every topology; the
    other gunicorn process sees a new key and a revocation within a second."""
    first, second = fresh
    created = requests.post(first + "/admin/services", json={"name": "signup"},
                            headers=ADMIN, timeout=5)
    assert created.status_code == 201
    service_id = created.json()["id"]
    made = requests.post(f"{first}/admin/services/{service_id}/keys", json={"name": "web"},
                         headers=ADMIN, timeout=5).json()
    key = {"Authorization": f"Bearer {made['key']}"}
    wait_for(lambda: start(second, key, phone="+41791110101").status_code == 201, timeout=1)
    revoked = requests.delete(f"{first}/admin/services/{service_id}/keys/{made['key_id']}",
                              headers=ADMIN, timeout=5)
    assert revoked.status_code == 204
    wait_for(lambda: start(second, key, phone="+41791110102").status_code == 401, timeout=1)


def test_the_dashboard_adds_up_the_counts_of_both_processes(fresh, simulator):
    # each process writes its counts in the background, under one hash tag ({otp-stats}):
    # on a cluster one slot, so its pipeline goes to one node. The processes serve the whole
    # module, so counts of earlier tests may still arrive: this test's flows are a service's
    # of their own, and only that service's row is asserted.
    service_id = requests.post(fresh[0] + "/admin/services", json={"name": "dashboard"},
                               headers=ADMIN, timeout=5).json()["id"]
    made = requests.post(f"{fresh[0]}/admin/services/{service_id}/keys", json={"name": "web"},
                         headers=ADMIN, timeout=5).json()
    key = {"Authorization": f"Bearer {made['key']}"}
    wait_for(lambda: requests.get(fresh[1] + "/otp/verifications/vf_0000x", headers=key,
                                  timeout=5).status_code == 404, timeout=2)  # key known there
    vids = [(base, start(base, key, phone).json()["id"], phone)
            for base, phone in zip(fresh * 2, ("+41791130501", "+41791130502",
                                               "+4915112345650", "+4915112345651"),
                                   strict=True)]
    for base, vid, phone in vids[:3]:
        assert check(base, key, last_code(simulator, phone), id=vid).json()["valid"]

    def own_row():
        body = requests.get(fresh[0] + "/admin/stats?window=hour", headers=ADMIN,
                            timeout=5).json()
        row = next((r for r in body["services"] if r["service"] == service_id), {})
        return row if row.get("approved") == 3 else None

    row = wait_for(own_row, timeout=12, interval=0.5)  # the other process: within 5 s
    assert (row["sent"], row["conversion_rate"]) == (4, 0.75)


def test_verifications_land_on_every_primary(fresh, topology):
    for i in range(24):
        assert start(fresh[i % 2], AUTH, f"+417911302{i:02d}").status_code == 201
    held = [len(list(p.scan_iter(keys.ANY_VERIFICATION))) for p in topology.primaries()]
    assert sum(held) == 24 and all(held)
    assert len(held) == (3 if topology.name == "cluster" else 1)


class Traffic:
    """Start/check flows on fresh numbers in a few threads, every answer kept with its time."""

    def __init__(self, base: str, simulator, threads: int = 4):
        self.base, self.simulator = base, simulator
        self.answers: list[tuple[float, requests.Response]] = []
        self.approved: dict[str, tuple[float, str]] = {}  # id -> (when, code)
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(n,)) for n in range(threads)]

    def __enter__(self) -> Traffic:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(30)

    def _keep(self, response: requests.Response) -> requests.Response:
        self.answers.append((time.monotonic(), response))
        return response

    def _run(self, worker: int) -> None:
        for n in range(10**6):
            if self.stop.is_set():
                return
            phone = f"+417912{worker}{n:04d}"
            started = self._keep(start(self.base, AUTH, phone))
            if started.status_code != 201:
                continue
            code = last_code(self.simulator, phone)
            checked = self._keep(check(self.base, AUTH, code, id=started.json()["id"]))
            if checked.status_code == 200 and checked.json()["valid"]:
                self.approved[started.json()["id"]] = (time.monotonic(), code)

    def successes_since(self, moment: float) -> int:
        return sum(1 for when, _ in self.approved.values() if when > moment)


def recorded_references(topology) -> set[str]:
    """The token reference of every verification the (current) primary holds."""
    with topology.primaries()[0] as store:
        return {store.hget(key, "ref") for key in store.scan_iter(keys.ANY_VERIFICATION)}


def test_a_sentinel_failover_answers_503_meanwhile_and_recovers_without_a_restart(
        simulator_server, simulator, record_property):
    with Sentinel() as topology:
        env = service_env(topology.url, simulator.url, REDIS_TIMEOUT="0.5", **UNLIMITED)
        with gunicorn(env, workers=2) as base:
            with Traffic(base, simulator) as traffic:
                wait_for(lambda: len(traffic.approved) >= 10, timeout=20)
                killed = time.monotonic()
                topology.primary.kill()
                topology.wait_for_promotion()
                promoted = time.monotonic()
                wait_for(lambda: traffic.successes_since(promoted) >= 10, timeout=20)
            replays = [check(base, AUTH, code, id=vid)
                       for vid, (when, code) in traffic.approved.items() if when < killed]
        references = recorded_references(topology)
    answers = [response for _, response in traffic.answers]
    assert {a.status_code for a in answers} <= {200, 201, 409, 429, 503}
    assert {a.json()["code"] for a in answers if a.status_code == 503} <= {"store_unavailable"}
    assert {m["token_reference"] for m in messages(simulator)} <= references
    assert replays and not any(r.status_code == 200 and r.json()["valid"] for r in replays)
    outage = [when for when, response in traffic.answers if response.status_code == 503]
    window = (outage[-1] - outage[0]) if outage else 0.0
    record_property("unavailable_seconds", round(window, 2))
    print(f"failover: promoted after {promoted - killed:.2f} s; 503s for {window:.2f} s "
          f"({len(outage)} of {len(answers)} answers)")
    assert window < promoted - killed + 2


def until_decided(call, timeout: float = 30) -> list[requests.Response]:
    """Repeat ``call`` while it answers "not now"; every answer, the deciding one last."""
    answers, deadline = [call()], time.monotonic() + timeout
    while answers[-1].json().get("code") in ("check_in_progress", "store_unavailable"):
        assert time.monotonic() < deadline, "no decision in time"
        time.sleep(0.05)
        answers.append(call())
    return answers


def test_an_approval_lost_in_a_failover_is_not_given_again_for_any_code(
        simulator_server, simulator):
    with (Sentinel() as topology,
          gunicorn(service_env(topology.url, simulator.url, ASPSMS_TIMEOUT="1.5"),
                   workers=1) as base,
          ThreadPoolExecutor(1) as pool):
        started = start(base, AUTH, "+41791130100")
        assert started.status_code == 201, started.text
        vid, code = started.json()["id"], last_code(simulator, "+41791130100")
        requests.post(simulator.url + "/_sim/faults", timeout=5,
                      json={"delay": 1.0, "endpoints": ["VerifyToken"], "count": 1})
        approving = pool.submit(check, base, AUTH, code, id=vid)
        # the gateway has the call, so the claim is on the replica; its answer is 1 s away
        wait_for(lambda: verify_calls(simulator) == 1, timeout=5, interval=0.01)
        with topology.replication_stalled():
            assert approving.result().json()["valid"] is True
            topology.primary.kill()
        topology.wait_for_promotion()
        with topology.primaries()[0] as store:  # the approval really was lost
            assert store.hget(keys.verification_key(vid), "status") == "pending"
        answers = until_decided(lambda: check(base, AUTH, wrong(code), id=vid))
    assert {a.status_code for a in answers} <= {409, 503}
    # the unsettled claim is settled as an unknown outcome: no code is checked again
    # until a new one is sent
    assert answers[-1].json()["code"] == "resend_required"
    assert verify_calls(simulator) == 1


def test_while_no_replica_confirms_nothing_is_sent_and_no_code_reaches_the_gateway(
        simulator_server, simulator):
    with (Sentinel() as topology,
          gunicorn(service_env(topology.url, simulator.url), workers=1) as base):
        vid = start(base, AUTH, "+41791130200").json()["id"]
        code = last_code(simulator, "+41791130200")
        with topology.replication_stalled():
            refused = [check(base, AUTH, code, id=vid), start(base, AUTH, "+41791130201")]
        afterwards = check(base, AUTH, code, id=vid)
    assert [r.json()["code"] for r in refused] == ["store_unavailable"] * 2
    assert verify_calls(simulator) == 1 and len(messages(simulator)) == 1
    assert afterwards.json()["valid"] is True


# -- a frozen store ---------------------------------------------------------------------
FROZEN_CALLS = [
    ("POST", "/otp/start", {"phone": "+41791130300"}),
    ("POST", "/otp/check", {"phone": "+41791130300", "code": "000000"}),
    ("GET", "/otp/verifications/vf_0000AAAAAAAAAAAAAAAAAAAAAA", None),
    ("GET", "/readyz", None),
]


def _nodes(topology) -> list:
    return getattr(topology, "nodes", None) or [
        getattr(topology, name) for name in ("node", "primary", "replica", "sentinel")
        if hasattr(topology, name)]


@contextmanager
def frozen(topology):
    """Every process of the topology stopped (SIGSTOP): connections open, nothing answers."""
    for node in _nodes(topology):
        os.kill(node.process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for node in _nodes(topology):
            os.kill(node.process.pid, signal.SIGCONT)


@pytest.mark.parametrize("name", sorted(TOPOLOGIES))
def test_a_frozen_store_answers_503_within_redis_timeout_and_then_recovers(
        simulator, name):
    timeout = 1.0
    with TOPOLOGIES[name]() as topology:
        app = create_app(service_env(topology.url, simulator.url, REDIS_TIMEOUT=str(timeout),
                                     **ROOMY))
        http = app.test_client()
        assert http.post("/otp/start", json={"phone": "+41791130300"},
                         headers=AUTH).status_code == 201
        with frozen(topology):
            for attempt in range(2):  # the second after the first broke its connections
                for method, path, body in FROZEN_CALLS:
                    began = time.monotonic()
                    answer = http.open(path, method=method, json=body, headers=AUTH)
                    elapsed = time.monotonic() - began
                    assert answer.status_code == 503, (path, answer.get_json())
                    body = answer.get_json()  # /readyz says so in its own words
                    assert body.get("code", body.get("status")) in ("store_unavailable",
                                                                    "not_ready")
                    assert elapsed < timeout + 0.5, (path, attempt, elapsed)
        wait_for(lambda: http.get("/readyz").status_code == 200, timeout=15)
        wait_for(lambda: http.post("/otp/start", json={"phone": "+41791130301"},
                                   headers=AUTH).status_code == 201, timeout=15)


@pytest.mark.parametrize(("frozen_before", "headers"), [
    ("service.verification.budgets.PhoneLimits._count", {}),  # after the send's reservation
    ("service.verification.store.VerificationStore.reserve_send",  # after the key's claim
     {"Idempotency-Key": "frozen-1"}),
])
def test_a_store_frozen_in_the_middle_of_a_start_is_waited_for_once(
        simulator, monkeypatch, frozen_before, headers):
    # What the request would do next (undo the reservation, release the claim) would wait
    # the timeout a second time: a 503 after 2 x REDIS_TIMEOUT.
    import importlib

    module_name, class_name, method = frozen_before.rsplit(".", 2)
    owner = getattr(importlib.import_module(module_name), class_name)
    timeout = 1.0
    with TOPOLOGIES["standalone"]() as topology:
        app = create_app(service_env(topology.url, simulator.url, REDIS_TIMEOUT=str(timeout),
                                     **ROOMY))
        original = getattr(owner, method)

        def freeze_then_call(self, *args, **kwargs):
            os.kill(topology.node.process.pid, signal.SIGSTOP)
            return original(self, *args, **kwargs)

        monkeypatch.setattr(owner, method, freeze_then_call)
        try:
            began = time.monotonic()
            answer = app.test_client().post("/otp/start", json={"phone": "+41791130310"},
                                            headers={**AUTH, **headers})
            elapsed = time.monotonic() - began
        finally:
            os.kill(topology.node.process.pid, signal.SIGCONT)
        monkeypatch.undo()
        assert answer.status_code == 503 and answer.get_json()["code"] == "store_unavailable"
        assert elapsed < timeout + 0.5
        # the next request waits again if it must: the mark was this request's only
        again = app.test_client().post("/otp/start", json={"phone": "+41791130311"},
                                       headers=AUTH)
        assert again.status_code == 201
