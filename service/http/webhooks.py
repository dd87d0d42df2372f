"""Admin API for a service's webhooks (contract §8): the signing secret, failed deliveries
and their redelivery. The work is :mod:`service.webhooks.admin`'s."""

from __future__ import annotations

from flask import Blueprint, g, jsonify, request

from service.http import schemas
from service.http.auth import admin_required
from service.http.context import services
from service.webhooks.admin import WebhookAdmin
from service.webhooks.targets import target

bp = Blueprint("webhooks", __name__, url_prefix="/admin/services")


def webhook_admin() -> WebhookAdmin:
    current = services()
    return WebhookAdmin(secrets=current.webhooks.secrets, failed=current.webhooks.failed,
                        audit=current.admin.audit,
                        targets=lambda service_id: target(current, service_id))


@bp.post("/<service_id>/webhook-secret")
@admin_required
def rotate_secret(service_id: str):
    """A new signing secret (shown once); the previous one keeps signing for 24 h."""
    schemas.load_json(schemas.EMPTY, optional=True)
    return jsonify(secret=webhook_admin().rotate_secret(g.admin, service_id)), 201


@bp.get("/<service_id>/webhook-deliveries")
@admin_required
def deliveries(service_id: str):
    """The service's deliveries given up after a day of retries (``status=failed``)."""
    status = request.args.get("status", "failed")
    unknown = set(request.args) - {"status"}
    if status != "failed" or unknown:
        problems = {name: ["Unknown field."] for name in unknown}
        if status != "failed":
            problems["status"] = ["Must be one of: failed."]
        raise schemas.ValidationFailed("Some query parameters are invalid.", errors=problems)
    failed = webhook_admin().failed_deliveries(g.admin, service_id)
    return jsonify(deliveries=[delivery.public() for delivery in failed])


@bp.post("/<service_id>/webhook-deliveries/<delivery_id>/retry")
@admin_required
def retry(service_id: str, delivery_id: str):
    """Deliver a failed event again, with the same webhook-id."""
    schemas.load_json(schemas.EMPTY, optional=True)
    return jsonify(webhook_admin().retry(g.admin, service_id, delivery_id)), 202
