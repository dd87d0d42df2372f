"""The admin side of the webhooks: a service's signing secret, its failed deliveries and
their redelivery, each audited with the acting admin key's name. No Flask here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from service.errors import ServiceError
from service.tenants.errors import ServiceNotFound
from service.verification.tenant import Tenant
from service.webhooks.failed import Failed, FailedDeliveries
from service.webhooks.signing import Secrets


class DeliveryNotFound(ServiceError):
    status, code, title = 404, "delivery_not_found", "Delivery not found"


class WebhookAdmin:
    def __init__(self, *, secrets: Secrets, failed: FailedDeliveries, audit,
                 targets: Callable[[str], Tenant | None]):
        self.secrets = secrets
        self.failed = failed
        self.audit = audit
        self.targets = targets

    def _service(self, service_id: str) -> Tenant:
        tenant = self.targets(service_id)
        if tenant is None:
            raise ServiceNotFound("No such service.")
        return tenant

    def rotate_secret(self, actor: str, service_id: str) -> str:
        """A new signing secret, shown this once; the previous one signs on for 24 h."""
        self._service(service_id)
        secret = self.secrets.rotate(service_id)
        self.audit.record(actor, "webhook.secret_rotate", service_id, "ok")
        return secret

    def failed_deliveries(self, actor: str, service_id: str) -> list[Failed]:
        self._service(service_id)
        return self.failed.list(service_id)

    def retry(self, actor: str, service_id: str, delivery_id: str) -> dict[str, Any]:
        self._service(service_id)
        if not self.failed.retry(service_id, delivery_id):
            self.audit.record(actor, "webhook.retry", delivery_id, "not_found")
            raise DeliveryNotFound("No failed delivery with this id.")
        self.audit.record(actor, "webhook.retry", delivery_id, "queued")
        return {"id": delivery_id, "status": "queued"}
