"""Prometheus metrics: what is counted, with which labels, and summed across workers."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from service import metrics
from service.admin.credits import REFRESH_SECONDS
from service.events import Event, Events
from tests.conftest import CLIENT_KEY, last_code, service_env
from tests.helpers import free_port, gateway_calls, gunicorn, sim, start

PHONE = "+41791234567"


def samples(text: str) -> dict[str, float]:
    """``name{label="value",…}`` → value, for every sample of the exposition."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            found[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return found


class Scrape:
    """Scrapes /metrics of an app; ``grown()`` is what changed since the last scrape."""

    def __init__(self, http):
        self.http = http
        self.last = self.now()

    def now(self) -> dict[str, float]:
        return samples(self.http.get("/metrics").get_data(as_text=True))

    def grown(self) -> dict[str, float]:
        current = self.now()
        changed = {k: v - self.last.get(k, 0.0) for k, v in current.items()
                   if v != self.last.get(k, 0.0)}
        self.last = current
        return changed


@pytest.fixture
def scrape(http):
    return Scrape(http)

def fault(simulator, **spec):
    requests.post(simulator.url + "/_sim/faults", json=spec, timeout=5).raise_for_status()


def test_metrics_are_served_in_the_prometheus_text_format(http):
    response = http.get("/metrics")

    assert response.status_code == 200
    assert response.content_type.startswith("text/plain; version=")
    names = {family.name for family in text_string_to_metric_families(response.get_data(True))}
    assert {"otp_starts", "otp_checks", "aspsms_calls", "http_requests"} <= names


def test_a_sent_code_and_its_approval_are_counted_with_the_country(
        http, auth, simulator, scrape):
    vid = start(http, auth).json["id"]
    http.post("/otp/check", json={"id": vid, "code": last_code(simulator, PHONE)}, headers=auth)

    grown = scrape.grown()
    assert grown['otp_starts_total{outcome="sent"}'] == 1
    assert grown['otp_sms_sent_total{country="CH"}'] == 1
    assert grown['otp_checks_total{outcome="approved"}'] == 1
    assert grown['otp_approvals_total{country="CH"}'] == 1
    assert grown['aspsms_calls_total{endpoint="SendTokenSMS",outcome="ok"}'] == 1
    assert grown['aspsms_calls_total{endpoint="VerifyToken",outcome="ok"}'] == 1
    assert grown['aspsms_call_duration_seconds_count{endpoint="SendTokenSMS"}'] == 1
    assert grown['http_requests_total{method="POST",route="/otp/start",status="201"}'] == 1


def test_a_wrong_code_is_counted_as_rejected_and_approves_nothing(http, auth, simulator, scrape):
    vid = start(http, auth).json["id"]
    code = last_code(simulator, PHONE)
    wrong = "".join(str((int(c) + 1) % 10) for c in code)
    http.post("/otp/check", json={"id": vid, "code": wrong}, headers=auth)

    grown = scrape.grown()
    assert grown['otp_checks_total{outcome="rejected"}'] == 1
    assert not any(key.startswith("otp_approvals_total") for key in grown)


@pytest.mark.parametrize("spec, outcome, problem", [
    ({"status_code": "5"}, "status_error", "upstream_insufficient_credits"),
    ({"http_status": 503}, "protocol_error", "upstream_error"),
])
def test_a_failed_send_is_counted_by_gateway_outcome_country_and_problem(
        http, auth, simulator, scrape, spec, outcome, problem):
    fault(simulator, endpoints=["SendTokenSMS"], **spec)

    start(http, auth)

    grown = scrape.grown()
    assert grown['otp_starts_total{outcome="send_failed"}'] == 1
    assert grown['otp_sms_failed_total{country="CH"}'] == 1
    assert grown[f'aspsms_calls_total{{endpoint="SendTokenSMS",outcome="{outcome}"}}'] == 1
    assert grown[f'otp_problems_total{{code="{problem}",route="/otp/start"}}'] == 1
    assert "otp_sms_sent_total" not in "".join(grown)


def test_a_resend_inside_the_cooldown_counts_one_limit_hit_named_after_the_limit(
        http, auth, scrape):
    start(http, auth)
    assert start(http, auth).status_code == 429

    grown = scrape.grown()
    assert grown['otp_limit_hits_total{limit="resend_cooldown"}'] == 1


def test_a_request_refused_by_the_client_limit_is_counted_once(make_app, auth):
    http = make_app(OTP_LIMIT_PER_CLIENT="2 per minute").test_client()
    scrape = Scrape(http)
    statuses = [http.get("/otp/verifications/vf_unknown", headers=auth).status_code
                for _ in range(3)]

    assert statuses == [404, 404, 429]
    hits = {k: v for k, v in scrape.grown().items() if k.startswith("otp_limit_hits_total")}
    assert hits == {'otp_limit_hits_total{limit="per_client"}': 1}


def test_a_store_outage_answered_with_503_is_counted(redis_db, simulator, auth):
    from service import create_app

    app = create_app(service_env(f"redis://127.0.0.1:{free_port()}/0", simulator.url,
                                 REDIS_TIMEOUT="0.2"))
    http = app.test_client()
    scrape = Scrape(http)

    assert start(http, auth).json["code"] == "store_unavailable"
    assert scrape.grown()['otp_store_errors_total{source="response"}'] == 1


def test_routes_are_labelled_by_template_and_unknown_paths_share_one_label(http, auth, scrape):
    vid = start(http, auth).json["id"]
    http.get("/otp/verifications/" + vid, headers=auth)
    http.get("/no/such/path/" + PHONE)

    grown = scrape.grown()
    template = "/otp/verifications/<verification_id>"
    assert grown[f'http_requests_total{{method="GET",route="{template}",status="200"}}'] == 1
    assert grown['http_requests_total{method="GET",route="unmatched",status="404"}'] == 1


def test_no_label_holds_a_phone_number_id_key_name_or_address(http, auth, simulator):
    vid = start(http, auth).json["id"]
    http.post("/otp/check", json={"phone": PHONE, "code": "000000"}, headers=auth)
    http.get("/otp/verifications/" + vid, headers=auth)

    text = http.get("/metrics").get_data(as_text=True)
    for value in ["791234567", vid, "acme", CLIENT_KEY, "127.0.0.1"]:
        assert value not in text


@pytest.mark.parametrize("record, sample", [
    (lambda events: metrics.count_limit_hit("start_per_phone"),
     'otp_limit_hits_total{limit="start_per_phone"}'),
    (lambda events: metrics.count_limit_hit(PHONE), 'otp_limit_hits_total{limit="other"}'),
    (lambda events: metrics.count_limit_hit("prefix\n"), 'otp_limit_hits_total{limit="other"}'),
    (lambda events: metrics.count_breaker_trip("country"),
     'otp_breaker_trips_total{kind="country"}'),
    (lambda events: metrics.count_store_error(), 'otp_store_errors_total{source="call"}'),
    (lambda events: events("limit_hit", limit="prefix"), 'otp_limit_hits_total{limit="prefix"}'),
    (lambda events: events("breaker_tripped", kind="global"),
     'otp_breaker_trips_total{kind="global"}'),
    (lambda events: events("sent", country="+41791234567", test=False),
     'otp_sms_sent_total{country="ZZ"}'),
    (lambda events: events("sent", country="CH", test=True),
     'otp_starts_total{outcome="test_number"}'),
    (lambda events: events("test_number_used"), "otp_test_number_uses_total"),
    (lambda events: events("phone_locked"), 'otp_checks_total{outcome="locked"}'),
    (lambda events: events("delivery", status="delivered", reason_class="subscriber"),
     'otp_delivery_reports_total{reason_class="subscriber",status="delivered"}'),
], ids=["limit", "unbounded-limit", "newline-limit", "breaker", "store", "limit-event",
        "breaker-event", "bad-country", "test-number-start", "test-number-use", "locked",
        "delivery"])
def test_counting_functions_and_domain_events_reach_their_counter(app, scrape, record, sample):
    record(app.extensions["otp"].events)

    assert scrape.grown()[sample] == 1


@pytest.mark.parametrize("report", [
    lambda events, value: metrics.record_credits(value),
    lambda events, value: events("credits", credits=value),
], ids=["function", "event"])
def test_the_credits_gauge_shows_the_last_value_seen(app, scrape, report):
    report(app.extensions["otp"].events, 41.5)
    report(app.extensions["otp"].events, 40.25)

    assert scrape.now()["aspsms_credits"] == 40.25


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def credit_checks(simulator) -> int:
    return gateway_calls(simulator).get("CheckCredits", 0)


def test_a_scrape_shows_the_gateways_balance_and_refreshes_it_after_the_interval(
        app, simulator):
    clock = Clock()
    app.extensions["otp"].admin.credits.clock = clock
    http = app.test_client()
    sim(simulator, "POST", "/_sim/reset", json={"credits": "1234.5"})
    assert Scrape(http).now()["aspsms_credits"] == 1234.5
    assert credit_checks(simulator) == 1

    sim(simulator, "POST", "/_sim/reset", json={"credits": "432"})
    clock.now += REFRESH_SECONDS - 1  # within the interval: no gateway call per scrape
    assert Scrape(http).now()["aspsms_credits"] == 1234.5
    assert credit_checks(simulator) == 0  # (the reset cleared the simulator's counts)
    clock.now += 1
    assert Scrape(http).now()["aspsms_credits"] == 432
    assert credit_checks(simulator) == 1


def test_an_admin_credits_call_updates_the_gauge_at_once(app, simulator, admin_auth):
    app.extensions["otp"].admin.credits.clock = Clock()
    http = app.test_client()
    Scrape(http)
    sim(simulator, "POST", "/_sim/reset", json={"credits": "77"})
    assert http.get("/admin/credits", headers=admin_auth).get_json() == {"credits": 77}
    assert Scrape(http).now()["aspsms_credits"] == 77
    assert credit_checks(simulator) == 1  # the admin's call; the scrape asked nothing


def test_a_failed_refresh_keeps_the_last_balance_and_waits_for_the_interval(app, simulator):
    clock = Clock()
    app.extensions["otp"].admin.credits.clock = clock
    http = app.test_client()
    sim(simulator, "POST", "/_sim/reset", json={"credits": "900"})
    Scrape(http)
    fault(simulator, http_status=500, endpoints=["CheckCredits"])
    clock.now += REFRESH_SECONDS
    for _ in range(3):
        response = http.get("/metrics")
        assert response.status_code == 200
        assert samples(response.get_data(as_text=True))["aspsms_credits"] == 900
    assert credit_checks(simulator) == 2  # the first reading and one failed refresh


# -- under gunicorn ----------------------------------------------------------------------

def _stale_counter(directory: str) -> None:
    """A file a previous run left behind: 1000 /readyz requests that must not be added."""
    code = ("from service import metrics; "
            "metrics.HTTP_REQUESTS.labels('GET', '/readyz', '200').inc(1000)")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=20,
                   env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": directory})


@pytest.mark.slow
def test_under_two_recycled_gunicorn_workers_the_totals_add_up(
        redis_db, redis_server, simulator, tmp_path):
    directory = str(tmp_path / "prometheus")
    os.mkdir(directory)
    _stale_counter(directory)
    env = service_env(redis_server.url, simulator.url, PROMETHEUS_MULTIPROC_DIR=directory,
                      GUNICORN_CMD_ARGS="-c python:service.gunicorn_conf --max-requests 7")
    auth = {"Authorization": f"Bearer {CLIENT_KEY}"}
    with gunicorn(env, workers=2) as base:
        ready = [requests.get(base + "/readyz", timeout=10).status_code for _ in range(24)]
        sent = [requests.post(base + "/otp/start", json={"phone": f"+41 79 {i:03d} 45 67"},
                              headers=auth, timeout=10).status_code for i in range(100, 112)]
        text = requests.get(base + "/metrics", timeout=10).text

    found = samples(text)
    assert ready == [200] * 24 and sent == [201] * 12
    assert found['http_requests_total{method="GET",route="/readyz",status="200"}'] == 24
    assert found['http_requests_total{method="POST",route="/otp/start",status="201"}'] == 12
    assert found['otp_sms_sent_total{country="CH"}'] == 12
    assert found['aspsms_calls_total{endpoint="SendTokenSMS",outcome="ok"}'] == 12
    workers = {name.rsplit("_", 1)[1] for name in os.listdir(directory)
               if name.startswith("counter_")}
    assert len(workers) >= 3, "max-requests recycled the workers; each wrote its own file"


def test_every_event_is_counted_somewhere():
    assert set(metrics.ON_EVENT) == set(Event)


def test_the_bus_refuses_an_event_nobody_defined():
    seen = []
    events = Events()
    events.subscribe(lambda name, **details: seen.append(name))

    with pytest.raises(ValueError):
        events("credit", credits=1)  # a typo of Event.CREDITS

    events(Event.CREDITS, credits=1)
    assert seen == [Event.CREDITS]
