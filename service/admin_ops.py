"""Admin operations: sender ids (originators), credits, verifications, lockouts, audit.

Two layers, one implementation. The module functions talk to the gateway and nothing else,
so the CLI can use them with just credentials. :class:`AdminOps` wraps the same functions
for the API and the web console: each call is audited with the admin key's name, and
gateway failures become the problems the verification flow answers with. No Flask here.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from service import audit
from service.errors import ServiceError
from service.gateway import AspsmsClient, GatewayError, OriginatorState
from service.gateway.originators import originator_kind as gateway_originator_kind
from service.verification.errors import VerificationNotFound
from service.verification.phones import mask_phone
from service.verification.store import ID_PATTERN
from service.verification.upstream import problem_for

log = logging.getLogger(__name__)

ACCEPTED = (OriginatorState.AUTHORIZED, OriginatorState.NO_AUTHORIZATION_NEEDED)


class InvalidOriginator(ServiceError):
    status, code, title = 422, "invalid_originator", "Invalid originator"


class UnlockCodeRejected(ServiceError):
    status, code, title = 422, "unlock_code_rejected", "Unlock code rejected"


@dataclass(frozen=True)
class OriginatorStatus:
    originator: str
    kind: str  # alphanumeric | numeric
    state: OriginatorState

    @property
    def authorized(self) -> bool:
        return self.state in ACCEPTED

    def public(self) -> dict[str, Any]:
        return {"originator": self.originator, "kind": self.kind,
                "authorized": self.authorized, "state": self.state.value}


# -- the operations, gateway only (CLI, and the audited layer below) ----------------------
def originator_kind(originator: str) -> str:
    """``alphanumeric`` or ``numeric``; anything else is refused before the gateway sees it."""
    kind = gateway_originator_kind(originator)
    if kind is not None:
        return kind
    raise InvalidOriginator("An originator is 1-11 letters, digits, spaces or !@.- (not only "
                            "digits), or a number in E.164 format such as +41791234567.")


def originator_status(gateway: AspsmsClient, originator: str) -> OriginatorStatus:
    """CheckOriginatorAuthorization."""
    kind = originator_kind(originator)
    return OriginatorStatus(originator, kind, gateway.check_originator_authorization(originator))


def configured_originator_status(gateway: AspsmsClient, originator: str) -> OriginatorStatus:
    """An alphanumeric sender needs no unlocking, so only a numeric one costs a gateway call."""
    if originator_kind(originator) == "alphanumeric":
        return OriginatorStatus(originator, "alphanumeric", OriginatorState.NO_AUTHORIZATION_NEEDED)
    return originator_status(gateway, originator)


def request_unlock_code(gateway: AspsmsClient, originator: str) -> OriginatorStatus:
    """SendOriginatorUnlockCode: ``pending`` means a code is on its way to that number."""
    kind = originator_kind(originator)
    return OriginatorStatus(originator, kind, gateway.send_originator_unlock_code(originator))


def unlock_originator(gateway: AspsmsClient, originator: str, code: str) -> OriginatorStatus:
    """UnlockOriginator; a code the gateway refuses is an error, not a state."""
    kind = originator_kind(originator)
    state = gateway.unlock_originator(originator, code)
    if state not in ACCEPTED:
        raise UnlockCodeRejected("The gateway refused this unlock code. Check it, or request "
                                 "a new one.", state=state.value)
    return OriginatorStatus(originator, kind, state)


def account_credits(gateway: AspsmsClient) -> Decimal:
    """CheckCredits."""
    return gateway.check_credits().credits


def audit_target(originator: str) -> str:
    """How an originator appears in the audit log: a numeric one is a phone number."""
    return mask_phone(originator) if originator_kind(originator) == "numeric" else originator


# -- the audited layer (API and web console) ----------------------------------------------
@dataclass
class _Action:
    target: str
    outcome: str = "ok"


class AdminOps:
    """Every admin action, audited with the acting key's name."""

    def __init__(self, services, audit_log: audit.AuditLog):
        self.services = services
        self.audit = audit_log
        self.startup_check: threading.Thread | None = None

    @property
    def gateway(self) -> AspsmsClient:
        return self.services.gateway

    def originator_status(self, actor: str, originator: str, *,
                          record: bool = True) -> OriginatorStatus:
        with self._audited(actor, "originator.check", audit_target(originator),
                           record=record) as act:
            status = originator_status(self.gateway, originator)
            act.outcome = status.state.value
        return status

    def configured_originator_status(self, actor: str, *,
                                     record: bool = True) -> OriginatorStatus:
        originator = self.services.settings.policy.originator
        with self._audited(actor, "originator.configured", audit_target(originator),
                           record=record) as act:
            status = configured_originator_status(self.gateway, originator)
            act.outcome = status.state.value
        return status

    def request_unlock_code(self, actor: str, originator: str) -> OriginatorStatus:
        with self._audited(actor, "originator.unlock_code", audit_target(originator)) as act:
            if originator_kind(originator) == "numeric":
                self._count_unlock_sms(originator)
            status = request_unlock_code(self.gateway, originator)
            act.outcome = status.state.value
        return status

    def _count_unlock_sms(self, number: str) -> None:
        """An unlock code is an SMS to that number: only to a number the phone policy would
        text a verification code to, and counted against the budgets like a send."""
        verifications = self.services.verifications
        phone = verifications.phones.parse(number)
        if verifications.limits is not None:
            verifications.limits.count_unlock_code(phone,
                                                   self.services.store.phone_hash(phone.e164))

    def unlock_originator(self, actor: str, originator: str, code: str) -> OriginatorStatus:
        with self._audited(actor, "originator.unlock", audit_target(originator)) as act:
            status = unlock_originator(self.gateway, originator, code)
            act.outcome = status.state.value
        return status

    def account_credits(self, actor: str, *, record: bool = True) -> Decimal:
        with self._audited(actor, "credits.check", "account", record=record):
            credits = account_credits(self.gateway)
        self.services.events("credits", credits=credits)  # the gauge, and its refresher
        return credits

    def verification(self, actor: str, verification_id: str) -> dict[str, Any]:
        """Any client's verification, as that client would see it, plus the client's name."""
        target = verification_id if ID_PATTERN.match(verification_id) else "(malformed id)"
        with self._audited(actor, "verification.read", target):
            data = self.services.store.read(verification_id)
            if data is None:
                raise VerificationNotFound("No such verification.")
            found = self.services.verifications.read(data["client"], verification_id)
        return {**found.public(self.services.settings.policy.max_sends), "client": found.client}

    def clear_lockout(self, actor: str, phone: str) -> dict[str, Any]:
        """Forget a phone's consecutive wrong codes; ``cleared``: a lock in force was lifted."""
        verifications = self.services.verifications
        e164 = verifications.phones.parse(phone).e164
        with self._audited(actor, "lockout.clear", mask_phone(e164)) as act:
            store = self.services.store
            cleared = store.clear_lockout(store.phone_hash(e164),
                                          int(verifications.clock() * 1000))
            act.outcome = "cleared" if cleared else "not_locked"
        return {"phone": mask_phone(e164), "cleared": cleared}

    def audit_page(self, actor: str, limit: int, before: str | None = None, *,
                   record: bool = True) -> tuple[list[audit.Entry], str | None]:
        # Reading the audit trail through the API is audited (PCI DSS 10.2.1.3).
        with self._audited(actor, "audit.read", "audit", record=record):
            return self.audit.page(limit, before)

    @contextmanager
    def _audited(self, actor: str, action: str, target: str, *,
                 record: bool = True) -> Iterator[_Action]:
        """Run an action and record its outcome; gateway failures become the flow's problems.

        ``record=False`` is for reads shown as pages (the console's overview, its sender-id
        check, its audit page): looking must not bury the actions in the log.
        """
        def note(outcome: str) -> None:
            if record:
                self.audit.record(actor, action, act.target, outcome)

        if record:
            self.audit.ready()
        act = _Action(target)
        try:
            yield act
        except GatewayError as e:
            problem = problem_for(e)
            note(problem.code)
            raise problem from e
        except ServiceError as e:
            note(e.code)
            raise
        except Exception:
            note("internal_error")
            raise
        note(act.outcome)


# -- start-up -----------------------------------------------------------------------------
def check_configured_originator(services) -> None:
    """Warn once when the numeric sender id is not unlocked; the gateway still decides."""
    originator = services.settings.policy.originator
    shown = audit_target(originator)
    try:
        status = configured_originator_status(services.gateway, originator)
    except GatewayError as e:
        note = f"ASPSMS_ORIGINATOR {shown}: authorization could not be checked at start-up ({e})"
        log.warning(note)
        services.startup_notes.append(note)
        return
    if not status.authorized:
        note = (f"ASPSMS_ORIGINATOR {shown} is {status.state.value} at the gateway: SMS will be "
                "refused until it is unlocked (POST /admin/originators/<number>/unlock-code, "
                "then .../unlock; or 'aspsms-verify originator send-unlock-code <number>')")
        log.warning(note)
        services.startup_notes.append(note)


def init_app(app, services) -> AdminOps:
    """The audit log, the audited admin operations, and the start-up originator check."""
    ops = AdminOps(services, audit.init_app(app, services))
    app.extensions["otp_admin"] = ops
    if originator_kind(services.settings.policy.originator) == "numeric":
        # In the background: start-up must not wait for (or fail on) the gateway.
        ops.startup_check = threading.Thread(target=check_configured_originator,
                                             args=(services,), name="originator-check",
                                             daemon=True)
        ops.startup_check.start()
    return ops
