"""Delivery records, per-number outcomes, inquiry rows and notification callbacks
(docs/gateway.md §6)."""

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from .codes import DELIVERY_TEXT, REASON_TEXT
from .fields import normalise_phone, notification_url
from .notifications import Notifier, expand_url
from .timefmt import compact_cet, iso_cet, iso_utc

BUFFERED_URL = "URLBufferedMessageNotification"
DELIVERED_URL = "URLDeliveryNotification"
FAILED_URL = "URLNonDeliveryNotification"

# outcome → (default reason, steps); a step is (delay multiple, DST, RSN or None, callback).
# RSN None means "the configured reason". `lost` updates the state but calls nobody.
_OUTCOMES = {
    "delivered": ("000", ((1, "0", "000", DELIVERED_URL),)),
    "failed": ("107", ((1, "2", None, FAILED_URL),)),
    "buffered_then_delivered": (
        "107",
        ((1, "1", None, BUFFERED_URL), (2, "0", "000", DELIVERED_URL)),
    ),
    "lost": ("000", ((1, "0", "000", None),)),
}


@dataclass
class DeliveryRecord:
    """What the gateway knows about one message to one recipient."""

    trn: str
    recipient: str
    submitted: float
    status: str = "-1"
    reason: str = ""
    notified: float | None = None

    def row(self) -> dict:
        """An InquireDeliveryNotifications entry: every value a string (docs/gateway.md §6.1)."""
        described = self.status not in ("-1", "0")  # the only fixture shows "" when delivered
        return {
            "TransactionReferenceNumber": self.trn,
            "DeliveryStatus": self.status,
            "DeliveryStatusDescription": DELIVERY_TEXT[self.status],
            "SubmissionDate": iso_utc(self.submitted),
            "NotificationDate": iso_utc(self.notified) if self.notified is not None else "",
            "Reasoncode": self.reason,
            "ReasoncodeDescription": REASON_TEXT.get(self.reason, "") if described else "",
        }

    def tags(self) -> dict[str, str]:
        """Values for the callback URL tags."""
        notified = self.notified if self.notified is not None else self.submitted
        return {
            "<RCPNT>": self.recipient,
            "<SCTS>": compact_cet(self.submitted),
            "<DSCTS>": compact_cet(notified),
            "<SCTSUTC>": iso_utc(self.submitted),
            "<DSCTSUTC>": iso_utc(notified),
            "<SCTSCET>": iso_cet(self.submitted),
            "<DSCTSCET>": iso_cet(notified),
            "<RSN>": self.reason,
            "<DST>": self.status,
            "<TRN>": self.trn,
        }


@dataclass(frozen=True)
class Outcome:
    kind: str = "delivered"
    reason: str = "000"

    @classmethod
    def from_json(cls, spec) -> "Outcome":
        """`{"outcome": "failed", "reason": "107"}`; raises ValueError when malformed."""
        if not isinstance(spec, dict) or spec.get("outcome") not in _OUTCOMES:
            raise ValueError(f"outcome must be one of {sorted(_OUTCOMES)}")
        reason = spec.get("reason", _OUTCOMES[spec["outcome"]][0])
        if isinstance(reason, int) and not isinstance(reason, bool):
            reason = f"{reason:03d}"
        if not isinstance(reason, str) or not (len(reason) == 3 and reason.isdigit()):
            raise ValueError('reason must be a three-digit code such as "107"')
        return cls(spec["outcome"], reason)

    def to_json(self) -> dict:
        return {"outcome": self.kind, "reason": self.reason}


class Deliveries:
    """Delivery state of all messages; every method is called with the simulator's lock held."""

    def __init__(self, notifier: Notifier, now: Callable[[], float], delay: float):
        self._notifier = notifier
        self._now = now
        self._initial_delay = delay
        self.reset()

    def reset(self) -> None:
        self._notifier.cancel_all()
        self._records: dict[str, list[DeliveryRecord]] = {}
        self._outcomes: dict[str, Outcome] = {}
        self._default = Outcome()
        self._delay = self._initial_delay

    def submit(self, recipient: str, trn: str | None, urls: dict, wait: float = 0.0) -> None:
        """Record a message and schedule what happens to it."""
        record = DeliveryRecord(trn or "", recipient, self._now())
        if trn:
            self._records.setdefault(trn, []).append(record)
        elif not any(urls.values()):
            return  # untracked and nobody to call: nothing would ever be observable
        outcome = self._outcomes.get(recipient, self._default)
        for multiple, status, reason, url_field in _OUTCOMES[outcome.kind][1]:
            reason = reason or outcome.reason
            step = partial(self._apply, record, status, reason, urls.get(url_field))
            self._notifier.schedule(wait + multiple * self._delay, step)

    def inquire(self, trns: list[str]) -> list[dict]:
        """Inquiry rows for these TRNs; unknown TRNs simply have none (docs/gateway.md §6.1)."""
        return [record.row() for trn in trns for record in self._records.get(trn, ())]

    def configure(self, spec: dict) -> dict:
        """Apply `{"numbers": {number: outcome}, "default": outcome, "delay": s}` (ValueError)."""
        unknown = set(spec) - {"numbers", "default", "delay"}
        if unknown:
            raise ValueError(f"unknown delivery settings: {sorted(unknown)}")
        numbers = spec.get("numbers", {})
        delay = spec.get("delay", self._delay)
        if not isinstance(numbers, dict):
            raise ValueError("numbers must be an object of phone number → outcome")
        if isinstance(delay, bool) or not isinstance(delay, int | float) or not 0 <= delay <= 3600:
            raise ValueError("delay must be a number of seconds between 0 and 3600")
        parsed = {_phone_key(number): Outcome.from_json(o) for number, o in numbers.items()}
        default = Outcome.from_json(spec["default"]) if "default" in spec else self._default
        self._outcomes.update(parsed)
        self._default, self._delay = default, float(delay)
        return self.config()

    def config(self) -> dict:
        outcomes = {number: outcome.to_json() for number, outcome in self._outcomes.items()}
        return {"numbers": outcomes, "default": self._default.to_json(), "delay": self._delay}

    def _apply(self, record: DeliveryRecord, status: str, reason: str, url: str | None) -> None:
        record.status, record.reason, record.notified = status, reason, self._now()
        if url:
            self._notifier.request(expand_url(url, record.tags()))


def notification_urls(body: dict) -> dict[str, str | None]:
    """The three optional callback URLs of a send, each with its own status code (§4)."""
    return {
        BUFFERED_URL: notification_url(body, BUFFERED_URL, "17"),
        DELIVERED_URL: notification_url(body, DELIVERED_URL, "18"),
        FAILED_URL: notification_url(body, FAILED_URL, "19"),
    }


def _phone_key(number: str) -> str:
    phone = normalise_phone(number)
    if phone is None:
        raise ValueError(f"not an international phone number: {number!r}")
    return phone
