"""Twilio's Service, Verification and VerificationCheck resources, from ours.

Field names and types as in Twilio's published description of Verify v2; what this service
has no counterpart for is null (nullable there), never made up. ``url`` and ``links`` point at
this service: OTP_PUBLIC_URL when set, else the host the request came to.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from flask import request

from service.http.context import services
from service.verification.model import Verification, rfc3339
from service.verification.tenant import Tenant


def base_url() -> str:
    return services().settings.public_url or request.host_url.rstrip("/")


def service_url(service_sid: str) -> str:
    return f"{base_url()}/v2/Services/{service_sid}"


def code_length(mask: str) -> int:
    """The code's characters in a mask (its literals, a space or a hyphen, are no code)."""
    return sum(1 for c in mask if c not in " -")


def service(tenant: Tenant, *, sid: str, account_sid: str, created: str | None = None,
            updated: str | None = None) -> dict[str, Any]:
    """``created``, ``updated``: the service document's times (the default service, from the
    environment, may have none)."""
    url = service_url(sid)
    return {
        "sid": sid,
        "account_sid": account_sid,
        "friendly_name": tenant.policy.friendly_name or tenant.name,
        "code_length": code_length(tenant.policy.code_mask),
        "lookup_enabled": False,
        "psd2_enabled": False,
        "skip_sms_to_landlines": True,  # numbers that cannot take an SMS are refused
        "dtmf_input_required": False,
        "tts_name": None,
        "do_not_share_warning_enabled": False,
        "custom_code_enabled": False,
        "push": None,
        "totp": None,
        "default_template_sid": None,
        "whatsapp": None,
        "passkeys": None,
        "verify_event_subscription_enabled": False,
        "date_created": created,
        "date_updated": updated,
        "url": url,
        "links": {"verifications": f"{url}/Verifications",
                  "verification_checks": f"{url}/VerificationCheck"},
    }


def _attempt_sid(verification_id: str, number: int) -> str:
    digest = hmac.new(services().settings.secret,
                      f"twilio-attempt:{verification_id}:{number}".encode(), hashlib.sha256)
    return "VL" + digest.hexdigest()[:32]


def _common(verification: Verification, *, sid: str, service_sid: str,
            account_sid: str) -> dict[str, Any]:
    updated = max(verification.created_ms, verification.delivery_ms or 0)
    return {
        "sid": sid,
        "service_sid": service_sid,
        "account_sid": account_sid,
        "to": verification.phone,  # masked once the verification has ended, as on /otp
        "channel": "sms",
        "status": verification.status,
        "valid": verification.status == "approved",
        "amount": None,
        "payee": None,
        "date_created": rfc3339(verification.created_ms),
        "date_updated": rfc3339(updated),
    }


def verification(verification: Verification, *, sid: str, service_sid: str,
                 account_sid: str) -> dict[str, Any]:
    body = _common(verification, sid=sid, service_sid=service_sid, account_sid=account_sid)
    # only the first send's time is kept (a resend's is not stored)
    attempts = [{"attempt_sid": _attempt_sid(verification.id, n), "channel": "sms",
                 "time": rfc3339(verification.created_ms) if n == 1 else None}
                for n in range(1, verification.send_count + 1)]
    body.update(lookup=None, send_code_attempts=attempts, sna=None,
                url=f"{service_url(service_sid)}/Verifications/{sid}")
    return body


def verification_check(verification: Verification, *, sid: str, service_sid: str,
                       account_sid: str) -> dict[str, Any]:
    body = _common(verification, sid=sid, service_sid=service_sid, account_sid=account_sid)
    body["sna_attempts_error_codes"] = []
    return body
