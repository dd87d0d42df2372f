"""Services (tenants) in the domain (issue 17), against a real redis-server and the
simulator: each call is handed its tenant, whose policy, limits, budgets and breakers are
its own, and whose verifications and lockouts no other service sees. Two domain instances
with their own connections stand for two service processes sharing one Redis."""

from __future__ import annotations

import dataclasses

import pytest
import redis
import requests

from service.errors import RateLimited
from service.gateway import AspsmsClient
from service.verification import errors, keys
from service.verification.budgets import PhoneLimits
from service.verification.phones import PhonePolicy
from service.verification.policy import Limits, Policy
from service.verification.service import StartRequest, VerificationService
from service.verification.store import VerificationStore
from service.verification.tenant import DEFAULT, Tenant
from tests.conftest import SIM_PASSWORD, SIM_USER, last_code

SECRET = b"services-secret-0123456789"
ROOMY = "1000 per hour"
SIGNUP, LOGIN = "sv_" + "a" * 32, "sv_" + "b" * 32


def tenant(service: str = SIGNUP, *, limits: dict | None = None, **policy) -> Tenant:
    roomy = {name: ROOMY for name in ("start_per_phone", "check_per_phone",
                                      "budget_per_prefix", "budget_per_country",
                                      "budget_global", "start_per_end_user_ip",
                                      "check_per_end_user_ip", "start_per_end_user")}
    return Tenant(service, Policy(originator="Verify", resend_cooldown=0, **policy),
                  Limits(**{**roomy, **(limits or {})}), PhonePolicy())


@pytest.fixture
def processes(redis_server, redis_db, simulator):
    """Two domain instances over one Redis, each with its own connection."""
    made, closing = [], []
    for _ in range(2):
        client = redis.Redis.from_url(redis_server.url, decode_responses=True)
        gateway = AspsmsClient(simulator.url, SIM_USER, SIM_PASSWORD, timeout=2)
        made.append(VerificationService(
            store=VerificationStore(client, SECRET), gateway=gateway,
            limits=PhoneLimits(store_client=client, secret=SECRET)))
        closing += [client, gateway]
    yield made
    for thing in closing:
        thing.close()


def reason(call) -> str | None:
    """None if ``call`` passed, else its refusal's reason."""
    try:
        call()
    except RateLimited as refused:
        return refused.to_problem()["reason"]
    return None


def messages(simulator) -> list[dict]:
    return requests.get(simulator.url + "/_sim/messages", timeout=5).json()


def test_one_services_tripped_prefix_budget_leaves_anothers_sends_while_the_global_cap_binds_both(
        processes, simulator):
    first, second = processes
    budgets = {"budget_per_prefix": "3 per hour", "budget_global": "8 per hour"}
    signup, login = tenant(SIGNUP, limits=budgets), tenant(LOGIN, limits=budgets)

    def send(process, service, number):
        return reason(lambda: process.start(service, "app", StartRequest(number)))

    pumped = [send(first, signup, f"+4179111000{i}") for i in range(5)]
    assert pumped == [None, None, None, "prefix_budget", "prefix_budget"]  # breaker open
    # the same prefix, for the other service, from the other process: untouched
    assert [send(second, login, f"+4179111001{i}") for i in range(3)] == [None] * 3
    # the global cap (8) counts both: 6 sent, 2 more fit, then neither service sends
    assert [send(first, signup, "+41781110000"), send(second, login, "+41771110000")] == [
        None, None]
    assert send(second, login, "+41761110000") == "global_budget"
    assert send(first, signup, "+41751110000") == "global_budget"
    assert len(messages(simulator)) == 8


def test_a_services_own_total_budget_caps_only_its_sends(processes):
    first, second = processes
    capped = tenant(SIGNUP, limits={"budget_total": "2 per hour"})
    other = tenant(LOGIN)
    answers = [reason(lambda n=n: first.start(capped, "app", StartRequest(n)))
               for n in ("+41791110100", "+41781110100", "+41771110100")]
    assert answers == [None, None, "total_budget"]
    assert reason(lambda: second.start(other, "app", StartRequest("+41761110100"))) is None


def test_a_safe_listed_number_is_sent_to_while_its_prefixs_breaker_is_open(
        processes, simulator):
    first, _ = processes
    safe = "+41791110209"
    service = tenant(limits={"budget_per_prefix": "2 per hour", "start_per_phone": "2 per hour"},
                     safe_list=(safe, "+417811"), max_failures_per_phone=1)
    pumped = [reason(lambda i=i: first.start(service, "app", StartRequest(f"+4179111020{i}")))
              for i in range(3)]
    assert pumped == [None, None, "prefix_budget"]  # the prefix +4179111020 is paused
    assert reason(lambda: first.start(service, "app", StartRequest(safe))) is None
    assert messages(simulator)[-1]["recipient"] == safe
    # never exempt from its phone limit, its attempts or its lockout
    assert reason(lambda: first.start(service, "app", StartRequest(safe))) is None
    assert reason(lambda: first.start(service, "app", StartRequest(safe))) == "start_per_phone"
    vid = first.read(service, "app", first.store.pointer("app", first.store.phone_hash(safe)))
    code = last_code(simulator, safe)
    wrong = "".join(str((int(c) + 1) % 10) for c in code)
    assert first.check(service, "app", wrong, verification_id=vid.id)[1] is False
    assert reason(lambda: first.check(service, "app", code, verification_id=vid.id)) == (
        "phone_locked")
    # a safe-listed prefix passes a breaker too, and counts against no budget
    assert [reason(lambda i=i: first.start(service, "app", StartRequest(f"+4178111020{i}")))
            for i in range(3)] == [None, None, None]


def test_a_services_changed_texts_and_limits_apply_to_the_next_request(processes, simulator):
    first, second = processes
    service = tenant(friendly_name="Acme Shop",
                     templates={"en": "{service} login: <VERIFICATIONCODE>", "es":
                                "Tu código de {service}: <VERIFICATIONCODE>"})
    first.start(service, "app", StartRequest("+41791110300"))
    first.start(service, "app", StartRequest("+41791110301", locale="es-ES"))
    first.start(service, "app", StartRequest("+41791110302", locale="de-CH"))
    texts = [m["text"] for m in messages(simulator)]
    assert texts[0].startswith("Acme Shop login: ") and texts[1].startswith("Tu código de Acme")
    assert texts[2].startswith("Acme Shop: Ihr Bestätigungscode lautet ")  # built in, named
    texts = {"en": "New <VERIFICATIONCODE>"}
    changed = dataclasses.replace(
        service, policy=dataclasses.replace(service.policy, templates=texts),
        limits=dataclasses.replace(service.limits, start_per_phone="1 per hour"))
    second.start(changed, "app", StartRequest("+41791110303"))
    assert messages(simulator)[-1]["text"].startswith("New ")
    assert reason(lambda: second.start(changed, "app", StartRequest("+41791110303"))) == (
        "start_per_phone")
    assert reason(lambda: first.start(service, "app", StartRequest("+41791110303"))) is None


def test_a_services_verifications_and_lockouts_are_its_own(processes, simulator, redis_db):
    first, second = processes
    signup = tenant(SIGNUP, max_failures_per_phone=1)
    login = tenant(LOGIN, max_failures_per_phone=1)
    phone = "+41791110400"
    mine = first.start(signup, SIGNUP, StartRequest(phone)).verification
    assert redis_db.hget(keys.verification_key(mine.id), "svc") == SIGNUP
    with pytest.raises(errors.VerificationNotFound):
        second.read(login, SIGNUP, mine.id)  # the same owner name, another service
    with pytest.raises(errors.VerificationNotFound):
        second.check(login, SIGNUP, "123456", verification_id=mine.id)
    assert first.check(signup, SIGNUP, "000000", verification_id=mine.id)[1] is False
    assert reason(lambda: first.check(signup, SIGNUP, "000000", verification_id=mine.id)) == (
        "phone_locked")
    theirs = second.start(login, LOGIN, StartRequest(phone)).verification
    _, valid = second.check(login, LOGIN, last_code(simulator, phone), verification_id=theirs.id)
    assert valid  # the phone is locked for the signup service only


def test_the_default_service_keeps_its_key_names_and_reads_records_made_before_services(
        processes, redis_db):
    first, _ = processes
    default = tenant(DEFAULT, max_failures_per_phone=1)
    started = first.start(default, "acme", StartRequest("+41791110500")).verification
    assert started.service == DEFAULT
    first.check(default, "acme", "000000", verification_id=started.id)
    assert redis_db.exists(keys.failure_key(started.phone_hash)) == 1
    assert redis_db.keys(f"otp:{{{started.phone_hash[:4]}}}:fail:*") == [
        f"otp:{{{started.phone_hash[:4]}}}:fail:{started.phone_hash}"]
    assert {key.split(":")[3] for key in redis_db.keys("otp:{otp-breakers}:w:*")} == {
        "global", "country", "prefix", "start_per_phone"}
    redis_db.hdel(keys.verification_key(started.id), "svc")  # as stored before services
    assert first.read(default, "acme", started.id).id == started.id
    with pytest.raises(errors.VerificationNotFound):
        first.read(tenant(SIGNUP), "acme", started.id)


@pytest.mark.parametrize("call", ["start", "check"])
def test_a_service_that_requires_the_end_user_ip_refuses_a_request_without_it(
        processes, call):
    first, _ = processes
    strict = tenant(require_end_user_ip=True)
    vid = first.start(strict, "app", StartRequest("+41791110600",
                                                  end_user_ip="192.0.2.1")).verification.id
    with pytest.raises(errors.ValidationFailed) as refused:
        if call == "start":
            first.start(strict, "app", StartRequest("+41791110601"))
        else:
            first.check(strict, "app", "123456", verification_id=vid)
    assert refused.value.to_problem()["errors"] == {"end_user_ip": ["Required by this service."]}
    _, valid = first.check(strict, "app", "000000", verification_id=vid, end_user_ip="::1")
    assert valid is False  # with it, the check runs


def test_a_pending_verification_is_checked_by_phone_after_its_country_was_disallowed(
        processes, simulator):
    # the phone rules judge numbers to text, not the verifications already sent: a service
    # that narrows allowed_countries still lets its pending ones be checked by number
    first, _ = processes
    before = tenant()
    first.start(before, "app", StartRequest("+4915112345699"))
    after = dataclasses.replace(before, phones=PhonePolicy(allowed_countries=frozenset({"CH"})))
    with pytest.raises(errors.ServiceError):  # no new code to that country
        first.start(after, "app", StartRequest("+4915112345698"))
    checked, valid = first.check(after, "app", last_code(simulator, "+4915112345699"),
                                 phone="+49 151 12345699")
    assert valid and checked.status == "approved"
