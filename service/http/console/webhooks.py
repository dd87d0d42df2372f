"""The console's webhooks page: the failed deliveries of every service, each with a button
that redelivers it (same webhook-id), as ``POST …/webhook-deliveries/{id}/retry`` does."""

from __future__ import annotations

from flask import g, render_template, request

from service.http.console.base import Message, bp
from service.http.console.pages import attempt
from service.http.console.signing import signed_in
from service.http.context import services
from service.http.webhooks import webhook_admin


def _service_ids() -> list[str]:
    current = services()
    tenants = getattr(current, "tenants", None)
    every = tenants.all() if tenants is not None else [current.default_tenant]
    return [tenant.id for tenant in every]


def _page(messages=(), status: int = 200):
    admin = webhook_admin()
    failed = [(service_id, delivery) for service_id in _service_ids()
              for delivery in admin.failed_deliveries(g.admin, service_id)]
    return render_template("console/webhooks.html", failed=failed,
                           messages=list(messages)), status


@bp.get("/console/webhooks")
@signed_in
def webhooks():
    """Deliveries given up after a day of retries, newest first."""
    return _page()


@bp.post("/console/webhooks/retry")
@signed_in
def retry_delivery():
    service_id = request.form.get("service_id", "")
    delivery_id = request.form.get("delivery_id", "")

    def action() -> Message:
        webhook_admin().retry(g.admin, service_id, delivery_id)
        return Message("ok", f"Delivery {delivery_id} is queued again (same webhook-id).")

    message, error = attempt(action)
    shown = message or error
    return _page([shown], shown.status)
