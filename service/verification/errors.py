"""Refusals of the verification domain, each with its HTTP status and stable code."""

from __future__ import annotations

from service.errors import RateLimited, ServiceError, StoreUnavailable

__all__ = ["RateLimited", "ServiceError", "StoreUnavailable"]


class InvalidPhone(ServiceError):
    status, code, title = 422, "invalid_phone", "Invalid phone number"


class PhoneNotSmsCapable(ServiceError):
    status, code, title = 422, "phone_not_sms_capable", "Number cannot receive SMS"


class CountryNotAllowed(ServiceError):
    status, code, title = 422, "country_not_allowed", "Country not allowed"


class InvalidCode(ServiceError):
    status, code, title = 422, "invalid_code", "Code does not fit the mask"


class ValidationFailed(ServiceError):
    """A value the caller sent is refused: a field, an option, a notification's value."""

    status, code, title = 422, "validation_failed", "Request validation failed"


class IdempotencyKeyReused(ServiceError):
    status, code, title = 422, "idempotency_key_reused", "Idempotency key reused"


class IdempotencyInProgress(ServiceError):
    status, code, title = 409, "idempotency_in_progress", "Request with this key in progress"


class VerificationNotFound(ServiceError):
    status, code, title = 404, "verification_not_found", "Verification not found"


class VerificationClosed(ServiceError):
    status, code, title = 409, "verification_closed", "Verification has ended"


class CheckInProgress(ServiceError):
    status, code, title = 409, "check_in_progress", "Another check is in progress"


class ResendRequired(ServiceError):
    status, code, title = 409, "resend_required", "A new code must be sent first"


class SmsDisabled(ServiceError):
    status, code, title = 503, "sms_disabled", "Sending SMS is disabled"


class UpstreamError(ServiceError):
    status, code, title = 502, "upstream_error", "Gateway error"


class UpstreamAuthFailed(ServiceError):
    status, code, title = 502, "upstream_auth_failed", "Gateway refused our credentials"


class UpstreamRejected(ServiceError):
    status, code, title = 502, "upstream_rejected", "Gateway rejected the request"


class UpstreamUnavailable(ServiceError):
    status, code, title = 503, "upstream_unavailable", "Gateway unavailable"


class UpstreamInsufficientCredits(ServiceError):
    status, code, title = 503, "upstream_insufficient_credits", "Gateway account out of credits"


class UpstreamTimeout(ServiceError):
    status, code, title = 504, "upstream_timeout", "Gateway did not answer in time"
