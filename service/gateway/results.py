"""Typed results of the ASPSMS JSON API, built from its all-strings answers.

The ``from_json`` constructors raise ``ValueError`` (or ``KeyError``/``TypeError``) on a shape
the API does not promise; the client turns those into ``GatewayProtocolError``.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any


class OriginatorState(StrEnum):
    """Authorization of a sender id, from status codes 28–31 (docs/gateway.md §4, §8)."""

    NO_AUTHORIZATION_NEEDED = "no_authorization_needed"  # 28
    PENDING = "pending"  # 29
    NOT_AUTHORIZED = "not_authorized"  # 30
    AUTHORIZED = "authorized"  # 31


@dataclass(frozen=True)
class Credits:
    credits: Decimal

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Credits":
        # A string, possibly fractional; one client has seen a decimal comma (§10).
        raw = str(data["Credits"]).strip().replace(",", ".")
        try:
            return cls(Decimal(raw))
        except InvalidOperation as e:
            raise ValueError("Credits is not a number") from e


@dataclass(frozen=True)
class DeliveryNotification:
    transaction_reference_number: str
    delivery_status: int  # -1 not yet submitted, 0 delivered, 1 buffered, 2 not delivered
    delivery_status_description: str
    submission_date: datetime | None
    notification_date: datetime | None
    reason_code: str  # three digits, kept as text: "000" is meaningful
    reason_code_description: str

    @classmethod
    def from_json(cls, entry: dict[str, Any]) -> "DeliveryNotification":
        # Note the casing "Reasoncode" (docs/gateway.md §6.1); a not-yet-submitted entry may
        # carry placeholders such as ":" there, which are kept as sent.
        return cls(
            transaction_reference_number=str(entry["TransactionReferenceNumber"]),
            delivery_status=int(entry["DeliveryStatus"]),
            delivery_status_description=str(entry.get("DeliveryStatusDescription") or ""),
            submission_date=_timestamp(entry.get("SubmissionDate")),
            notification_date=_timestamp(entry.get("NotificationDate")),
            reason_code=str(entry.get("Reasoncode") or ""),
            reason_code_description=str(entry.get("ReasoncodeDescription") or ""),
        )


@dataclass(frozen=True)
class Voucher:
    voucher_code: str | None
    remark: str | None
    credits: str | None
    created: str | None
    redeemed: str | None

    @classmethod
    def from_json(cls, entry: Any) -> "Voucher":
        # The JSON skeleton shows bare strings, the SOAP schema objects (§10): accept both.
        if isinstance(entry, str):
            return cls(entry, None, None, None, None)
        if not isinstance(entry, dict):
            raise TypeError("a voucher is neither a string nor an object")
        fields = ("VoucherCode", "Remark", "Credits", "Created", "Redeemed")
        return cls(*(_text(entry.get(name)) for name in fields))


def _timestamp(value: Any) -> datetime | None:
    """ISO 8601 as the JSON API sends it (``2021-01-21T13:46:28Z``); placeholders → None."""
    if not value or not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


# Status codes 28–31 name an originator's state (docs/gateway.md §4, §8).
ORIGINATOR_STATES = {
    "28": OriginatorState.NO_AUTHORIZATION_NEEDED,
    "29": OriginatorState.PENDING,
    "30": OriginatorState.NOT_AUTHORIZED,
    "31": OriginatorState.AUTHORIZED,
}


def originator_state(code: str | None, on_ok: OriginatorState) -> OriginatorState:
    """What an originator operation's status says; "1" means ``on_ok`` for that operation."""
    return on_ok if code == "1" else ORIGINATOR_STATES[str(code)]


def delivery_notifications(data: dict[str, Any]) -> list[DeliveryNotification]:
    # An unknown reference yields no entry, not an error (§6.1).
    entries = data.get("DeliveryNotifications") or []
    if not isinstance(entries, list):
        raise TypeError("DeliveryNotifications is not a list")
    return [DeliveryNotification.from_json(entry) for entry in entries]


def vouchers(data: dict[str, Any]) -> list[Voucher]:
    entries = data.get("vouchers") or []  # lower-case key, as on the API page
    if not isinstance(entries, list):
        raise TypeError("vouchers is not a list")
    return [Voucher.from_json(entry) for entry in entries]
