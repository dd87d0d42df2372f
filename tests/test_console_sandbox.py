"""The console in sandbox mode: it says so, offers the development key, shows the messages."""

from __future__ import annotations

import re

import pytest

from service.config import SANDBOX_ADMIN_KEY, SANDBOX_CLIENT_KEY
from tests.test_console import PHONE, SIGN_IN, post, sign_in, text

NUMERIC = "+41791110003"
PAGES = ["/admin/", "/admin/console/originators", "/admin/console/lockouts",
         "/admin/console/audit", "/admin/console/messages"]


@pytest.fixture
def sandbox(make_app):
    """The sandbox with its built-in keys (every key variable left unset)."""
    app = make_app(ASPSMS_USERKEY="", ASPSMS_ORIGINATOR="", OTP_API_KEYS="",
                   OTP_ADMIN_KEYS="")
    yield app
    app.extensions["otp"].simulator.stop()


def test_every_sandbox_page_carries_the_sandbox_banner_and_the_sign_in_page_the_key(sandbox):
    http = sandbox.test_client()
    signing_in = text(http.get(SIGN_IN))
    assert 'id="sandbox-banner"' in signing_in and "Sandbox mode" in signing_in
    assert f"<code>{SANDBOX_ADMIN_KEY}</code>" in signing_in
    assert sign_in(http, SANDBOX_ADMIN_KEY).status_code == 303
    for path in PAGES:
        page = text(http.get(path))
        assert 'id="sandbox-banner"' in page, path
        assert 'href="/admin/console/messages"' in page, path  # in the menu
    assert 'id="sandbox-banner"' in text(http.get("/admin/nope", headers={"Accept": "text/html"}))


def test_outside_the_sandbox_there_is_no_banner_no_key_and_no_messages_page(http):
    assert "sandbox" not in text(http.get(SIGN_IN)).lower()
    sign_in(http)
    for path in PAGES[:-1]:
        assert "sandbox" not in text(http.get(path)).lower(), path
    refused = http.get("/admin/console/messages")
    assert refused.status_code == 404 and "Page not found" in text(refused)


def test_a_configured_admin_key_is_never_shown_even_in_the_sandbox(make_app):
    app = make_app(ASPSMS_USERKEY="")  # sandbox with the test's own keys
    try:
        page = text(app.test_client().get(SIGN_IN))
        assert 'id="sandbox-banner"' in page
        assert 'id="sandbox-key"' not in page and "admin-key-0123456789" not in page
    finally:
        app.extensions["otp"].simulator.stop()


def test_the_unlock_flow_in_the_sandbox_points_to_the_messages_page_and_works_from_it(sandbox):
    http = sandbox.test_client()
    sign_in(http, SANDBOX_ADMIN_KEY)
    sent = text(post(http, "/admin/console/originators/unlock-code", originator=NUMERIC))
    assert "by SMS" not in sent and "texted to" not in sent
    assert "read it on the Messages page" in sent
    assert 'href="/admin/console/messages">Messages</a> page' in sent

    messages = text(http.get("/admin/console/messages"))
    row = re.search(r"<td class=\"time\">\+41791110003</td>\s*<td>unlock code</td>\s*"
                    r"<td><code class=\"code\">(\d+)</code></td>", messages)
    assert row, messages
    unlocked = text(post(http, "/admin/console/originators/unlock", originator=NUMERIC,
                         unlock_code=row.group(1)))
    assert f"{NUMERIC} is authorized" in unlocked


def test_the_messages_page_lists_verification_codes_newest_first(sandbox):
    http = sandbox.test_client()
    client = {"Authorization": f"Bearer {SANDBOX_CLIENT_KEY}"}
    for phone in (PHONE, "+41791234568"):
        assert http.post("/otp/start", json={"phone": phone}, headers=client).status_code == 201
    sign_in(http, SANDBOX_ADMIN_KEY)
    page = text(http.get("/admin/console/messages"))
    recipients = re.findall(r'<td class="time">(\+\d+)</td>', page)
    assert recipients == ["+41791234568", PHONE]
    codes = re.findall(r'<code class="code">([0-9]{6})</code>', page)
    simulated = sandbox.extensions["otp"].simulator.state.messages()
    assert codes == [m["code"] for m in reversed(simulated)]


def test_the_start_up_banner_names_the_console_s_messages_page(make_app, capsys):
    app = make_app(ASPSMS_USERKEY="", ASPSMS_ORIGINATOR="", OTP_API_KEYS="", OTP_ADMIN_KEYS="")
    app.extensions["otp"].simulator.stop()
    banner = capsys.readouterr().err
    assert "GET /sandbox/messages" in banner and "Messages page (/admin/" in banner
