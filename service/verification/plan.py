"""A start's plan: everything it decided from the request and the policy before the store
is asked, as one frozen value (no Flask here)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from service.verification.phones import Phone
from service.verification.trn import trn_base


@dataclass(frozen=True)
class StartPlan:
    client: str
    phone: Phone
    phone_hash: str
    mask: str
    validity_minutes: int
    case_sensitive: bool
    locale: str
    reference: str
    test: bool  # a test number: its code is never sent, costs nothing, awaits no delivery
    tracked: bool  # its sends await a delivery status, under their TRNs (delivery.py)

    def trn(self, verification_id: str | None) -> str:
        """The TRN (less 'x<send>') a send of that verification awaits its status under;
        '' for none."""
        return trn_base(verification_id) if self.tracked and verification_id else ""

    def fields(self, now: int, *, max_attempts: int, resend_cooldown: int) -> dict:
        """A new verification's hash, created at ``now`` (ms) under a token reference of its
        own (reserve_send.lua gives a resend another)."""
        return {
            "client": self.client, "status": "pending", "phone": self.phone.e164,
            "ph": self.phone_hash, "country": self.phone.country, "created": now,
            "expires": now + self.validity_minutes * 60_000, "attempts": max_attempts,
            "sends": 1, "next_resend": now + resend_cooldown * 1000,
            "ref": secrets.token_hex(16), "mask": self.mask, "validity": self.validity_minutes,
            "cs": "1" if self.case_sensitive else "0", "locale": self.locale,
            "reference": self.reference, "test": "1" if self.test else "0",
            "delivery": "submitted",
        }
