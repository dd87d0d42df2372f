"""A service (tenant): one app's policy, limits and phone rules, as one frozen value.

The environment's configuration is the service ``default`` (its keys are OTP_API_KEYS);
services made through the admin API override any of its fields (issue 17, contract §7).
The domain is handed the tenant of each request; it never looks one up. No Flask here.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from service.verification.phones import PhonePolicy
from service.verification.policy import Limits, Policy

DEFAULT = "default"


@dataclass(frozen=True)
class Tenant:
    id: str  # DEFAULT, or "sv_" + 32 hex digits
    policy: Policy
    limits: Limits
    phones: PhonePolicy
    name: str = DEFAULT
    twilio_sid: str = ""  # "VA" + 32 hex digits (issue 19)
    webhook_url: str | None = None  # issue 18: where its events go, None: nowhere
    webhook_events: frozenset[str] = frozenset()  # the event types sent; empty: all

    def owner(self, key_name: str) -> str:
        """Whose verifications a key sees. The default service keeps the contract's
        per-key scoping (an existing deployment upgrades unchanged: its keys' names are
        the owners of its stored verifications); a managed service's keys all see the
        service's verifications (a rotated key keeps its pending ones)."""
        return key_name if self.id == DEFAULT else self.id


def _sid(secret: bytes, prefix: str, what: str) -> str:
    return prefix + hmac.new(secret, what.encode(), hashlib.sha256).hexdigest()[:32]


def twilio_service_sid(secret: bytes, service_id: str) -> str:
    """The service's Twilio sid ("VA" + 32 hex): derived, so stable across restarts and
    processes without being stored (issue 19)."""
    return _sid(secret, "VA", "twilio-service:" + service_id)


def twilio_account_sid(secret: bytes) -> str:
    """The deployment's Twilio account sid ("AC" + 32 hex), derived like the services'."""
    return _sid(secret, "AC", "twilio-account")
