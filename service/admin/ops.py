"""Admin operations for the API and the web console: sender ids, credits, any verification,
lockouts, the support lookup, the audit trail.

The gateway work is :mod:`service.admin.originators` (which the CLI uses alone); here each
call is audited with the admin key's name, and gateway failures become the problems the
verification flow answers with. No Flask here.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from service.admin import audit
from service.admin.originators import (
    OriginatorStatus,
    account_credits,
    audit_target,
    configured_originator_status,
    originator_kind,
    originator_status,
    request_unlock_code,
    unlock_originator,
)
from service.errors import ServiceError
from service.events import Event
from service.gateway import AspsmsClient, GatewayError
from service.verification.errors import VerificationNotFound
from service.verification.keys import ID_PATTERN
from service.verification.lookup import SupportLookup
from service.verification.phones import mask_phone
from service.verification.service import VerificationService
from service.verification.tenant import DEFAULT, Tenant
from service.verification.upstream import problem_for

log = logging.getLogger(__name__)

@dataclass
class _Action:
    target: str
    outcome: str = "ok"


class AdminOps:
    """Every admin action, audited with the acting key's name."""

    def __init__(self, verifications: VerificationService, audit_log: audit.AuditLog,
                 events: Callable[..., None], tenant: Tenant):
        self.verifications = verifications
        self.gateway: AspsmsClient = verifications.gateway
        self.store = verifications.store
        self.audit = audit_log
        self.lookup = SupportLookup(self.store, clock=verifications.clock)
        self.events = events
        # the default service: its policy, phones and limits (issue 17)
        self.tenant = tenant
        # every service by its id (the registry's cache); the app points it at the registry
        self.tenant_of: Callable[[str], Tenant | None] = {tenant.id: tenant}.get
        # every service's id (the registry's): a lockout is per service, cleared in all
        self.service_ids: Callable[[], Iterable[str]] = lambda: (tenant.id,)
        self.originator = tenant.policy.originator  # its sender id (ASPSMS_ORIGINATOR)
        self.startup_check: threading.Thread | None = None

    def originator_status(self, actor: str, originator: str, *,
                          record: bool = True) -> OriginatorStatus:
        with self._audited(actor, "originator.check", audit_target(originator),
                           record=record) as act:
            status = originator_status(self.gateway, originator)
            act.outcome = status.state.value
        return status

    def configured_originator_status(self, actor: str, *,
                                     record: bool = True) -> OriginatorStatus:
        with self._audited(actor, "originator.configured", audit_target(self.originator),
                           record=record) as act:
            status = configured_originator_status(self.gateway, self.originator)
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
        phone = self.tenant.phones.parse(number)
        self.verifications.limits.count_unlock_code(self.tenant, phone,
                                                    self.store.phone_hash(phone.e164))

    def unlock_originator(self, actor: str, originator: str, code: str) -> OriginatorStatus:
        with self._audited(actor, "originator.unlock", audit_target(originator)) as act:
            status = unlock_originator(self.gateway, originator, code)
            act.outcome = status.state.value
        return status

    def account_credits(self, actor: str, *, record: bool = True) -> Decimal:
        with self._audited(actor, "credits.check", "account", record=record):
            credits = account_credits(self.gateway)
        self.events(Event.CREDITS, credits=credits)  # the gauge, and its refresher
        return credits

    def verification(self, actor: str, verification_id: str) -> dict[str, Any]:
        """Any client's verification, as that client would see it, plus the client's name."""
        target = verification_id if ID_PATTERN.match(verification_id) else "(malformed id)"
        with self._audited(actor, "verification.read", target):
            data = self.store.read(verification_id)
            tenant = None if data is None else self.tenant_of(data.get("svc") or DEFAULT)
            if tenant is None:  # no such verification, or its service was deleted
                raise VerificationNotFound("No such verification.")
            found = self.verifications.read(tenant, data["client"], verification_id)
        return {**found.public(tenant.policy.max_sends), "client": found.client,
                "service_id": tenant.id}

    def verifications_of(self, actor: str, phone: str) -> dict[str, Any]:
        """The support lookup: the number's verifications of the last 30 days, masked; the
        audit names the number masked too."""
        e164 = self.tenant.phones.normalise(phone)  # the deployment's rules
        with self._audited(actor, "verification.lookup", mask_phone(e164)) as act:
            found = self.lookup.find(e164)
            act.outcome = "found" if found["count"] else "none"
        return found

    def clear_lockout(self, actor: str, phone: str) -> dict[str, Any]:
        """Forget a phone's consecutive wrong codes, in every service; ``cleared``: a lock in
        force was lifted."""
        e164 = self.tenant.phones.parse(phone).e164
        with self._audited(actor, "lockout.clear", mask_phone(e164)) as act:
            cleared = self.store.clear_lockout(self.store.phone_hash(e164),
                                               int(self.verifications.clock() * 1000),
                                               services=self.service_ids())
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

    # -- start-up ------------------------------------------------------------------------
    def check_configured_originator(self, notes: list[str]) -> None:
        """Warn once (a log line, and a note for /readyz) when the numeric sender id is not
        unlocked; the gateway still decides."""
        shown = audit_target(self.originator)
        try:
            status = configured_originator_status(self.gateway, self.originator)
        except GatewayError as e:
            note = (f"ASPSMS_ORIGINATOR {shown}: authorization could not be checked at "
                    f"start-up ({e})")
            log.warning(note)
            notes.append(note)
            return
        if not status.authorized:
            note = (f"ASPSMS_ORIGINATOR {shown} is {status.state.value} at the gateway: SMS "
                    "will be refused until it is unlocked (POST /admin/originators/<number>/"
                    "unlock-code, then .../unlock; or 'aspsms-verify originator "
                    "send-unlock-code <number>')")
            log.warning(note)
            notes.append(note)

    def start_originator_check(self, notes: list[str]) -> None:
        """In the background, for a numeric sender id: start-up must not wait for (or fail
        on) the gateway."""
        if originator_kind(self.originator) != "numeric":
            return
        self.startup_check = threading.Thread(target=self.check_configured_originator,
                                              args=(notes,), name="originator-check",
                                              daemon=True)
        self.startup_check.start()
