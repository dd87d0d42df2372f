"""Per-request options end to end: the app in process, real Redis, the simulator over HTTP.

Grouped and custom masks, case sensitivity, a shorter validity and the doubling resend
cooldown, each through start, the gateway's SMS and check.
"""

from __future__ import annotations

import re
import time

import pytest

from service.verification.model import rfc3339
from tests.conftest import last_code
from tests.helpers import check, gateway_calls, sim, start

PHONE = "+41791234567"
@pytest.mark.parametrize("mask, separator", [("### ###", " "), ("###-###", "-")])
@pytest.mark.parametrize("spelling", ["compact", "spaced", "hyphenated"])
def test_a_grouped_code_is_approved_however_the_separator_is_typed(http, auth, simulator,
                                                                   mask, separator, spelling):
    assert start(http, auth, code_mask=mask).status_code == 201
    sent = last_code(simulator, PHONE)
    assert sent[3] == separator  # the gateway texts the code grouped as the mask says
    digits = sent.replace(separator, "")
    typed = {"compact": digits, "spaced": f"{digits[:3]} {digits[3:]}",
             "hyphenated": f"{digits[:3]}-{digits[3:]}"}[spelling]
    answer = check(http, auth, typed)
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["valid"] is True and answer.get_json()["status"] == "approved"


# -- test numbers (OTP_TEST_NUMBERS) -------------------------------------------------------
TEST_NUMBER = "+41790000000"


def app_with_test_number(make_app, code="1234", **env):
    return make_app(OTP_TEST_NUMBERS=f"{TEST_NUMBER}={code}@2099-12-31", **env).test_client()

@pytest.mark.parametrize("code, env, options", [
    ("1234", {}, {}),                               # shorter than the default ######
    ("AB12CD", {}, {}),                             # letters under ######
    ("123456", {"OTP_CODE_MASK": "AAAAAA"}, {}),    # digits under a letter mask
    ("123456", {}, {"code_mask": "### ###"}),       # a grouped mask from the request
])
def test_a_test_number_is_approved_with_its_configured_code_whatever_the_mask(
        make_app, auth, simulator, code, env, options):
    http = app_with_test_number(make_app, code, **env)
    started = http.post("/otp/start", json={"phone": TEST_NUMBER, **options}, headers=auth)
    assert started.status_code == 201
    wrong = check(http, auth, code[::-1], phone=TEST_NUMBER)
    assert wrong.status_code == 200 and wrong.get_json()["valid"] is False
    assert wrong.get_json()["attempts_remaining"] == 4
    right = check(http, auth, code.lower(), phone=TEST_NUMBER)
    assert right.status_code == 200, right.get_json()
    assert right.get_json()["status"] == "approved"


def test_a_code_too_long_or_short_for_a_test_number_is_refused_without_an_attempt(
        make_app, auth, simulator):
    http = app_with_test_number(make_app, "1234")
    http.post("/otp/start", json={"phone": TEST_NUMBER}, headers=auth)
    for typed in ("12345", "123", "123456"):
        answer = check(http, auth, typed, phone=TEST_NUMBER)
        assert answer.status_code == 422 and answer.get_json()["code"] == "invalid_code"
    assert check(http, auth, "12 34", phone=TEST_NUMBER).get_json()["valid"] is True


def test_a_test_number_reports_no_delivery_status_since_nothing_is_sent(make_app, auth,
                                                                         simulator):
    http = app_with_test_number(make_app, "123456", OTP_RESEND_COOLDOWN="0")
    first = http.post("/otp/start", json={"phone": TEST_NUMBER}, headers=auth)
    assert first.get_json()["delivery_status"] is None
    resent = http.post("/otp/start", json={"phone": TEST_NUMBER}, headers=auth)
    assert resent.status_code == 200 and resent.get_json()["send_count"] == 2
    assert resent.get_json()["delivery_status"] is None
    read = http.get(f"/otp/verifications/{first.get_json()['id']}", headers=auth)
    assert read.get_json()["delivery_status"] is None
    checked = check(http, auth, "123456", phone=TEST_NUMBER)
    assert checked.get_json()["delivery_status"] is None


# -- the service's clock, moved forward instead of sleeping -------------------------------
class Clock:
    """The verification service's clock (``time.time`` semantics), moved by hand."""

    def __init__(self):
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clocked(make_app):
    """An app whose verification service runs on a hand-moved clock."""
    def factory(**env):
        app = make_app(**env)
        clock = Clock()
        app.extensions["otp"].verifications.clock = clock
        return app.test_client(), clock
    return factory


def advance(simulator, clock, seconds: float) -> None:
    """Move the service's clock and the simulator's (its tokens expire too) together."""
    clock.now += seconds
    sim(simulator, "POST", "/_sim/clock", json={"advance": seconds})


def at(clock, seconds: float) -> str:
    return rfc3339(int((clock.now + seconds) * 1000))


def test_the_resend_cooldown_doubles_after_each_send(clocked, auth, simulator):
    http, clock = clocked(OTP_RESEND_COOLDOWN="30")
    first = start(http, auth)
    assert first.status_code == 201 and first.get_json()["resend_available_at"] == at(clock, 30)
    for wait in (30, 60, 120):
        advance(simulator, clock, wait - 1)
        early = start(http, auth)
        assert early.status_code == 429 and early.get_json()["reason"] == "resend_cooldown"
        assert int(early.headers["Retry-After"]) == 1
        advance(simulator, clock, 1)
        resent = start(http, auth)
        assert resent.status_code == 200, resent.get_json()
        assert resent.get_json()["id"] == first.get_json()["id"]
        assert resent.get_json()["resend_available_at"] == at(clock, wait * 2)
    assert resent.get_json()["send_count"] == 4
    assert len(sim(simulator, "GET", "/_sim/messages")) == 4
    code = last_code(simulator, PHONE)
    assert check(http, auth, code).get_json()["status"] == "approved"


@pytest.mark.parametrize("mask, shape", [
    ("AAAAAA", r"[A-Z]{6}"), ("NNNNNNNN", r"[A-Z0-9]{8}"),
    ("NNNN-NNNN", r"[A-Z0-9]{4}-[A-Z0-9]{4}"), ("##########", r"[0-9]{10}"),
])
def test_an_accepted_custom_mask_shapes_the_code_and_its_code_approves(http, auth, simulator,
                                                                       mask, shape):
    started = start(http, auth, code_mask=mask)
    assert started.status_code == 201
    code = last_code(simulator, PHONE)
    assert re.fullmatch(shape, code), code
    shorter = check(http, auth, code[:-1])
    assert shorter.status_code == 422 and shorter.get_json()["code"] == "invalid_code"
    answer = check(http, auth, code.lower())  # case-insensitive unless asked otherwise
    assert answer.status_code == 200 and answer.get_json()["status"] == "approved"


def mixed_case(code: str) -> str:
    return "".join(ch.lower() if i % 2 else ch for i, ch in enumerate(code))


def test_a_case_sensitive_code_typed_in_mixed_case_is_wrong_and_spends_an_attempt(
        http, auth, simulator):
    start(http, auth, code_mask="AAAAAA", case_sensitive=True)
    code = last_code(simulator, PHONE)
    assert code.isupper()
    typed = check(http, auth, mixed_case(code))
    assert typed.status_code == 200
    assert typed.get_json()["valid"] is False and typed.get_json()["attempts_remaining"] == 4
    exact = check(http, auth, code)
    assert exact.get_json()["valid"] is True and exact.get_json()["status"] == "approved"


def test_without_case_sensitivity_mixed_case_input_approves(http, auth, simulator):
    start(http, auth, code_mask="AAAAAA", case_sensitive=False)
    typed = check(http, auth, mixed_case(last_code(simulator, PHONE)))
    assert typed.get_json()["valid"] is True


def test_a_shorter_validity_is_checkable_until_its_last_second(clocked, auth, simulator):
    http, clock = clocked()
    started = start(http, auth, validity_minutes=2)
    assert started.get_json()["expires_at"] == at(clock, 120)
    advance(simulator, clock, 119)
    answer = check(http, auth, last_code(simulator, PHONE))
    assert answer.status_code == 200 and answer.get_json()["status"] == "approved"


def test_a_shorter_validity_expires_on_time_without_asking_the_gateway(clocked, auth,
                                                                       simulator):
    http, clock = clocked()
    vid = start(http, auth, validity_minutes=2).get_json()["id"]
    code = last_code(simulator, PHONE)
    advance(simulator, clock, 120)
    answer = check(http, auth, code)
    assert answer.status_code == 409
    assert answer.get_json()["verification_status"] == "expired"
    assert http.get(f"/otp/verifications/{vid}", headers=auth).get_json()["status"] == "expired"
    assert "VerifyToken" not in gateway_calls(simulator)
