"""Prometheus metrics: what the service did, counted with bounded labels only.

No label ever holds a phone number, a verification id, a key name or an IP address
(docs/security.md 6): countries are ISO alpha-2 codes, everything else comes from small fixed
sets, and any value outside its set is counted as ``other``.

Under gunicorn the metrics live in ``PROMETHEUS_MULTIPROC_DIR`` (prometheus-client decides
at import time), one file per worker, and ``/metrics`` adds them up; ``gunicorn_conf``
creates and cleans that directory.
"""

from __future__ import annotations

import os
import re
from typing import Any

import phonenumbers
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)

from service.events import Event

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,39}")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_GATEWAY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# The *_created series double the output and no alert or dashboard here reads them.
disable_created_metrics()

STARTS = Counter("otp_starts_total",
                 "Sends that got past every check, by outcome (sent, test_number, send_failed)",
                 ["outcome"])
SMS_SENT = Counter("otp_sms_sent_total", "Verification SMS accepted by the gateway", ["country"])
SMS_FAILED = Counter("otp_sms_failed_total", "Verification SMS the gateway did not take",
                     ["country"])
CHECKS = Counter("otp_checks_total", "Code checks, by outcome (approved, rejected, locked)",
                 ["outcome"])
APPROVALS = Counter("otp_approvals_total", "Verifications approved (test numbers excluded)",
                    ["country"])
TEST_NUMBER_USES = Counter("otp_test_number_uses_total", "Codes 'sent' to configured test numbers")
LIMIT_HITS = Counter("otp_limit_hits_total", "Requests refused by a limit or budget", ["limit"])
STORE_ERRORS = Counter("otp_store_errors_total",
                       "State store (Redis) failures: 'response' counts 503 store_unavailable "
                       "answers, 'call' failures reported by the code that saw them", ["source"])
DELIVERY_REPORTS = Counter("otp_delivery_reports_total",
                           "Delivery reports from the gateway, by status and reason class",
                           ["status", "reason_class"])
BREAKER_TRIPS = Counter("otp_breaker_trips_total", "Circuit breakers or budgets that opened",
                        ["kind"])
PROBLEMS = Counter("otp_problems_total", "Problem responses by route template and problem code",
                   ["route", "code"])
GATEWAY_CALLS = Counter("aspsms_calls_total", "ASPSMS gateway calls by endpoint and outcome",
                        ["endpoint", "outcome"])
GATEWAY_SECONDS = Histogram("aspsms_call_duration_seconds", "ASPSMS gateway call latency",
                            ["endpoint"], buckets=_GATEWAY_BUCKETS)
GATEWAY_CREDITS = Gauge("aspsms_credits",
                        "Credits left on the ASPSMS account as the gateway last reported "
                        "(read again by a scrape when older than 5 minutes)",
                        multiprocess_mode="mostrecent")
WEBHOOK_DELIVERIES = Counter(
    "otp_webhook_deliveries_total",
    "Webhook delivery attempts by outcome (delivered, rejected: a non-2xx answer, timeout, "
    "error: no connection, refused: a private address, unsigned: no secret yet, failed: "
    "given up after a day, skipped: the service takes no such event)", ["outcome"])
WEBHOOK_RETRY_BACKLOG = Gauge("otp_webhook_retry_backlog",
                              "Webhook events waiting for another delivery attempt",
                              multiprocess_mode="max")
WEBHOOK_OLDEST_SECONDS = Gauge("otp_webhook_oldest_undelivered_seconds",
                               "Age of the oldest event not yet delivered (0: none)",
                               multiprocess_mode="max")
HTTP_REQUESTS = Counter("http_requests_total", "HTTP requests by method, route template, status",
                        ["method", "route", "status"])
HTTP_SECONDS = Histogram("http_request_duration_seconds", "HTTP request duration",
                         ["method", "route"])

def bounded(value: Any) -> str:
    """``value`` if it is a short identifier, else ``other``: labels stay a small set."""
    return value if isinstance(value, str) and _NAME.fullmatch(value) else "other"


def bounded_country(value: Any) -> str:
    return value if value in phonenumbers.SUPPORTED_REGIONS else "ZZ"


# -- functions other modules call ----------------------------------------------------------

def count_limit_hit(name: str) -> None:
    """A limit or budget refused a request (``name``: e.g. ``start_per_phone``)."""
    LIMIT_HITS.labels(limit=bounded(name)).inc()


def count_store_error(source: str = "call") -> None:
    STORE_ERRORS.labels(source=bounded(source)).inc()


def count_breaker_trip(kind: str) -> None:
    BREAKER_TRIPS.labels(kind=bounded(kind)).inc()


_WEBHOOK_OUTCOMES = frozenset({"delivered", "rejected", "timeout", "error", "refused",
                               "unsigned", "failed", "skipped"})


def count_webhook_delivery(outcome: str) -> None:
    WEBHOOK_DELIVERIES.labels(outcome=outcome if outcome in _WEBHOOK_OUTCOMES else "other").inc()


def set_webhook_backlog(retries: int, oldest_seconds: float) -> None:
    """The workers' view of the event streams (each worker sets the same values)."""
    WEBHOOK_RETRY_BACKLOG.set(retries)
    WEBHOOK_OLDEST_SECONDS.set(oldest_seconds)


def record_credits(credits: float) -> None:
    GATEWAY_CREDITS.set(credits)


def observe_gateway_call(endpoint: str, outcome: str, seconds: float) -> None:
    """The gateway client's ``on_call`` hook."""
    GATEWAY_CALLS.labels(endpoint=bounded(endpoint), outcome=bounded(outcome)).inc()
    GATEWAY_SECONDS.labels(endpoint=bounded(endpoint)).observe(seconds)


# -- HTTP --------------------------------------------------------------------------------

def observe_request(method: str, route: str, status: int, seconds: float,
                    problem_code: str | None) -> None:
    """One finished request; ``problem_code``: the code of its problem answer, if it was one."""
    method = method if method in _METHODS else "OTHER"
    HTTP_REQUESTS.labels(method=method, route=route, status=str(status)).inc()
    HTTP_SECONDS.labels(method=method, route=route).observe(seconds)
    if problem_code is None:
        return
    code = bounded(problem_code)
    PROBLEMS.labels(route=route, code=code).inc()
    if code == "store_unavailable":
        count_store_error("response")


# -- domain events -----------------------------------------------------------------------

def _sent(country: str = "ZZ", test: bool = False, **_: Any) -> None:
    if test:
        STARTS.labels(outcome="test_number").inc()
        return
    STARTS.labels(outcome="sent").inc()
    SMS_SENT.labels(country=bounded_country(country)).inc()


def _send_failed(country: str = "ZZ", **_: Any) -> None:
    STARTS.labels(outcome="send_failed").inc()
    SMS_FAILED.labels(country=bounded_country(country)).inc()


def _checked(verification: Any = None, valid: bool = False, **_: Any) -> None:
    CHECKS.labels(outcome="approved" if valid else "rejected").inc()
    if valid and verification is not None and not getattr(verification, "test", False):
        APPROVALS.labels(country=bounded_country(getattr(verification, "country", "ZZ"))).inc()


def _phone_locked(**_: Any) -> None:
    CHECKS.labels(outcome="locked").inc()


def _test_number_used(**_: Any) -> None:
    TEST_NUMBER_USES.inc()


def _limit_hit(limit: str = "unknown", **_: Any) -> None:
    count_limit_hit(limit)


def _breaker_tripped(kind: str = "unknown", **_: Any) -> None:
    count_breaker_trip(kind)


def _delivery(status: str = "unknown", reason_class: str = "unknown", **_: Any) -> None:
    DELIVERY_REPORTS.labels(status=bounded(status), reason_class=bounded(reason_class)).inc()


def _credits(credits: float | None = None, **_: Any) -> None:
    if credits is not None:
        record_credits(float(credits))


# Every event counts somewhere (tests/test_metrics.py holds this table to Event).
ON_EVENT = {Event.SENT: _sent, Event.SEND_FAILED: _send_failed, Event.CHECKED: _checked,
            Event.PHONE_LOCKED: _phone_locked, Event.TEST_NUMBER_USED: _test_number_used,
            Event.LIMIT_HIT: _limit_hit, Event.BREAKER_TRIPPED: _breaker_tripped,
            Event.DELIVERY: _delivery, Event.CREDITS: _credits}


def on_event(name: Event, **details: Any) -> None:
    """Listener for :class:`service.events.Events`."""
    ON_EVENT[name](**details)


def subscribe(events) -> None:
    events.subscribe(on_event)


# -- exposition --------------------------------------------------------------------------

def exposition() -> tuple[bytes, str]:
    """The text format; under gunicorn the sum over every worker's files."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
