"""Phone limits and budgets (service/verification/budgets.py, count_limits.lua) against a
real redis-server: all or nothing, breakers, and one round trip per request."""

from __future__ import annotations

import pytest

from service.errors import RateLimited
from service.verification.budgets import PhoneLimits
from service.verification.phones import PhonePolicy
from service.verification.policy import Limits, Policy
from service.verification.tenant import DEFAULT, Tenant
from tests.conftest import last_code

ROOMY = "1000 per hour"
PHONES = PhonePolicy()


def tenant(service: str = DEFAULT, **settings: str) -> Tenant:
    values = {"start_per_phone": ROOMY, "check_per_phone": ROOMY, "budget_per_prefix": ROOMY,
              "budget_per_country": ROOMY, "budget_global": ROOMY, **settings}
    return Tenant(service, Policy(originator="Verify"), Limits(**values), PHONES)


def limits(redis_db, clock=None, **settings: str) -> PhoneLimits:
    """PhoneLimits, with the tenant it counts for (``.tenant``) and the events it said."""
    events = []
    made = PhoneLimits(store_client=redis_db, secret=b"test-secret", on_event=(
        lambda name, **details: events.append((name, details))),
        **({"clock": clock} if clock else {}))
    made.events, made.tenant = events, tenant(**settings)
    return made


def send(phone_limits: PhoneLimits, number: str, for_tenant: Tenant | None = None,
         **options) -> str | None:
    """None if counted, else the refusal's reason."""
    phone = PHONES.parse(number)
    try:
        phone_limits.count_send(for_tenant or phone_limits.tenant, phone, "ph-" + number,
                                **options)
    except RateLimited as refused:
        return refused.to_problem()["reason"]
    return None


def test_a_send_refused_by_one_budget_is_counted_by_none_of_the_others(redis_db):
    budgets = limits(redis_db, budget_per_prefix="2 per hour", budget_global="3 per hour")
    assert [send(budgets, f"+4179111000{i}") for i in range(3)] == [None, None,
                                                                    "prefix_budget"]
    # the refused send did not spend the global budget: one more fits elsewhere
    assert send(budgets, "+41781110000") is None
    assert send(budgets, "+41771110000") == "global_budget"


def test_every_item_of_a_multi_item_limit_is_enforced(redis_db):
    budgets = limits(redis_db, start_per_phone="3 per hour;2 per minute")
    answers = [send(budgets, "+41791110100") for _ in range(3)]
    assert answers == [None, None, "start_per_phone"]


def test_a_spent_budget_trips_its_breaker_for_the_whole_window(redis_db):
    now = [1_000_000.0]
    budgets = limits(redis_db, clock=lambda: now[0], budget_per_country="2 per minute")
    assert [send(budgets, f"+4179111020{i}") for i in range(3)] == [None, None,
                                                                    "country_budget"]
    # the event names the breaker (the dashboard reads its state) and the phone's country
    assert ("breaker_tripped", {"kind": "country", "country": "CH", "service": "default",
                                "breaker": PhoneLimits.breaker_key("country", "CH")}
            ) in budgets.events
    now[0] += 59  # the counted sends are still in the window; the breaker also holds
    assert send(budgets, "+41781110200") == "country_budget"
    now[0] += 2  # the window has passed: the breaker expired with its key
    redis_db.delete(*redis_db.keys(PhoneLimits.breaker_key("country", "*")))
    assert send(budgets, "+41781110201") is None


def test_an_open_breaker_refuses_before_anything_is_counted(redis_db):
    budgets = limits(redis_db, budget_per_prefix="1 per hour")
    assert send(budgets, "+41791110300") is None
    assert send(budgets, "+41791110301") == "prefix_budget"  # trips the breaker
    before = {key: redis_db.lrange(key, 0, -1) for key in redis_db.keys("otp:*:w:*")}
    assert send(budgets, "+41791110302") == "prefix_budget"
    assert {key: redis_db.lrange(key, 0, -1) for key in redis_db.keys("otp:*:w:*")} == before


def _commands(redis_db) -> dict[str, int]:
    stats = redis_db.info("commandstats")
    return {name.removeprefix("cmdstat_"): value["calls"] for name, value in stats.items()}


@pytest.mark.parametrize("refused", [False, True])
def test_a_send_costs_one_round_trip_whatever_the_number_of_limits(redis_db, refused):
    many = "5 per minute;50 per hour;500 per day"
    budgets = limits(redis_db, start_per_phone=many, budget_per_prefix=many,
                     budget_per_country=many, budget_global="1 per hour" if refused else many)
    send(budgets, "+41791110400")  # loads the script
    redis_db.config_resetstat()
    send(budgets, "+41791110401")
    calls = _commands(redis_db)
    calls.pop("config|resetstat", None)
    calls.pop("info", None)
    assert calls.pop("evalsha") == 1
    assert set(calls) <= {"get", "lindex", "lpush", "ltrim", "pexpire", "set"}  # in Lua


def test_the_check_limit_counts_only_checks_that_reach_the_gateway(make_app, simulator, auth):
    http = make_app(OTP_LIMIT_CHECK_PER_PHONE="2 per minute", OTP_MAX_ATTEMPTS="5",
                    OTP_MAX_FAILURES_PER_PHONE="10").test_client()
    phone = "+41791110500"
    ident = http.post("/otp/start", json={"phone": phone}, headers=auth).get_json()["id"]
    code = last_code(simulator, phone)
    wrong = "".join(str((int(c) + 1) % 10) for c in code)

    def check(typed):
        return http.post("/otp/check", json={"id": ident, "code": typed}, headers=auth)

    assert check("not-a-code").status_code == 422  # refused before the claim: not counted
    assert [check(wrong).get_json()["valid"] for _ in range(2)] == [False, False]
    refused = check(code)
    assert refused.status_code == 429 and refused.get_json()["reason"] == "check_per_phone"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["X-RateLimit-Limit"] == "2"
    status = http.get(f"/otp/verifications/{ident}", headers=auth).get_json()
    assert status["attempts_remaining"] == 3  # the refused check spent no attempt


def test_a_checks_end_user_count_beside_its_read_survives_a_flushed_script_cache(redis_db):
    from service.verification.end_users import EndUser
    from service.verification.store import VerificationStore

    budgets = limits(redis_db, check_per_end_user_ip="1 per hour")
    store = VerificationStore(redis_db, b"test-secret")
    end_user = EndUser.of(b"test-secret", "192.0.2.1", None)
    redis_db.script_flush()  # a restarted or failed-over store: no scripts loaded
    counting = budgets.end_user_check(budgets.tenant, end_user)
    data, answer = store.read_along("vf_0000AAAAAAAAAAAAAAAAAAAAAA", counting)
    assert data is None
    budgets.decide(counting, answer)  # counted, not refused
    _, answer = store.read_along("vf_0000AAAAAAAAAAAAAAAAAAAAAA",
                                 budgets.end_user_check(budgets.tenant, end_user))
    with pytest.raises(RateLimited) as refused:
        budgets.decide(counting, answer)
    assert refused.value.to_problem()["reason"] == "check_per_end_user_ip"
