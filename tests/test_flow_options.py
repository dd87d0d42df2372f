"""Per-request options end to end: the app in process, real Redis, the simulator over HTTP.

Grouped and custom masks, case sensitivity, a shorter validity and the doubling resend
cooldown, each through start, the gateway's SMS and check.
"""

from __future__ import annotations

import pytest

from tests.conftest import last_code

PHONE = "+41791234567"


def start(http, auth, **extra):
    return http.post("/otp/start", json={"phone": PHONE, **extra}, headers=auth)


def check(http, auth, code):
    return http.post("/otp/check", json={"phone": PHONE, "code": code}, headers=auth)


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


def check_test_number(http, auth, code):
    return http.post("/otp/check", json={"phone": TEST_NUMBER, "code": code}, headers=auth)


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
    wrong = check_test_number(http, auth, code[::-1])
    assert wrong.status_code == 200 and wrong.get_json()["valid"] is False
    assert wrong.get_json()["attempts_remaining"] == 4
    right = check_test_number(http, auth, code.lower())
    assert right.status_code == 200, right.get_json()
    assert right.get_json()["status"] == "approved"


def test_a_code_too_long_or_short_for_a_test_number_is_refused_without_an_attempt(
        make_app, auth, simulator):
    http = app_with_test_number(make_app, "1234")
    http.post("/otp/start", json={"phone": TEST_NUMBER}, headers=auth)
    for typed in ("12345", "123", "123456"):
        answer = check_test_number(http, auth, typed)
        assert answer.status_code == 422 and answer.get_json()["code"] == "invalid_code"
    assert check_test_number(http, auth, "12 34").get_json()["valid"] is True


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
    checked = check_test_number(http, auth, "123456")
    assert checked.get_json()["delivery_status"] is None
