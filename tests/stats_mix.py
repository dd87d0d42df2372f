"""A scripted mix of flows for the dashboard's tests (tests/test_stats.py, the browser
test): approvals, wrong codes, a failed delivery and a tripped breaker, over real HTTP
against a running app whose OTP_PUBLIC_URL brings the simulator's delivery reports back."""

from __future__ import annotations

import requests

from tests.conftest import CLIENT_KEY, last_code
from tests.helpers import check, start, wait_for

AUTH = {"Authorization": f"Bearer {CLIENT_KEY}"}
# three sends fit the Swiss budget; the fourth trips its breaker
SETTINGS = {"OTP_BUDGET_PER_COUNTRY": "3 per hour"}
APPROVED_CH, WRONG_CH, FAILED_CH, BLOCKED_CH = ("+41791110001", "+41791110002",
                                                "+41791110003", "+41791110005")
APPROVED_DE = "+4915112345601"
# what the mix counts
TOTALS = {"sent": 4, "approved": 2, "rejected": 2, "delivered": 3, "undelivered": 1,
          "send_failed": 0, "conversion_rate": 0.5, "delivery_failure_rate": 0.25}
CH = {"country": "CH", "sent": 3, "approved": 1, "rejected": 2, "delivered": 2,
      "undelivered": 1, "conversion_rate": 0.3333, "delivery_failure_rate": 0.3333}
DE = {"country": "DE", "sent": 1, "approved": 1, "rejected": 0, "delivered": 1,
      "undelivered": 0, "conversion_rate": 1.0, "delivery_failure_rate": 0.0}


def wrong(code: str) -> str:
    return "".join(str((int(c) + 1) % 10) for c in code)


def run_mix(base: str, simulator) -> dict[str, str]:
    """The flows, until every send has its final delivery report; their ids by phone."""
    requests.post(simulator.url + "/_sim/delivery", timeout=5, json={
        "numbers": {FAILED_CH: {"outcome": "failed", "reason": "107"}}}).raise_for_status()
    ids = {}
    for phone in (APPROVED_CH, WRONG_CH, FAILED_CH, APPROVED_DE):
        answer = start(base, AUTH, phone)
        assert answer.status_code == 201, answer.text
        ids[phone] = answer.json()["id"]
    for phone in (APPROVED_CH, APPROVED_DE):
        assert check(base, AUTH, last_code(simulator, phone), id=ids[phone]).json()["valid"]
    for _ in range(2):
        answer = check(base, AUTH, wrong(last_code(simulator, WRONG_CH)), id=ids[WRONG_CH])
        assert answer.json()["valid"] is False
    refused = start(base, AUTH, BLOCKED_CH)
    assert refused.status_code == 429 and refused.json()["reason"] == "country_budget"

    def delivered() -> bool:
        return all(requests.get(f"{base}/otp/verifications/{vid}", headers=AUTH, timeout=5)
                   .json()["delivery_status"] in ("delivered", "failed") for vid in ids.values())

    wait_for(delivered, timeout=10)
    return ids
