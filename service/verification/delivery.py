"""Delivery notifications (docs/gateway.md §6): signed callback URLs and a TRN for every send,
the statuses they report applied to the verification, and the inquiry fallback. No Flask.

A callback URL names a verification, the send it belongs to and what it reports, and
carries a truncated HMAC-SHA256 (a key derived from OTP_SECRET) over exactly that, so a
status cannot be forged and a URL for one verification, send or kind is refused for any
other. The gateway fills in the tags:

    {OTP_PUBLIC_URL}/delivery/{id}/{kind}{send}?s={sig}&st=<DST>&r=<RSN>&t=<DSCTSUTC>

With the longest OTP_PUBLIC_URL (80 characters) and send 10 that is 178 characters; the
gateway takes 200 (§6.4). Every send also carries a TRN, with or without OTP_PUBLIC_URL,
so `aspsms-verify delivery poll` can inquire sends whose callbacks never came. The TRN
spells the verification id and send number (trn.py), so no mapping is stored. Sends
without a final status wait, by TRN and scored by send time, in one sorted set per
verification slot (``otp:{tag}:dlv``, no SCAN): reserve_send.lua enters a send in the same
round trip that reserves it, so tracking costs the start nothing, and no single key takes
every send on a cluster. The poll reads all 65 536 slots' sets, in pipelines (the store's
awaiting_delivery).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from service.errors import ServiceError
from service.events import Event
from service.verification.decisions import Recorded
from service.verification.delivery_reasons import REASON, describe
from service.verification.errors import ValidationFailed, VerificationNotFound
from service.verification.keys import ID_PATTERN, PENDING_HORIZON_MS
from service.verification.store import VerificationStore
from service.verification.trn import parse_trn, trn_for

log = logging.getLogger(__name__)

SIGNATURE_CHARS = 22  # 132 bits of the HMAC, base64url
KINDS = {"d": "delivered", "b": "buffered", "f": "failed"}
URL_ARGUMENTS = {"url_delivery": "d", "url_buffered": "b", "url_non_delivery": "f"}
# What each URL may report (§6.2); -1 on the non-delivery URL is a rejection.
DST_FOR_KIND = {"d": ("0",), "b": ("1",), "f": ("2", "-1")}
STATUS_FOR_DST = {0: "delivered", 1: "buffered", 2: "failed"}  # -1: nothing to say yet
FINAL = ("delivered", "failed")
EVENT = re.compile(r"\A([dbf])([1-9][0-9]?)\Z")
# The time tag is not signed: a moment is believed only where it could be true, after the
# oldest verification still kept and at most a clock skew ahead of ours. Any other is
# dropped for the moment of receipt, so nothing the gateway (or a forger) fills in there is
# ever stored.
CLOCK_SKEW_MS = 5 * 60 * 1000


class InvalidSignature(ServiceError):
    status, code, title = 403, "invalid_signature", "Missing or wrong signature"


@dataclass(frozen=True)
class Report:
    """One statement about one send of a verification."""

    verification_id: str
    send: int
    status: str  # submitted | buffered | delivered | failed
    reason: str = ""
    at_ms: int | None = None


def _ms(moment: datetime) -> int | None:
    """A moment in ms since the epoch, UTC when it names no zone; None past datetime's range
    (year 1 or 9999 in a far zone)."""
    try:
        return int(moment.replace(tzinfo=moment.tzinfo or UTC).timestamp() * 1000)
    except (OverflowError, ValueError):
        return None


def _moment_ms(stamp: str) -> int | None:
    """An ISO 8601 time (the gateway's <DSCTSUTC>, UTC when it names no zone), else None."""
    try:
        return _ms(datetime.fromisoformat(stamp))
    except ValueError:
        return None


class NoNotifier:
    """The null DeliveryNotifier, for a service built without one: sends carry no TRN or
    callback URL and await no status; a callback names nothing."""

    tracks = False

    def urls_for(self, verification) -> dict[str, str]:
        return {}

    def receive(self, verification_id: str, event: str, tags: Mapping[str, str]) -> Recorded:
        raise VerificationNotFound("Delivery notifications are not configured.")


NO_NOTIFIER = NoNotifier()


class DeliveryNotifier:
    tracks = True  # every send awaits its status under its TRN (the poll's fallback)

    def __init__(self, store: VerificationStore, secret: bytes, public_url: str | None, *,
                 events=None, clock: Callable[[], float] = time.time):
        self.store = store
        self.public_url = public_url
        self._key = hmac.new(secret, b"aspsms-verify delivery url", hashlib.sha256).digest()
        self._events = events or (lambda *args, **kwargs: None)
        self._clock = clock

    # -- sending -------------------------------------------------------------------------
    def urls_for(self, verification) -> dict[str, str]:
        """Keyword arguments for AspsmsClient.send_token_sms: the TRN, and signed URLs."""
        send = verification.send_count
        arguments = {"trn": trn_for(verification.id, send)}
        if self.public_url:
            for name, kind in URL_ARGUMENTS.items():
                arguments[name] = self._url(verification.id, f"{kind}{send}")
        return arguments

    def _url(self, verification_id: str, event: str) -> str:
        return (f"{self.public_url}/delivery/{verification_id}/{event}"
                f"?s={self.signature(verification_id, event)}&st=<DST>&r=<RSN>&t=<DSCTSUTC>")

    def signature(self, verification_id: str, event: str) -> str:
        mac = hmac.new(self._key, f"{verification_id}/{event}".encode(), hashlib.sha256)
        return base64.urlsafe_b64encode(mac.digest()).decode()[:SIGNATURE_CHARS]

    # -- receiving -----------------------------------------------------------------------
    def receive(self, verification_id: str, event: str,
                tags: Mapping[str, str]) -> Recorded:
        """Check a callback's signature and tags, then apply it; raises a ServiceError."""
        report = self.verify(verification_id, event, tags)
        decision = self.apply(report)
        if decision is Recorded.NOT_FOUND:
            raise VerificationNotFound("No such verification.")
        return decision

    def verify(self, verification_id: str, event: str, tags: Mapping[str, str]) -> Report:
        match = EVENT.match(event)
        expected = (self.signature(verification_id, event)
                    if match and ID_PATTERN.match(verification_id) else "")
        presented = tags.get("s", "")
        if not expected or not hmac.compare_digest(presented.encode(), expected.encode()):
            raise InvalidSignature("This notification URL is not one we signed.")
        kind, send = match.group(1), int(match.group(2))
        dst, reason, stamp = tags.get("st", ""), tags.get("r", ""), tags.get("t", "")
        problems = {}
        if dst not in DST_FOR_KIND[kind]:
            problems["st"] = [f"must be one of {', '.join(DST_FOR_KIND[kind])} on this URL."]
        if reason and not REASON.match(reason):
            problems["r"] = ["must be a three-digit reason code."]
        at_ms = _moment_ms(stamp) if stamp else None
        if stamp and at_ms is None:
            problems["t"] = ["must be an ISO 8601 time."]
        if problems:
            raise ValidationFailed("The notification's values are malformed.",
                                      errors=problems)
        return Report(verification_id, send, KINDS[kind], reason, self._plausible(at_ms))

    def apply(self, report: Report) -> Recorded:
        """Record a report (the script orders them; a report kept for the send before one
        whose reservation stands is put back by undo_send.lua if that send fails)."""
        text, family = describe(report.status, report.reason)
        decision = self.store.record_delivery(
            report.verification_id, send=report.send, status=report.status,
            reason=report.reason, reason_text=text, at_ms=report.at_ms).decision
        trn = trn_for(report.verification_id, report.send)
        if decision in (Recorded.STALE, Recorded.NOT_FOUND) or (
                decision in (Recorded.UPDATED, Recorded.KEPT) and report.status in FINAL):
            self.store.forget_awaiting(trn)
        if decision is Recorded.UPDATED and report.status != "submitted":
            log.info("delivery %s reason=%s class=%s", report.status, report.reason or "-",
                     family)
            self._events(Event.DELIVERY, status=report.status, reason_class=family,
                         verification_id=report.verification_id)
        return decision

    # -- the inquiry fallback ------------------------------------------------------------
    def poll(self, gateway, *, older_than: float, batch: int, max_age: float) -> dict:
        """Inquire sends without a final status older than ``older_than`` seconds."""
        now = self._now_ms()
        oldest, newest = now - int(max_age * 1000), now - int(older_than * 1000)
        expired, due = self.store.awaiting_delivery(oldest, newest)
        wanted = [trn for trn in due if self._still_open(trn)]
        updated = 0
        for first in range(0, len(wanted), batch):
            rows = gateway.inquire_delivery_notifications(wanted[first:first + batch])
            updated += sum(self._apply_row(row) is Recorded.UPDATED for row in rows)
        return {"due": len(due), "inquired": len(wanted), "updated": updated,
                "expired": expired}

    def _still_open(self, trn: str) -> bool:
        """Whether the send still lacks a final status; forgets those that do not."""
        parsed = parse_trn(trn)
        data = self.store.read(parsed[0]) if parsed else None
        if data is not None:
            known = int(data.get("delivery_send") or 1)  # creation describes send 1
            if known < parsed[1] or (known == parsed[1] and data.get("delivery") not in FINAL):
                return True
        self.store.forget_awaiting(trn)
        return False

    def _apply_row(self, row) -> Recorded | None:
        parsed = parse_trn(row.transaction_reference_number)
        status = STATUS_FOR_DST.get(row.delivery_status)
        if parsed is None or status is None:
            return None  # not one of our sends, or no status yet
        reason = row.reason_code if REASON.match(row.reason_code) else ""
        moment = row.notification_date or row.submission_date
        at_ms = self._plausible(_ms(moment) if moment else None)
        return self.apply(Report(parsed[0], parsed[1], status, reason, at_ms))

    # -- plumbing ------------------------------------------------------------------------
    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _plausible(self, at_ms: int | None) -> int:
        """The reported moment if it could be true (see CLOCK_SKEW_MS), else now."""
        now = self._now_ms()
        if at_ms is None or not now - PENDING_HORIZON_MS <= at_ms <= now + CLOCK_SKEW_MS:
            return now
        return at_ms
