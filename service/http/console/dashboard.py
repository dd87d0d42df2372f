"""The console's Dashboard: the figures of ``GET /admin/stats`` as charts and tables."""

from __future__ import annotations

import secrets

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
                           windows=WINDOW_NAMES, credits=credits, credits_error=credits_error)
