"""The admin console in a real headless Chromium (Debian's), driven by Playwright.

The app serves on a free loopback port against a real redis-server and the simulator; each
step leaves a screenshot in tests/artifacts/console/ (git-ignored) for a person to look at,
and every page is shot at a phone's and a laptop's width, where none may scroll sideways.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from service.config import SANDBOX_ADMIN_KEY, SANDBOX_CLIENT_KEY
from service.stats import keys as stats_keys
from service.verification.budgets import PhoneLimits
from tests import stats_mix
from tests.conftest import ADMIN_KEY, CLIENT_KEY, last_code
from tests.helpers import free_port, wsgi_server

sync_api = pytest.importorskip("playwright.sync_api",
                               reason="Playwright is not installed (pip install -e '.[test]')")

CHROMIUM = "/usr/bin/chromium"
# No sandbox: CI runs as root. The rest keeps Chromium off the network and quiet.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts" / "console"
NUMERIC = "+41791234567"
NUMERIC_MASKED = "+417******67"
PAPER = "rgb(244, 246, 249)"  # console.css's page background: the stylesheet was applied

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK),
                       reason=f"Debian's chromium is not installed at {CHROMIUM} "
                              "(scripts/test installs it with apt-get)"),
]


@pytest.fixture
def base_url(app):
    with wsgi_server(app) as url:
        yield url


@pytest.fixture
def sandbox_app(make_app):
    """Sandbox mode with its built-in keys, so that every page (Messages too) exists."""
    app = make_app(ASPSMS_USERKEY="", ASPSMS_ORIGINATOR="", OTP_API_KEYS="", OTP_ADMIN_KEYS="")
    yield app
    app.extensions["otp"].simulator.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=CHROMIUM,
            args=CHROMIUM_ARGS, headless=True, viewport={"width": 1200, "height": 760})
        yield context
        context.close()


@pytest.fixture
def page(browser, base_url):
    """A fresh tab without cookies; the test fails if the page breaks its own CSP."""
    browser.clear_cookies()
    tab = browser.new_page()
    tab.set_default_timeout(10_000)
    errors: list[str] = []
    tab.on("console", lambda message: errors.append(message.text)
           if "Content Security Policy" in message.text else None)
    tab.on("pageerror", lambda error: errors.append(str(error)))
    yield tab
    tab.close()
    assert errors == []


def shot(page, name: str) -> None:
    # after a click that navigates, the new page's stylesheet may still be on its way (seen
    # on a loaded machine: a transparent body); its load event says it has arrived
    page.wait_for_load_state("load")
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == PAPER
    assert "{{" not in page.content() and "{%" not in page.content()
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def button(page, name: str):
    return page.get_by_role("button", name=name, exact=True)


def sign_in(page, base_url: str, key: str) -> None:
    page.goto(base_url + "/admin/")
    page.fill("#key", key)
    button(page, "Sign in").click()


def test_an_admin_signs_in_unlocks_a_numeric_sender_and_finds_it_in_the_audit_log(
        page, base_url, simulator):
    page.goto(base_url + "/admin/")
    assert page.url == base_url + "/admin/console/sign-in"
    shot(page, "01-sign-in")

    sign_in(page, base_url, ADMIN_KEY)
    assert page.url == base_url + "/admin/"
    assert page.inner_text("#credits .figure").startswith("1000000")
    assert "Signed in as ops" in page.inner_text("header")
    shot(page, "02-overview-credits")

    page.click("nav >> text=Sender ids")
    page.fill("#originator", NUMERIC)
    button(page, "Check").click()
    assert page.inner_text("#state") == "not authorized"
    shot(page, "03-check-not-authorized")

    button(page, "Send unlock code").click()
    assert f"An unlock code is on its way to {NUMERIC}" in page.inner_text("main")
    shot(page, "04-unlock-code-sent")

    code = last_code(simulator, NUMERIC)
    page.fill("#unlock_code", "1" + code[1:] if code[0] != "1" else "2" + code[1:])
    button(page, "Unlock").click()
    assert "The gateway refused this unlock code." in page.inner_text(".message.error")
    assert "unlock_code_rejected" in page.inner_text(".message.error")
    shot(page, "05-wrong-unlock-code-rejected")

    page.fill("#unlock_code", code)
    button(page, "Unlock").click()
    assert page.inner_text("#state") == "authorized"
    assert f"{NUMERIC} is authorized" in page.inner_text(".message.ok")
    button(page, "Check").click()
    assert page.inner_text("#state") == "authorized"
    shot(page, "06-authorized")

    page.click("nav >> text=Audit log")
    rows = [row.split("\t") for row in page.locator("table.audit tbody tr").all_inner_texts()]
    actions = [(row[1], row[2], row[3], row[4]) for row in rows]
    assert actions == [  # the page views and checks are not audited
        ("ops", "originator.unlock", NUMERIC_MASKED, "authorized"),
        ("ops", "originator.unlock", NUMERIC_MASKED, "unlock_code_rejected"),
        ("ops", "originator.unlock_code", NUMERIC_MASKED, "pending"),
        ("ops", "console.sign_in", "console", "ok"),
    ]
    assert NUMERIC not in page.content()
    shot(page, "07-audit-log")


@pytest.mark.parametrize("key", ["not-an-admin-key-0123", CLIENT_KEY])
def test_a_wrong_key_is_refused(page, base_url, key):
    sign_in(page, base_url, key)
    assert page.url == base_url + "/admin/console/sign-in"
    assert "That is not an admin key." in page.inner_text(".message.error")
    if key == CLIENT_KEY:
        shot(page, "08-wrong-key-refused")
    page.goto(base_url + "/admin/")
    assert page.url == base_url + "/admin/console/sign-in"


def test_a_form_posted_without_its_csrf_token_is_refused(page, base_url, simulator):
    sign_in(page, base_url, ADMIN_KEY)
    page.goto(f"{base_url}/admin/console/originators?originator=%2B41791234567")
    form = page.locator("form[action$='/unlock-code']")
    form.locator("input[name=csrf_token]").evaluate("input => input.remove()")
    form.locator("button").click()
    assert "The CSRF token is missing." in page.inner_text(".message.error")
    assert "Nothing was done" in page.inner_text(".message.error")
    shot(page, "09-csrf-refused")
    messages = requests.get(simulator.url + "/_sim/messages", timeout=5).json()
    assert [m for m in messages if m["recipient"] == NUMERIC] == []


# Every page of the console, each in a state that shows what it can hold.
PAGES = [
    ("sign-in", "/admin/console/sign-in"),
    ("overview", "/admin/"),
    ("dashboard", "/admin/console/dashboard"),
    ("originator", "/admin/console/originators?originator=%2B41791234567"),
    ("lockouts", "/admin/console/lockouts"),
    ("audit", "/admin/console/audit"),
    ("services", "/admin/console/services"),
    ("service", "/admin/console/services/default"),
    ("service-edit", "/admin/console/services/default/edit"),
    ("messages", "/admin/console/messages"),
    ("verifications", "/admin/console/verifications"),
    ("services", "/admin/console/services"),
    ("service", "/admin/console/services/default"),
    ("service-edit", "/admin/console/services/default/edit"),
    ("webhooks", "/admin/console/webhooks"),
    ("not-found", "/admin/console/no-such-page"),
]
WIDTHS = [390, 1280]  # a phone (iPhone 12-15) and a laptop


def test_the_page_list_above_is_every_console_page(sandbox_app):
    adapter = sandbox_app.url_map.bind("localhost")
    pages = {adapter.build(rule.endpoint, {name: "default" for name in rule.arguments})
             for rule in sandbox_app.url_map.iter_rules()
             if rule.endpoint.startswith("console.") and "GET" in rule.methods}
    assert pages == {path.split("?")[0] for _, path in PAGES[:-1]}


def fill_the_sandbox(app, base_url: str) -> None:
    """Long audit rows, simulated messages and a lockout form answer, as in real use."""
    audit = app.extensions["otp"].admin.audit
    for number in range(8):
        audit.record("operations-team-on-call", "originator.unlock_code",
                     f"+417******{number:02d}", "upstream_insufficient_credits")
    from service.webhooks.payload import Event

    for number in range(3):  # failed webhook deliveries, each with its retry button
        event = Event("otp:{events}:ev", f"179600000000{number}-0",
                      {"type": "verification.max_attempts_reached",
                       "vid": "vf_1a2bAbCdEfGhIjKlMnOpQrStUv"})
        app.extensions["otp"].webhooks.failed.record(event, 27, "the receiver answered 503")
    key = {"Authorization": f"Bearer {SANDBOX_CLIENT_KEY}"}
    for phone in ("+41791234567", "+41791234568"):
        requests.post(base_url + "/otp/start", json={"phone": phone, "locale": "fr"},
                      headers=key, timeout=5).raise_for_status()


@pytest.mark.parametrize("width", WIDTHS)
def test_every_console_page_fits_the_screen_without_scrolling_sideways(
        page, sandbox_app, width):
    missing: list[str] = []
    page.on("response", lambda response: missing.append(response.url)
            if response.status == 404 and "no-such-page" not in response.url else None)
    with wsgi_server(sandbox_app) as url:
        fill_the_sandbox(sandbox_app, url)
        page.set_viewport_size({"width": width, "height": 800})
        for name, path in PAGES:
            if name == "overview":  # signed in from here on
                page.fill("#key", SANDBOX_ADMIN_KEY)
                button(page, "Sign in").click()
            page.goto(url + path)
            if name == "originator":
                button(page, "Send unlock code").click()
            if name == "lockouts":
                page.fill("#phone", "+41 79 123 45 67")
                button(page, "Clear lockout").click()
            if name == "verifications":
                page.fill("#phone", "+41 79 123 45 67")
                button(page, "Search").click()
            assert page.locator("#sandbox-banner").is_visible(), name
            shot(page, f"width-{width}-{name}")
            scroll_width = page.evaluate("document.scrollingElement.scrollWidth")
            assert scroll_width <= width, (name, scroll_width)
    assert missing == []  # the favicon and the stylesheet included


def test_the_dashboard_shows_a_scripted_mix_at_a_laptop_s_and_a_phone_s_width(
        page, make_app, simulator, redis_db):
    port = free_port()
    app = make_app(OTP_PUBLIC_URL=f"http://127.0.0.1:{port}", **stats_mix.SETTINGS)
    # two readings of the credits from before the mix: 24 used in 3 hours, 192 a day
    hours_ago = [int(time.time() * 1000) - hours * 3600_000 for hours in (3, 2)]
    redis_db.zadd(stats_keys.CREDITS_KEY, {f"{hours_ago[0]}:1000020": hours_ago[0],
                                           f"{hours_ago[1]}:1000010": hours_ago[1]})
    with wsgi_server(app, port) as url:
        stats_mix.run_mix(url, simulator)  # 4 SMS: the gateway answers 999996 from now on
        sign_in(page, url, ADMIN_KEY)
        page.click("nav >> text=Dashboard")
        assert page.url == url + "/admin/console/dashboard"
        assert page.locator("nav[aria-label=Console] [aria-current=page]").inner_text() == (
            "Dashboard")
        page.click(".windows >> text=Last hour")
        resets = datetime.fromtimestamp(
            int(redis_db.get(PhoneLimits.breaker_key("country", "CH"))) / 1000, UTC)
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            assert page.inner_text("#total-sent") == "4"
            assert page.inner_text("#total-approved") == "2"
            assert page.inner_text("#total-conversion") == "50 %"
            assert page.inner_text("#total-rejected") == "2"
            assert page.inner_text("#total-undelivered") == "1"
            rows = [r.split("\t") for r in page.locator("#per-country tbody tr").all_inner_texts()]
            assert rows == [["CH", "3", "1", "33 %", "2"], ["DE", "1", "1", "100 %", "0"]]
            delivery = page.locator("#per-country-delivery tbody tr").all_inner_texts()
            assert [r.split("\t")[:4] for r in delivery] == [["CH", "2", "1", "33 %"],
                                                              ["DE", "1", "0", "0 %"]]
            open_breakers = page.locator("#breaker-states tr.open").all_inner_texts()
            # the page names the day too when the reset falls on another (near midnight)
            until = resets.strftime("%H:%M" if resets.date() == datetime.now(UTC).date()
                                    else "%d %b %H:%M")
            assert open_breakers in [["country · CH\topen until " + until
                                      + f" (in {minutes} min)"] for minutes in (59, 60)]
            assert page.locator("#webhook-backlog").count() == 0  # no webhooks yet
            assert page.inner_text("#credits-now") == "999996"
            assert page.inner_text("#credits-per-day") == "192.0"  # the mix took seconds
            assert abs(float(page.inner_text("#credits-days-left")) - 999996 / 192) < 1
            # one drawing of each chart shows, with its labels as text
            charts = page.locator(".chart svg:visible")
            assert charts.count() == 5  # over time, per service, country, deliveries, credits
            assert "CH" in page.locator("#countries .chart svg:visible").text_content()
            assert page.locator(".chart [style]").count() == 0  # the CSP allows none
            shot(page, f"dashboard-{width}")
            for card in ("timeline", "countries", "deliveries", "breakers", "credits"):
                page.locator(f"#{card}").screenshot(
                    path=str(ARTIFACTS / f"dashboard-{width}-{card}.png"))
            scroll_width = page.evaluate("document.scrollingElement.scrollWidth")
            assert scroll_width <= width, scroll_width
        # the same mix, one user at a time: the support lookup tells why a code did not
        # arrive, and what the user typed (right or wrong, never the code)
        page.click("nav >> text=Verifications")
        for phone, expected in ((stats_mix.FAILED_CH, "absent subscriber"),
                                (stats_mix.WRONG_CH, "Wrong code"),
                                (stats_mix.APPROVED_DE, "Ended: approved")):
            page.fill("#phone", phone)
            button(page, "Search").click()
            timeline = page.locator("article.verification .timeline .what").all_inner_texts()
            assert any(expected in entry for entry in timeline), (phone, timeline)
            assert phone[-7:] not in page.inner_text("#found")  # masked in the results


def test_an_admin_creates_a_service_edits_it_and_makes_and_revokes_a_key(page, base_url):
    sign_in(page, base_url, ADMIN_KEY)
    page.click("nav >> text=Services")
    assert page.locator("#services").get_by_role("link", name="default").is_visible()
    page.fill("#name", "signup")
    button(page, "Create service").click()
    assert page.get_by_role("heading", name="Service signup").is_visible()
    shot(page, "service-created")
    page.click("text=Edit")
    page.fill("#friendly_name", "Acme")
    page.fill("[id='limits.start_per_phone']", "3 per hour")
    page.select_option("#sms_enabled", "on")
    button(page, "Save").click()
    assert page.get_by_text("Saved").is_visible()
    policy = page.locator("#policy")
    assert policy.get_by_text('"Acme"').is_visible()
    assert policy.get_by_text('"3 per hour"').is_visible()
    page.fill("#key-name", "web")
    button(page, "Create key").click()
    key = page.locator("code.secret").inner_text()
    assert key.startswith("sk_")
    shot(page, "service-key-created")
    started = requests.post(base_url + "/otp/start", json={"phone": "+41791234567"},
                            headers={"Authorization": f"Bearer {key}"}, timeout=5)
    assert started.status_code == 201
    page.click("nav >> text=Services")
    page.locator("#services").get_by_role("link", name="signup").click()
    assert key not in page.content()  # shown once
    button(page, "Revoke").first.click()
    assert page.get_by_text("Key revoked").is_visible()
    refused = requests.post(base_url + "/otp/start", json={"phone": "+41791234568"},
                            headers={"Authorization": f"Bearer {key}"}, timeout=5)
    assert refused.status_code == 401
