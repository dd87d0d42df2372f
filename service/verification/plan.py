"""A start's plan: everything it decided from the request and the service's policy before
the store is asked, as one frozen value, and the refusals of the reservation (no Flask
here)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from service.verification import errors
from service.verification.codes import validate_mask
from service.verification.decisions import Reservation, Send
from service.verification.end_users import EndUser
from service.verification.phones import Phone
from service.verification.policy import Policy
from service.verification.trn import trn_base


@dataclass(frozen=True)
class StartPlan:
    service: str  # the tenant's id
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
    end_user: EndUser  # whom the caller says it is for (HMACs)
    safe: bool  # on the service's safe list: past every budget and breaker

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
            "delivery": "submitted", "svc": self.service,
            # the end-user id's HMAC, for whoever reads the record later (never the id)
            **({"eu": self.end_user.id} if self.end_user.id else {}),
        }


def options(policy: Policy, code_mask: str | None, validity_minutes: int | None
            ) -> tuple[str, int]:
    """The mask and validity a start asked for, within the service's policy."""
    mask = code_mask or policy.code_mask
    problem = validate_mask(mask)
    if problem:
        raise errors.ValidationFailed(f"code_mask {problem}.", errors={"code_mask": [problem]})
    validity = validity_minutes or policy.validity_minutes
    if not 1 <= validity <= policy.validity_minutes:
        message = f"must be between 1 and {policy.validity_minutes}"
        raise errors.ValidationFailed(f"validity_minutes {message}.",
                                      errors={"validity_minutes": [message]})
    return mask, validity


def refuse_if_limited(reservation: Reservation) -> None:
    """Raise the refusal of a reservation refused by the cooldown or the send budget."""
    if reservation.outcome is Send.COOLDOWN:
        raise errors.RateLimited("Wait before asking for another code.",
                                 reservation.wait_ms / 1000, "resend_cooldown")
    if reservation.outcome is Send.MAX_SENDS:
        raise errors.RateLimited("No more codes can be sent for this verification.",
                                 reservation.wait_ms / 1000, "max_sends")
