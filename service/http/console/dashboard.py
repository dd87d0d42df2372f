"""The console's Dashboard: the figures of ``GET /admin/stats`` as charts and tables."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from flask import g, render_template, request

from service.http.console import charts
from service.http.console.base import bp, ops
from service.http.console.pages import attempt
from service.http.console.signing import signed_in
from service.http.stats import figures, window_of
from service.stats import WINDOWS

WINDOW_NAMES = {"hour": "Last hour", "day": "Last day", "week": "Last week"}
assert set(WINDOW_NAMES) == set(WINDOWS)


@bp.get("/console/dashboard")
@signed_in
def dashboard():
    """Conversion, deliveries, breakers and credits over the last hour, day or week."""
    window = window_of(request.args)
    credits, credits_error = attempt(lambda: ops().account_credits(g.admin, record=False))
    data = figures(window)  # after the credits call: its reading is in the trend
    g.style_nonce = nonce = secrets.token_urlsafe(16)  # the charts' <style> (base.py's CSP)
    drawn = {
        "timeline": charts.timeline(data["series"], data["bucket_seconds"], nonce),
        "services": charts.by_name(data["services"], "service",
                                   "Sends and approvals per service", nonce),
        "countries": charts.by_name(data["countries"], "country",
                                    "Sends and approvals per country", nonce),
        "failures": charts.failure_rates(data["countries"], nonce),
        "credits": charts.credits(data["credits"]["readings"], nonce)
        if len(data["credits"]["readings"]) > 1 else None,  # a trend takes two
    }
    return render_template("console/dashboard.html", data=data, charts=drawn, window=window,
                           windows=WINDOW_NAMES, credits=credits, credits_error=credits_error,
                           resets=[_resets(b["resets_at"]) for b in data["breakers"]])


def _resets(resets_at: str | None) -> str:
    """When an open breaker resets, short enough for a phone: ``23:33 (in 60 min)``."""
    if resets_at is None:
        return ""
    now = datetime.now(UTC)
    at = datetime.fromisoformat(resets_at.replace("Z", "+00:00"))
    minutes = max(1, round((at - now).total_seconds() / 60))
    when = at.strftime("%H:%M" if at.date() == now.date() else "%d %b %H:%M")
    return f"{when} (in {minutes} min)" if minutes < 120 else f"{when} (in {minutes // 60} h)"
