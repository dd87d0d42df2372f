"""Client API: /otp/start, /otp/check, and a verification's status and cancel."""

from __future__ import annotations

from flask import Blueprint, g, jsonify

from service.http import schemas
from service.http.auth import client_required
from service.http.context import services
from service.http.idempotent import Answered, idempotent, public
from service.http.limits import per_client
from service.verification.model import Verification
from service.verification.service import StartRequest

bp = Blueprint("otp", __name__, url_prefix="/otp")


@bp.post("/start")
@client_required
@per_client
@idempotent("start", schemas.START)
def start(body: dict) -> tuple[Answered, Verification]:
    """Send a verification code by SMS (or resend on the pending verification). The end
    user's limits are the domain's, counted with the phone's (the TCP peer is the calling
    backend, never an end user)."""
    started = services().verifications.start(g.tenant, g.client, StartRequest(**body))
    return Answered(201 if started.created else 200, started.verification.id), started.verification


@bp.post("/check")
@client_required
@per_client
@idempotent("check", schemas.CHECK)
def check(body: dict) -> tuple[Answered, Verification]:
    """Check a code the user typed; approves at most once."""
    verification, valid = services().verifications.check(
        g.tenant, g.client, body["code"], verification_id=body.get("id"),
        phone=body.get("phone"), end_user_ip=body.get("end_user_ip"),
        end_user_id=body.get("end_user_id"))
    return Answered(200, verification.id, valid), verification


@bp.get("/verifications/<verification_id>")
@client_required
@per_client
def status(verification_id: str):
    """Read a verification (kept 24 h after it ends, phone masked)."""
    return jsonify(public(services().verifications.read(g.tenant, g.client, verification_id)))


@bp.post("/verifications/<verification_id>/cancel")
@client_required
@per_client
def cancel(verification_id: str):
    """End a pending verification."""
    schemas.load_json(schemas.EMPTY, optional=True)
    return jsonify(public(services().verifications.cancel(g.tenant, g.client,
                                                          verification_id)))
