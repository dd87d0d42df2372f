"""The admin side: the audited operations, the audit trail, console sign-ins, the credits
gauge's refresher. The HTTP API (:mod:`service.http.admin`) and the web console
(:mod:`service.http.console`) are its two faces; the CLI uses :mod:`.originators` alone.
No Flask here.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.admin.audit import AuditLog
from service.admin.console_sessions import ConsoleSessions, cookie_key
from service.admin.credits import CreditsRefresher
from service.admin.ops import AdminOps
from service.verification.service import VerificationService
from service.verification.tenant import Tenant


@dataclass(frozen=True)
class Admin:
    ops: AdminOps
    audit: AuditLog
    console_sessions: ConsoleSessions
    credits: CreditsRefresher


def build(redis, secret: bytes, verifications: VerificationService, events,
          tenant: Tenant) -> Admin:
    """The admin side over one store and the domain, listening to the domain's events."""
    audit = AuditLog(redis)
    credits = CreditsRefresher(verifications.gateway, events)
    events.subscribe(audit.on_event)
    events.subscribe(credits.on_event)
    return Admin(ops=AdminOps(verifications, audit, events, tenant), audit=audit,
                 console_sessions=ConsoleSessions(redis, cookie_key(secret)), credits=credits)
