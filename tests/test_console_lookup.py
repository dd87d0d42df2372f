"""The console's support lookup page: Flask's test client, real Redis, the simulator over HTTP
(its delivery reports reach the app on a loopback port)."""

from __future__ import annotations

from tests import test_lookup
from tests.test_console import audit_actions, csrf_token, sign_in, text
from tests.test_lookup import DIGITS, MASKED, PHONE

make_live, mix = test_lookup.make_live, test_lookup.mix  # fixtures: the scripted mix of flows
PAGE = "/admin/console/verifications"


def search(http, phone: str):
    return http.post(PAGE, data={"phone": phone, "csrf_token": csrf_token(http.get(PAGE))})


def test_the_page_shows_each_verification_as_a_timeline_the_number_only_in_the_search_box(mix):
    live, first, second, code = mix
    http = live.app.test_client()
    sign_in(http)
    response = search(http, PHONE)
    assert response.status_code == 200
    page = text(response)
    assert page.count(DIGITS) == 1 and f'value="{PHONE}"' in page  # the search box
    assert code not in page
    assert f"2 verifications of\n  <strong>{MASKED}</strong>" in page
    assert page.index(f'id="{second}"') < page.index(f'id="{first}"')  # newest first
    approved, pending = page[page.index(f'id="{first}"'):], page[
        page.index(f'id="{second}"'):page.index(f'id="{first}"')]
    assert ">approved</span>" in approved and ">pending</span>" in pending
    for line in ("Code sent (send 1)", "Send 1 delivered", "Wrong code", "Right code",
                 "Ended: approved"):
        assert line in approved, line
    for line in ("Send 1 failed: absent subscriber (phone off / out of coverage) <code>107</code>",
                 "Code sent (send 2)", "Send 2 failed", "Phone locked until",
                 "Check refused: the phone is locked"):
        assert line in pending, line
    assert audit_actions(live.app)[-1] == ("ops", "verification.lookup", MASKED, "found")


def test_the_empty_page_is_not_audited_and_a_bad_number_is_explained(app):
    http = app.test_client()
    sign_in(http)
    assert 'id="phone"' in text(http.get(PAGE))
    refused = search(http, "not a number")
    assert refused.status_code == 422
    assert "The phone number contains characters a number cannot have." in text(refused)
    none = search(http, "+41 79 123 45 99")
    assert "No verifications of +417******99 in the last 30 days." in text(none)
    assert [action[1] for action in audit_actions(app)] == ["console.sign_in",
                                                           "verification.lookup"]


def test_a_visitor_without_a_session_is_sent_to_sign_in(app):
    response = app.test_client().get(PAGE)
    assert response.status_code == 303
