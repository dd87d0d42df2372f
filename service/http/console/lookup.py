"""The console's support lookup: a phone number's verifications of the last 30 days, each as
a timeline (the API's ``GET /admin/verifications``, audited the same way).

The search is a POST, so the number stays out of the address bar, the browser's history and
every access log; the page shows it only in the search box, the results masked.
"""

from __future__ import annotations

from flask import g, render_template, request

from service.http import schemas
from service.http.console.base import bp, ops
from service.http.console.pages import _load, attempt
from service.http.console.signing import signed_in

# What each timeline entry says, for a person (the API's TimelineEvent)
CHECK_TEXT = {"right": "Right code", "wrong": "Wrong code",
              "unknown": "Checked, but the gateway's answer was lost: outcome unknown",
              "not_checked": "Not checked: the gateway could not be reached"}
REFUSAL_TEXT = {"phone_locked": "Check refused: the phone is locked",
                "rate_limited": "Check refused: too many checks for this phone",
                "resend_required": "Check refused: a new code must be sent first"}
STATUS_LEVEL = {"approved": "ok", "pending": "warn", "not_sent": "error",
                "max_attempts_reached": "error", "expired": "warn", "canceled": "warn"}


@bp.route("/console/verifications", methods=["GET", "POST"])
@signed_in
def verifications():
    """Find a phone number's verifications: the support lookup."""
    if request.method == "GET":
        return render_template("console/verifications.html", typed="")
    typed = request.form.get("phone", "").strip()

    def action() -> dict:
        phone = _load(schemas.LOOKUP_QUERY, phone=typed)["phone"]
        return ops().verifications_of(g.admin, phone)

    found, error = attempt(action)
    return render_template("console/verifications.html", typed=typed, found=found,
                           messages=[error] if error else [], check_text=CHECK_TEXT,
                           refusal_text=REFUSAL_TEXT, level=STATUS_LEVEL), (
        error.status if error else 200)
