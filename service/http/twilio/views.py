"""/v2: Twilio Verify v2's routes over the same domain, limits and idempotency as /otp/*.

Each view reads Twilio's form into the contract's terms (:mod:`.params`), calls the domain
exactly as :mod:`service.http.otp` does, and renders Twilio's resource (:mod:`.resources`);
refusals become Twilio's error bodies (:mod:`.errors`). The idempotency header is Twilio's
``I-Twilio-Idempotency-Token``, kept in the store Idempotency-Key uses.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from flask import Blueprint, Response, g, jsonify, request

from service.errors import ServiceError, StoreUnavailable
from service.http.auth import admin_required
from service.http.context import services
from service.http.idempotent import IDEMPOTENCY_KEY, answer_once
from service.http.limits import per_client
from service.http.observe import naming_phone, note_phone
from service.http.twilio import access, errors, params, resources
from service.verification.idempotency import Answered
from service.verification.model import Verification
from service.verification.service import StartRequest
from service.verification.twilio_sids import VerificationSids

bp = Blueprint("twilio", __name__, url_prefix="/v2")
log = logging.getLogger(__name__)


def _remember_sent(verification_id: str) -> None:
    """The VE sid's mapping of a verification whose code has just been sent. If the store
    fails now, the SMS is out all the same: the answer says so (its sid is derived, not
    read), and a fetch by that sid finds it once the mapping is written again (any /v2
    answer about it does); an error here would make the caller send again, into the
    cooldown."""
    try:
        _sids().remember(verification_id)
    except StoreUnavailable:
        log.warning("the VE sid's mapping was not written (store unavailable); the "
                    "verification stays reachable by its number",
                    extra={"verification_id": verification_id})
admin_bp = Blueprint("twilio_admin", __name__, url_prefix="/admin")
TOKEN_HEADER = "I-Twilio-Idempotency-Token"
errors.register(bp)


def _sids() -> VerificationSids:
    return services().twilio_sids


def _token() -> str | None:
    token = request.headers.get(TOKEN_HEADER)
    if token is not None and not IDEMPOTENCY_KEY.match(token):
        raise errors.invalid_parameter(TOKEN_HEADER, "must be 1-255 visible ASCII characters")
    return token


def _rendered(render, status: int):
    """An answer_once renderer: the Twilio resource ``render`` makes, with ``status``."""
    def respond(body: dict[str, Any], answered: Answered, verification: Verification):
        if "phone" in body:
            note_phone(verification.phone)
        sid = _sids().sid(verification.id)
        response = jsonify(render(verification, sid=sid,
                                  service_sid=access.service_sid(g.tenant),
                                  account_sid=access.account_sid()))
        response.status_code = status
        return response
    return respond


def _refuse(checking: bool):
    def refuse(problem: dict[str, Any], headers: dict[str, str]) -> Response:
        return errors.from_problem(problem, headers, checking=checking)
    return refuse


def _verification(sid: str) -> Verification:
    """The verification a path's Sid names: a VE sid, or a phone number (its latest)."""
    domain = services().verifications
    if sid.startswith("VE"):
        verification_id = _sids().resolve(params.sid(sid))
    else:
        try:
            phone = g.tenant.phones.parse(sid)
        except ServiceError:  # no number of ours: Twilio's answer for an unknown Sid
            raise errors.not_found() from None
        verification_id = domain.store.pointer(g.client, domain.store.phone_hash(phone.e164))
    if verification_id is None:
        raise errors.not_found()
    verification = domain.read(g.tenant, g.client, verification_id)
    if not sid.startswith("VE"):
        _sids().remember(verification.id)  # the sid answered may have been started on /otp
    return verification


def _render_one(verification: Verification) -> Response:
    return _rendered(resources.verification, 200)({}, Answered(200, verification.id),
                                                   verification)


# -- Services (admin key) ------------------------------------------------------------------
def _service(service_id: str) -> dict[str, Any]:
    """A service as Twilio's resource, from the registry's audited record (its times)."""
    shown = services().service_admin.show(service_id)
    tenant = services().tenants.get(service_id)
    if tenant is None:  # deleted meanwhile
        raise errors.not_found()
    return resources.service(tenant, sid=access.service_sid(tenant),
                             account_sid=access.account_sid(), created=shown.get("created"),
                             updated=shown.get("updated"))


@bp.post("/Services")
@access.admin_basic
def create_service():
    """A new service (POST /admin/services, audited): FriendlyName is its name and the name
    its texts give; CodeLength its code mask. Its client keys are made in the admin API."""
    created = services().service_admin.create(g.admin, params.create_service())
    response = jsonify(_service(created["id"]))
    response.status_code = 201
    return response


@bp.get("/Services/<service_sid>")
@access.admin_basic
def fetch_service(service_sid: str):
    """A service, as Twilio's Service resource."""
    tenant = access.tenant_for_sid(service_sid)
    if tenant is None:
        raise errors.not_found()
    return jsonify(_service(tenant.id))


# -- Verifications (client key of the service) ---------------------------------------------
@bp.post("/Services/<service_sid>/Verifications")
@access.client_basic
@per_client
def create_verification(service_sid: str):
    """Send a code by SMS (or resend on the pending verification): POST /otp/start."""
    body = params.create_verification()

    def start(body: dict[str, Any]) -> tuple[Answered, Verification]:
        fields = dict(body)
        tenant = g.tenant
        if "friendly_name" in fields:  # this send's texts name it, as the service's would
            policy = dataclasses.replace(tenant.policy, friendly_name=fields.pop("friendly_name"))
            tenant = dataclasses.replace(tenant, policy=policy)
        started = services().verifications.start(tenant, g.client, StartRequest(**fields))
        _remember_sent(started.verification.id)
        return Answered(201 if started.created else 200, started.verification.id), \
            started.verification

    with naming_phone(body["phone"]):
        return answer_once("twilio-start", body, start, key=_token(),
                           render=_rendered(resources.verification, 201),
                           refuse=_refuse(checking=False))


@bp.get("/Services/<service_sid>/Verifications/<sid>")
@access.client_basic
@per_client
def fetch_verification(service_sid: str, sid: str):
    """A pending verification; an ended one is Twilio's 404, with our verification_status."""
    verification = _verification(sid)
    if not verification.is_pending:
        raise errors.not_found(verification_status=verification.status)
    return _render_one(verification)


@bp.post("/Services/<service_sid>/Verifications/<sid>")
@access.client_basic
@per_client
def update_verification(service_sid: str, sid: str):
    """Status=canceled ends a pending verification: POST /otp/verifications/{id}/cancel."""
    params.update_verification()
    verification = _verification(sid)
    return _render_one(services().verifications.cancel(g.tenant, g.client, verification.id))


@bp.post("/Services/<service_sid>/VerificationCheck")
@access.client_basic
@per_client
def create_verification_check(service_sid: str):
    """Check a code: POST /otp/check (approves at most once)."""
    body = params.create_verification_check()

    def check(body: dict[str, Any]) -> tuple[Answered, Verification]:
        target = {"phone": body["phone"]} if "phone" in body else {
            "verification_id": _sids().resolve(body["verification_sid"]) or ""}
        verification, valid = services().verifications.check(g.tenant, g.client, body["code"],
                                                             **target)
        if "phone" in body:  # its sid is answered: make it resolve if /otp started it
            _sids().remember(verification.id)
        return Answered(200, verification.id, valid), verification

    with naming_phone(body.get("phone")):
        return answer_once("twilio-check", body, check, key=_token(),
                           render=_rendered(resources.verification_check, 200),
                           refuse=_refuse(checking=True))


# -- the account sid (admin API, Bearer admin key) -----------------------------------------
@admin_bp.get("/twilio")
@admin_required
def twilio_account():
    """The account sid a Twilio SDK signs in with, and the default service's sid."""
    return jsonify({"account_sid": access.account_sid(),
                    "default_service_sid": access.service_sid(services().default_tenant)})
