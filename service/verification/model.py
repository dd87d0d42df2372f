"""The verification as callers see it, read from its Redis hash."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from service.verification.tenant import DEFAULT


def now_ms(clock: Callable[[], float]) -> int:
    return int(clock() * 1000)


def rfc3339(ms: int | None) -> str | None:
    """The moment as RFC 3339 UTC; None for none, or for one no calendar date can show (a
    bad value stored once must not make every later read fail)."""
    if ms is None:
        return None
    try:
        moment = datetime.fromtimestamp(ms / 1000, tz=UTC).replace(microsecond=0)
    except (OverflowError, OSError, ValueError):
        return None
    return moment.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Verification:
    id: str
    client: str
    status: str
    phone: str
    phone_hash: str
    country: str
    created_ms: int
    expires_ms: int
    attempts_remaining: int
    send_count: int
    next_resend_ms: int
    token_reference: str
    mask: str
    case_sensitive: bool
    locale: str
    validity_minutes: int
    reference: str | None
    test: bool
    delivery_status: str | None
    delivery_reason: str | None
    delivery_reason_text: str | None
    delivery_ms: int | None
    service: str = DEFAULT  # the tenant's id (records made before services: the default)

    @classmethod
    def from_hash(cls, verification_id: str, data: dict[str, str]) -> Verification:
        def optional_int(name: str) -> int | None:
            value = data.get(name, "")
            return int(value) if value.isascii() and value.isdigit() else None

        return cls(
            id=verification_id,
            client=data["client"],
            status=data["status"],
            phone=data["phone"],
            phone_hash=data["ph"],
            country=data.get("country", "ZZ"),
            created_ms=int(data["created"]),
            expires_ms=int(data["expires"]),
            attempts_remaining=int(data["attempts"]),
            send_count=int(data["sends"]),
            next_resend_ms=int(data["next_resend"]),
            token_reference=data["ref"],
            mask=data["mask"],
            case_sensitive=data.get("cs") == "1",
            locale=data.get("locale", "en"),
            validity_minutes=int(data["validity"]),
            reference=data.get("reference") or None,
            test=data.get("test") == "1",
            # nothing is sent to a test number, so there is no delivery to report
            delivery_status=None if data.get("test") == "1" else data.get("delivery",
                                                                          "submitted"),
            delivery_reason=data.get("delivery_reason") or None,
            delivery_reason_text=data.get("delivery_reason_text") or None,
            delivery_ms=optional_int("delivery_at"),
            service=data.get("svc") or DEFAULT,
        )

    @property
    def is_pending(self) -> bool:
        return self.status == "pending"

    def public(self, max_sends: int) -> dict[str, Any]:
        """The contract's verification object."""
        resend_open = self.is_pending and self.send_count < max_sends
        body: dict[str, Any] = {
            "id": self.id,
            "status": self.status,
            "phone": self.phone,
            "channel": "sms",
            "created_at": rfc3339(self.created_ms),
            "expires_at": rfc3339(self.expires_ms),
            "attempts_remaining": self.attempts_remaining,
            "send_count": self.send_count,
            "resend_available_at": rfc3339(self.next_resend_ms) if resend_open else None,
            "delivery_status": self.delivery_status,
            "delivery_reason": self.delivery_reason,
            "delivery_reason_text": self.delivery_reason_text,
            "delivery_updated_at": rfc3339(self.delivery_ms),
            "reference": self.reference,
        }
        return body
