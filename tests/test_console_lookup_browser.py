"""The console's support lookup in a real headless Chromium, after a scripted mix of flows
(tests/test_lookup.py's): screenshots at a phone's and a laptop's width in
tests/artifacts/console/ (git-ignored)."""

from __future__ import annotations

import pytest

from tests import test_console_browser as chromium
from tests import test_lookup
from tests.conftest import ADMIN_KEY
from tests.test_lookup import DIGITS, MASKED

pytestmark = chromium.pytestmark
browser, make_live, mix = chromium.browser, test_lookup.make_live, test_lookup.mix  # fixtures


@pytest.fixture
def tab(browser):
    browser.clear_cookies()
    page = browser.new_page()
    page.set_default_timeout(10_000)
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text)
            if "Content Security Policy" in message.text else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    page.close()
    assert errors == []


@pytest.mark.parametrize("width", chromium.WIDTHS)
def test_the_lookup_shows_the_mix_as_timelines_on_a_phone_and_a_laptop(tab, mix, width):
    live, first, second, _ = mix
    tab.set_viewport_size({"width": width, "height": 900})
    chromium.sign_in(tab, live.base, ADMIN_KEY)
    tab.click("nav >> text=Verifications")
    tab.fill("#phone", "079 123 45 67")  # national: OTP_DEFAULT_REGION=CH
    chromium.button(tab, "Search").click()
    assert f"2 verifications of {MASKED}" in tab.inner_text("#found")
    assert tab.locator("article.verification .status").all_inner_texts() == [
        "pending", "approved"]
    newest = tab.locator(f"[id='{second}'] .timeline .what").all_inner_texts()
    assert newest[0].startswith("Code sent (send 1), valid until ")
    assert newest[1:] == [
        "Send 1 failed: absent subscriber (phone off / out of coverage) 107",
        newest[2], "Send 2 failed: absent subscriber (phone off / out of coverage) 107",
        "Wrong code", "Wrong code", "Wrong code", newest[-2],
        "Check refused: the phone is locked"]
    assert newest[2].startswith("Code sent (send 2)")
    assert newest[-2].startswith("Phone locked until ")
    oldest = tab.locator(f"[id='{first}'] .timeline .what").all_inner_texts()
    assert oldest[1:] == ["Send 1 delivered", "Wrong code", "Right code", "Ended: approved"]
    assert DIGITS not in tab.inner_text("body")  # the search box's value is not page text
    chromium.shot(tab, f"lookup-{width}")
    assert tab.evaluate("document.scrollingElement.scrollWidth") <= width
