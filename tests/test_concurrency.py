"""Races against the real thing: gunicorn with 2 workers x 8 threads, a real redis-server
and the simulator over HTTP. Exactness must hold across processes, not just threads."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.conftest import CLIENT_KEY, last_code, service_env
from tests.helpers import check, gunicorn, start

pytestmark = pytest.mark.slow
AUTH = {"Authorization": f"Bearer {CLIENT_KEY}"}


@pytest.fixture(scope="module")
def service(redis_server, simulator_server):
    env = service_env(redis_server.url, simulator_server.url, OTP_RESEND_COOLDOWN="0",
                      OTP_MAX_SENDS="10")
    with gunicorn(env, workers=2, threads=8) as base:
        yield base


@pytest.fixture
def fresh(service, redis_db, simulator):
    return service


def calls(simulator, endpoint: str) -> int:
    return requests.get(simulator.url + "/_sim/stats", timeout=5).json()["calls"][endpoint]


def sms_count(simulator) -> int:
    return len(requests.get(simulator.url + "/_sim/messages", timeout=5).json())
def in_parallel(count, action):
    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(lambda _: action(), range(count)))


def test_24_concurrent_wrong_checks_reach_the_gateway_at_most_5_times(fresh, simulator):
    vid = start(fresh, AUTH, "+41791110001").json()["id"]
    code = last_code(simulator, "+41791110001")
    wrong = "".join(str((int(c) + 1) % 10) for c in code)
    answers = in_parallel(24, lambda: check(fresh, AUTH, wrong, id=vid))
    assert calls(simulator, "VerifyToken") <= 5
    assert all(a.status_code in (200, 409) for a in answers)
    assert not any(a.status_code == 200 and a.json()["valid"] for a in answers)
    final = requests.get(f"{fresh}/otp/verifications/{vid}", headers=AUTH, timeout=5).json()
    assert final["status"] == "max_attempts_reached" and final["attempts_remaining"] == 0


def test_12_concurrent_right_checks_approve_exactly_once(fresh, simulator):
    vid = start(fresh, AUTH, "+41791110002").json()["id"]
    code = last_code(simulator, "+41791110002")
    answers = in_parallel(12, lambda: check(fresh, AUTH, code, id=vid))
    approvals = [a for a in answers if a.status_code == 200 and a.json()["valid"]]
    assert len(approvals) == 1
    assert all(a.status_code == 409 for a in answers if a not in approvals)


def test_a_wrong_code_racing_the_right_one_is_never_told_valid(fresh, simulator):
    vid = start(fresh, AUTH, "+41791110003").json()["id"]
    code = last_code(simulator, "+41791110003")
    wrong = "".join(str((int(c) + 1) % 10) for c in code)
    codes = [code] + [wrong] * 11
    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(lambda c: (c, check(fresh, AUTH, c, id=vid)), codes))
    for typed, answer in answers:
        if typed == wrong and answer.status_code == 200:
            assert answer.json()["valid"] is False


def test_two_concurrent_starts_with_one_idempotency_key_send_one_sms(fresh, simulator):
    key = {"Idempotency-Key": "same-intent-1"}
    answers = in_parallel(2, lambda: start(fresh, AUTH, "+41791110004", key))
    assert sms_count(simulator) == 1
    assert {a.status_code for a in answers} == {201}
    assert answers[0].json()["id"] == answers[1].json()["id"]


def test_concurrent_starts_without_a_key_still_make_one_verification(fresh, simulator):
    answers = in_parallel(8, lambda: start(fresh, AUTH, "+41791110005"))
    ids = {a.json()["id"] for a in answers if a.status_code in (200, 201)}
    assert len(ids) == 1
    assert sum(a.status_code == 201 for a in answers) == 1
