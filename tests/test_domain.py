"""The verification domain on its own: VerificationService on a real redis-server and the
simulator over HTTP, built without Flask (no app, no request), which is what proves the
layering: the domain and the gateway client need nothing of the HTTP layer."""

from __future__ import annotations

import dataclasses
import logging
import subprocess
import sys
import time
from datetime import date, timedelta

import pytest

from service import config
from service.gateway import AspsmsClient
from service.verification import errors, keys
from service.verification.phones import PhonePolicy
from service.verification.policy import Limits
from service.verification.service import Policy, StartRequest, VerificationService
from service.verification.store import VerificationStore
from service.verification.tenant import DEFAULT, Tenant
from tests.conftest import SIM_PASSWORD, SIM_USER, last_code

PHONE, TEST_PHONE = "+41791234567", "+41790000000"
SECRET = b"domain-secret-0123456789"
POLICY = Policy(code_mask="######", validity_minutes=10, max_attempts=3, resend_cooldown=0,
                max_sends=3, max_failures_per_phone=10, originator="Verify")


@pytest.fixture
def clock():
    class Clock:  # Redis expires keys by its own clock: this one starts at the real time
        now = time.time()

        def __call__(self) -> float:
            return self.now

    return Clock()


class Domain:
    """The service, called for one tenant (as the views call it for the request's)."""

    def __init__(self, service: VerificationService, tenant: Tenant):
        self.service, self.tenant, self.events = service, tenant, service.events

    def __getattr__(self, name: str):
        method = getattr(self.service, name)
        return lambda *args, **kwargs: method(self.tenant, *args, **kwargs)


@pytest.fixture
def domain(redis_db, simulator, clock):
    """A service with no limits and no notifier: their null objects stand in."""
    gateway = AspsmsClient(simulator.url, SIM_USER, SIM_PASSWORD, timeout=2)
    events: list[str] = []

    def build(**policy) -> Domain:
        service = VerificationService(
            store=VerificationStore(redis_db, SECRET), gateway=gateway, clock=clock,
            on_event=lambda name, **details: events.append(name))
        service.events = events
        tenant = Tenant(DEFAULT, dataclasses.replace(POLICY, **policy), Limits(), PhonePolicy())
        return Domain(service, tenant)

    yield build
    gateway.close()


def test_the_domain_and_the_gateway_client_import_no_flask_and_nothing_of_http():
    probe = ("import sys, service.verification.service, service.verification.delivery, "
             "service.verification.budgets, service.verification.idempotency, service.gateway; "
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('flask', 'werkzeug') "
             "or m.startswith('service.http')))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_start_sends_a_code_that_checks_once_and_a_wrong_one_spends_an_attempt(
        domain, simulator, redis_db):
    service = domain()
    started = service.start("acme", StartRequest(PHONE))
    assert started.created and started.verification.status == "pending"
    assert redis_db.get(keys.pointer_key("acme", started.verification.phone_hash)) == (
        started.verification.id)
    wrong, valid = service.check("acme", "000000", verification_id=started.verification.id)
    assert (valid, wrong.attempts_remaining) == (False, 2)
    code = last_code(simulator, PHONE)
    approved, valid = service.check("acme", code, phone=PHONE)
    assert valid and approved.status == "approved"
    with pytest.raises(errors.VerificationClosed):
        service.check("acme", code, verification_id=started.verification.id)
    assert service.events == ["sent", "checked", "checked"]


def test_a_resend_goes_to_the_same_verification_under_a_new_token(domain, simulator):
    service = domain()
    first = service.start("acme", StartRequest(PHONE)).verification
    again = service.start("acme", StartRequest(PHONE))
    assert not again.created and again.verification.id == first.id
    assert again.verification.send_count == 2
    assert again.verification.token_reference != first.token_reference
    _, valid = service.check("acme", last_code(simulator, PHONE), verification_id=first.id)
    assert valid


def test_a_verification_past_its_validity_reads_as_expired_and_checks_no_more(
        domain, clock):
    service = domain()
    vid = service.start("acme", StartRequest(PHONE, validity_minutes=1)).verification.id
    clock.now += 61
    assert service.read("acme", vid).status == "expired"
    with pytest.raises(errors.VerificationClosed):
        service.check("acme", "123456", verification_id=vid)


def test_the_last_wrong_code_ends_the_verification(domain):
    service = domain(max_attempts=1)
    vid = service.start("acme", StartRequest(PHONE)).verification.id
    ended, valid = service.check("acme", "000000", verification_id=vid)
    assert (valid, ended.status) == (False, "max_attempts_reached")


def test_a_test_number_is_looked_up_once_per_start_and_once_per_check(domain, caplog):
    entry = config.TestNumber(TEST_PHONE, "424242", date.today() + timedelta(days=1))
    numbers = {TEST_PHONE: entry}
    service = domain(test_numbers=numbers)
    vid = service.start("acme", StartRequest(TEST_PHONE)).verification.id
    assert service.events == ["test_number_used", "sent"]
    numbers[TEST_PHONE] = dataclasses.replace(entry, expires=date.today() - timedelta(days=1))
    with caplog.at_level(logging.WARNING, "service.verification.service"):
        _, valid = service.check("acme", "424242", verification_id=vid)
        assert not valid  # an expired entry approves nothing
        service.start("acme", StartRequest(TEST_PHONE))
    expired = [r for r in caplog.records if "test number entry has expired" in r.message]
    assert len(expired) == 2  # one lookup for the check, one for the start
