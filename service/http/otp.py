"""Client API: /otp/start, /otp/check, and a verification's status and cancel."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, g, jsonify, request

from service.errors import ServiceError
from service.http import schemas
from service.http.auth import client_required
from service.http.context import services
from service.http.limits import per_client, start_per_ip
from service.http.problems import problem_response
from service.verification.service import StartRequest

bp = Blueprint("otp", __name__, url_prefix="/otp")
IDEMPOTENCY_KEY = re.compile(r"\A[\x21-\x7e]{1,255}\Z")
# Answers worth replaying; others (busy, limited, gateway trouble) changed nothing.
NOT_RECORDED = {409, 429}


@bp.post("/start")
@client_required
@per_client
@start_per_ip
def start():
    """Send a verification code by SMS (or resend on the pending verification)."""
    body = schemas.load_json(schemas.START)
    return _idempotent("start", body, lambda: _start(body))


@bp.post("/check")
@client_required
@per_client
def check():
    """Check a code the user typed; approves at most once."""
    body = schemas.load_json(schemas.CHECK)
    return _idempotent("check", body, lambda: _check(body))


@bp.get("/verifications/<verification_id>")
@client_required
@per_client
def status(verification_id: str):
    """Read a verification (kept 24 h after it ends, phone masked)."""
    verification = services().verifications.read(g.client, verification_id)
    return _render(200, {"verification_id": verification_id}, verification)


@bp.post("/verifications/<verification_id>/cancel")
@client_required
@per_client
def cancel(verification_id: str):
    """End a pending verification."""
    schemas.load_json(schemas.EMPTY, optional=True)
    verification = services().verifications.cancel(g.client, verification_id)
    return jsonify(verification.public(services().settings.max_sends))


def _start(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    started = services().verifications.start(g.client, StartRequest(**body))
    outcome = {"verification_id": started.verification.id}
    return (201 if started.created else 200), outcome, started.verification


def _check(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    verification, valid = services().verifications.check(
        g.client, body["code"], verification_id=body.get("id"), phone=body.get("phone"))
    return 200, {"verification_id": verification.id, "valid": valid}, verification


def _render(status: int, outcome: dict[str, Any], verification=None, replayed: bool = False):
    """The answer; a replay renders the verification as it is now."""
    if "problem" in outcome:
        return problem_response(outcome["problem"], outcome.get("headers"))
    found = services()
    if verification is None:
        verification = found.verifications.read(g.client, outcome["verification_id"])
    body = verification.public(found.settings.max_sends)
    if "valid" in outcome:
        body = {"valid": outcome["valid"], **body}
    response = jsonify(body)
    response.status_code = status
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


def _idempotent(route: str, body: dict[str, Any], action):
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return _render(*action())
    if not IDEMPOTENCY_KEY.match(key):
        raise schemas.ValidationFailed("Idempotency-Key must be 1-255 visible ASCII characters.",
                                       errors={"Idempotency-Key": ["Invalid format."]})
    store = services().idempotency
    fingerprint = store.fingerprint(route, body)
    recorded = store.claim(g.client, key, fingerprint)
    if recorded is not None:
        return _render(recorded.status, recorded.outcome, replayed=True)
    try:
        status, outcome, verification = action()
    except ServiceError as e:
        if e.status >= 500 or e.status in NOT_RECORDED:
            store.release(g.client, key)
        else:
            store.record(g.client, key, fingerprint, e.status,
                         {"problem": e.to_problem(), "headers": e.headers})
        raise
    except Exception:
        store.release(g.client, key)
        raise
    store.record(g.client, key, fingerprint, status, outcome)
    return _render(status, outcome, verification)
