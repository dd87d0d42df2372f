"""Refusals of the services registry, each with its HTTP status and stable code."""

from __future__ import annotations

from service.errors import ServiceError


class ServiceNotFound(ServiceError):
    status, code, title = 404, "service_not_found", "No such service"


class KeyNotFound(ServiceError):
    status, code, title = 404, "key_not_found", "No such key"


class EnvironmentManaged(ServiceError):
    """The default service and OTP_API_KEYS are the environment's: changed there, not here."""

    status, code, title = 409, "environment_managed", "Managed by the environment"


class ConcurrentChange(ServiceError):
    status, code, title = 409, "concurrent_change", "Changed by someone else meanwhile"
