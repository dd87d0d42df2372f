"""Managed services' budgets, breakers, safe list and policy over HTTP (issue 17 "done
when"), with two gunicorn service processes sharing one real redis-server: a service made
and changed through the admin API on one process is served under its own policy by the
other."""

from __future__ import annotations

import itertools

import pytest
import requests

from tests.conftest import ADMIN_KEY, service_env
from tests.helpers import gunicorn, start, wait_for

pytestmark = pytest.mark.slow
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


@pytest.fixture
def processes(redis_server, redis_db, simulator):
    env = service_env(redis_server.url, simulator.url, OTP_RESEND_COOLDOWN="0",
                      OTP_BUDGET_GLOBAL="8 per hour")
    with gunicorn(env, workers=1) as first, gunicorn(env, workers=1) as second:
        yield first, second


def service(base: str, **fields) -> tuple[str, dict]:
    """A new service made on ``base`` and the auth header of a key of its own."""
    made = requests.post(base + "/admin/services", json=fields, headers=ADMIN, timeout=5)
    assert made.status_code == 201, made.text
    service_id = made.json()["id"]
    key = requests.post(f"{base}/admin/services/{service_id}/keys", json={"name": "web"},
                        headers=ADMIN, timeout=5).json()["key"]
    return service_id, {"Authorization": f"Bearer {key}"}


def served_by(base: str, auth: dict, phone: str):
    """The first answer to a start on ``base`` once that process knows the key (≤ 1 s)."""
    def known():
        answer = start(base, auth, phone)
        return [answer] if answer.status_code != 401 else None

    return wait_for(known, timeout=1.5)[0]


def reasons(answers) -> list:
    return [a.json().get("reason") if a.status_code == 429 else a.status_code for a in answers]


def messages(simulator) -> list[dict]:
    return requests.get(simulator.url + "/_sim/messages", timeout=5).json()


def test_one_services_spent_prefix_budget_leaves_anothers_sends_and_the_global_cap_binds_both(
        processes, simulator):
    first, second = processes
    _, signup = service(first, name="signup", budgets={"per_prefix": "3 per hour"})
    _, login = service(first, name="login", budgets={"per_prefix": "3 per hour"})
    pumped = [served_by(first, signup, "+41791110001"),
              *(start(first, signup, f"+4179111000{i}") for i in range(2, 6))]
    assert reasons(pumped) == [201, 201, 201, "prefix_budget", "prefix_budget"]
    # the same prefix, for the other service, on the other process: its breaker is its own
    same_prefix = [served_by(second, login, "+41791110011"),
                   *(start(second, login, f"+4179111001{i}") for i in range(2, 4))]
    assert reasons(same_prefix) == [201, 201, 201]
    # OTP_BUDGET_GLOBAL (8) caps both services together: two more sends, then none
    assert reasons([start(first, signup, "+41781110000"), start(second, login, "+41771110000"),
                    start(second, login, "+41761110000"),
                    start(first, signup, "+41751110000")]) == [
        201, 201, "global_budget", "global_budget"]
    assert len(messages(simulator)) == 8


def test_a_safe_listed_number_is_sent_to_while_its_prefixs_breaker_is_open(
        processes, simulator):
    first, second = processes
    safe = "+41791110209"
    _, auth = service(first, name="login", budgets={"per_prefix": "2 per hour"},
                      safe_list=[safe], limits={"start_per_phone": "2 per hour"})
    pumped = [served_by(first, auth, "+41791110201"), start(first, auth, "+41791110202"),
              start(first, auth, "+41791110203")]
    assert reasons(pumped) == [201, 201, "prefix_budget"]
    assert reasons([served_by(second, auth, safe), start(second, auth, safe),
                    start(first, auth, safe)]) == [201, 200, "start_per_phone"]
    assert messages(simulator)[-1]["recipient"] == safe
    assert start(second, auth, "+41791110204").json()["reason"] == "prefix_budget"


def test_a_changed_text_and_limit_apply_to_the_next_request_on_both_processes(
        processes, simulator):
    first, second = processes
    service_id, auth = service(first, name="shop", friendly_name="Acme Shop")
    assert served_by(second, auth, "+41791110301").status_code == 201
    assert messages(simulator)[-1]["text"].startswith("Acme Shop: Your verification code is ")
    changed = requests.patch(f"{first}/admin/services/{service_id}", headers=ADMIN, timeout=5,
                             json={"templates": {"en": "{service} login: <VERIFICATIONCODE>"},
                                   "limits": {"start_per_end_user_ip": "1 per hour"}})
    assert changed.status_code == 200, changed.text

    phones = (f"+417911104{n:02d}" for n in itertools.count())

    def new_text_on_second():
        assert start(second, auth, next(phones), end_user_ip="192.0.2.1").status_code == 201
        return messages(simulator)[-1]["text"].startswith("Acme Shop login: ")

    wait_for(new_text_on_second, timeout=1.5)  # the first start under the new policy
    refused = wait_for(lambda: [a for a in [start(first, auth, next(phones),
                                                  end_user_ip="192.0.2.1")]
                                if a.status_code == 429], timeout=1.5)[0]
    assert refused.json()["reason"] == "start_per_end_user_ip"


def test_a_services_verifications_are_not_found_with_another_services_key(processes):
    first, second = processes
    _, signup = service(first, name="signup")
    _, login = service(first, name="login")
    vid = served_by(first, signup, "+41791110501").json()["id"]
    served_by(second, login, "+41791110502")
    theirs = requests.get(f"{second}/otp/verifications/{vid}", headers=login, timeout=5)
    mine = requests.get(f"{second}/otp/verifications/{vid}", headers=signup, timeout=5)
    assert (theirs.status_code, mine.status_code) == (404, 200)
