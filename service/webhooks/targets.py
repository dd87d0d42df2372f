"""Which service takes which events, and where: the one lookup the webhooks make.

Until the services registry exists there is one service, the environment's ``default``;
with it (``services.tenants``, a per-process cache: no round trip), any service. Both
answer from memory, so the request path can ask on every decision whether events are on.
"""

from __future__ import annotations

from typing import Any

from service.verification.tenant import Tenant


def target(services: Any, service_id: str) -> Tenant | None:
    """The service ``service_id`` (its webhook_url and webhook_events), or None."""
    tenants = getattr(services, "tenants", None)
    if tenants is not None:
        return tenants.get(service_id)
    default = services.default_tenant
    return default if service_id == default.id else None


def any_target(services: Any) -> bool:
    """Whether any service has a webhook URL (else the scripts write no events)."""
    tenants = getattr(services, "tenants", None)
    every = tenants.all() if tenants is not None else [services.default_tenant]
    return any(tenant.webhook_url for tenant in every)
