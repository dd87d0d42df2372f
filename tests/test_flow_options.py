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
