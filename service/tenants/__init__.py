"""Services (tenants): the registry of every app's policy and keys (issue 17, contract §7).

:mod:`.schema` checks a service document's shape, :mod:`.document` holds its fields to the
environment's rules and builds the Tenant, :mod:`.store` keeps them in Redis under one hash
tag, :mod:`.registry` is the per-process cache requests read (no round trip),
:mod:`.manage` the audited changes the admin API, the console and the CLI share,
:mod:`.keys` the runtime API keys. No Flask here.
"""

from __future__ import annotations

from service.admin.audit import AuditLog
from service.tenants.manage import ServiceAdmin
from service.tenants.registry import Authenticated, Registry
from service.tenants.store import ServiceStore
from service.verification.tenant import DEFAULT, Tenant

__all__ = ["Authenticated", "Registry", "ServiceAdmin", "ServiceStore", "base_tenant",
           "build"]


def base_tenant(settings) -> Tenant:
    """The environment's configuration as the service ``default``, before stored overrides."""
    return Tenant(DEFAULT, settings.policy, settings.limits, settings.phones)


def build(redis, settings, audit: AuditLog) -> tuple[Registry, ServiceAdmin]:
    """The registry (its cache loaded once now, if the store answers) and its admin side."""
    store, base = ServiceStore(redis), base_tenant(settings)
    registry = Registry(store, settings.secret, base, settings.keys.clients)
    registry.refresh()
    registry.start()
    manage = ServiceAdmin(store, audit, base, settings.secret, settings.keys.clients,
                          settings.keys.admins, on_change=registry.refresh,
                          webhook_allow_private=settings.webhook_allow_private)
    return registry, manage
