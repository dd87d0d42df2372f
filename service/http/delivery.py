"""The gateway's delivery notifications: no client key, the URL's signature authenticates."""

from __future__ import annotations

from flask import Blueprint, Response, request

from service.http.context import services

bp = Blueprint("delivery", __name__)


@bp.route("/delivery/<verification_id>/<event>", methods=["GET", "POST"])
def notification(verification_id: str, event: str):
    """Record a delivery notification from the gateway (signed URL; GET or POST)."""
    # the tags are in the URL; a POST body, if the gateway sends one, is never read
    # (without OTP_PUBLIC_URL the notifier is NoNotifier, whose answer is 404)
    services().verifications.notifier.receive(verification_id, event, request.args)
    return Response(status=204)
