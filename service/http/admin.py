"""Admin API: sender ids, credits, any verification, lockouts and the audit log.

Every route needs an admin key; the work (and its audit entry) is in :mod:`service.admin.ops`.
"""

from __future__ import annotations

from decimal import Decimal

from flask import Blueprint, g, jsonify, request
from marshmallow import ValidationError

from service.admin.ops import AdminOps
from service.gateway import OriginatorState
from service.http import schemas
from service.http.auth import admin_required
from service.http.context import services
from service.http.observe import naming_phone

bp = Blueprint("admin", __name__, url_prefix="/admin")


def _ops() -> AdminOps:
    return services().admin.ops


@bp.get("/originators/<originator>")
@admin_required
def originator_status(originator: str):
    """Whether a sender id may be used (CheckOriginatorAuthorization)."""
    return jsonify(_ops().originator_status(g.admin, originator).public())


@bp.post("/originators/<originator>/unlock-code")
@admin_required
def request_unlock_code(originator: str):
    """Have the gateway text an unlock code to a numeric sender id (202 when one was sent)."""
    schemas.load_json(schemas.EMPTY, optional=True)
    status = _ops().request_unlock_code(g.admin, originator)
    return jsonify(status.public()), 202 if status.state is OriginatorState.PENDING else 200


@bp.post("/originators/<originator>/unlock")
@admin_required
def unlock_originator(originator: str):
    """Unlock a numeric sender id with the code the gateway texted to it."""
    body = schemas.load_json(schemas.UNLOCK)
    return jsonify(_ops().unlock_originator(g.admin, originator, body["unlock_code"]).public())


@bp.get("/originator")
@admin_required
def configured_originator():
    """The configured sender id (ASPSMS_ORIGINATOR) and whether it may be used."""
    return jsonify(_ops().configured_originator_status(g.admin).public())


@bp.get("/credits")
@admin_required
def credits():
    """The gateway account's credits (CheckCredits)."""
    return jsonify(credits=_number(_ops().account_credits(g.admin)))


@bp.get("/verifications")
@admin_required
def verifications_of_phone():
    """A phone number's verifications of the last 30 days, each with its timeline."""
    phone = _query(schemas.LOOKUP_QUERY)["phone"]
    with naming_phone(phone):
        found = _ops().verifications_of(g.admin, phone)
    g.phone = found["phone"]  # masked
    return jsonify(found)


@bp.get("/verifications/<verification_id>")
@admin_required
def verification(verification_id: str):
    """Any client's verification, with the client's name."""
    return jsonify(_ops().verification(g.admin, verification_id))


@bp.post("/lockouts/clear")
@admin_required
def clear_lockout():
    """Forget a phone number's consecutive wrong codes and lift its lock."""
    body = schemas.load_json(schemas.LOCKOUT)
    with naming_phone(body["phone"]):
        cleared = _ops().clear_lockout(g.admin, body["phone"])
    g.phone = cleared["phone"]  # masked
    return jsonify(cleared)


@bp.get("/audit")
@admin_required
def audit_log():
    """The audit log, newest first; pass ``next`` as ``before`` for the following page."""
    query = _query(schemas.AUDIT_QUERY)
    entries, cursor = _ops().audit_page(g.admin, query["limit"], query.get("before"))
    return jsonify(entries=[entry.public() for entry in entries], next=cursor)


def _number(value: Decimal) -> int | float:
    # A JSON number, not Flask's default string for Decimal.
    return int(value) if value == value.to_integral_value() else float(value)


def _query(schema: schemas.StrictSchema) -> dict:
    try:
        return schema.load(request.args.to_dict())
    except ValidationError as e:
        raise schemas.ValidationFailed("Some query parameters are invalid.",
                                       errors=e.messages) from None


# issue 17: services and their keys, under /admin/services (endpoints admin.services.*)
from service.http import services as _services  # noqa: E402

bp.register_blueprint(_services.bp)
