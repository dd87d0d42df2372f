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
# fixtures: Chromium and a fresh tab failing on CSP errors (the console's browser test's),
# the scripted mix of flows (the lookup's)
browser, page, make_live, mix = (chromium.browser, chromium.page, test_lookup.make_live,
                                 test_lookup.mix)


@pytest.fixture
def base_url(mix):
    """The tab's site: the app the mix ran on (its delivery reports reached it)."""
    return mix[0].base


@pytest.mark.parametrize("width", chromium.WIDTHS)
def test_the_lookup_shows_the_mix_as_timelines_on_a_phone_and_a_laptop(page, mix, width):
    live, first, second, _ = mix
    page.set_viewport_size({"width": width, "height": 900})
    chromium.sign_in(page, live.base, ADMIN_KEY)
    page.click("nav >> text=Verifications")
    page.fill("#phone", "079 123 45 67")  # national: OTP_DEFAULT_REGION=CH
    chromium.button(page, "Search").click()
    assert f"2 verifications of {MASKED}" in page.inner_text("#found")
    assert page.locator("article.verification .status").all_inner_texts() == [
        "pending", "approved"]
    newest = page.locator(f"[id='{second}'] .timeline .what").all_inner_texts()
    assert newest[0].startswith("Code sent (send 1), valid until ")
    assert newest[1:] == [
        "Send 1 failed: absent subscriber (phone off / out of coverage) 107",
        newest[2], "Send 2 failed: absent subscriber (phone off / out of coverage) 107",
        "Wrong code", "Wrong code", "Wrong code", newest[-2],
        "Check refused: the phone is locked"]
    assert newest[2].startswith("Code sent (send 2)")
    assert newest[-2].startswith("Phone locked until ")
    oldest = page.locator(f"[id='{first}'] .timeline .what").all_inner_texts()
    assert oldest[1:] == ["Send 1 delivered", "Wrong code", "Right code", "Ended: approved"]
    assert DIGITS not in page.inner_text("body")  # the search box's value is not page text
    chromium.shot(page, f"lookup-{width}")
    assert page.evaluate("document.scrollingElement.scrollWidth") <= width
