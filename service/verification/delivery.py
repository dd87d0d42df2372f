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
spells the verification id and send number in [A-Za-z0-9] (§5.3), so no mapping is stored.
Sends without a final status wait, by TRN and scored by send time, in one sorted set per
verification slot (``otp:{tag}:dlv``, no SCAN): reserve_send.lua enters a send in the same
round trip that reserves it, so tracking costs the start nothing, and no single key takes
every send on a cluster. The poll reads all 65 536 slots' sets, in pipelines.
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
from service.verification.errors import ValidationFailed, VerificationNotFound
from service.verification.store import (
    ID_PATTERN,
    PENDING_HORIZON_MS,
    VerificationStore,
    store_call,
)

log = logging.getLogger(__name__)

TAGS = [f"{tag:04x}" for tag in range(16**4)]  # every slot's set of sends awaiting status
POLL_BATCH = 2048  # tags read per round trip by the poll
SIGNATURE_CHARS = 22  # 132 bits of the HMAC, base64url
KINDS = {"d": "delivered", "b": "buffered", "f": "failed"}
URL_ARGUMENTS = {"url_delivery": "d", "url_buffered": "b", "url_non_delivery": "f"}
# What each URL may report (§6.2); -1 on the non-delivery URL is a rejection.
DST_FOR_KIND = {"d": ("0",), "b": ("1",), "f": ("2", "-1")}
STATUS_FOR_DST = {0: "delivered", 1: "buffered", 2: "failed"}  # -1: nothing to say yet
FINAL = ("delivered", "failed")
EVENT = re.compile(r"\A([dbf])([1-9][0-9]?)\Z")
TRN = re.compile(r"\A([0-9a-f]{4})([0-9a-f]{32})x([1-9][0-9]?)\Z")
REASON = re.compile(r"\A[0-9]{3}\Z")
# The time tag is not signed: a moment is believed only where it could be true, after the
# oldest verification still kept and at most a clock skew ahead of ours. Any other is
# dropped for the moment of receipt, so nothing the gateway (or a forger) fills in there is
# ever stored.
CLOCK_SKEW_MS = 5 * 60 * 1000


# Reason codes and their labels, docs/gateway.md §6.3 (GSM/MAP style).
REASON_TEXT = {
    "000": "unknown subscriber",
    **{f"{code:03d}": "service temporarily unavailable" for code in range(1, 9)},
    "009": "illegal error code", "010": "network time-out", "030": "originator not authorized",
    "031": "originator already authorized", "100": "facility not supported",
    "101": "unknown subscriber", "102": "facility not provided", "103": "call barred",
    "104": "operation barred", "105": "SC congestion", "106": "facility not supported",
    "107": "absent subscriber (phone off / out of coverage)",
    "108": "delivery failure (memory full when buffered; validity expired when final)",
    "109": "SC congestion", "110": "protocol error (often long/concatenated SMS issues)",
    "111": "MS not equipped", "112": "unknown SC",
    "113": "SC congestion", "114": "illegal MS", "115": "MS not a subscriber",
    "116": "error in MS", "117": "SMS lower layer not provisioned", "118": "system failure",
    "119": "PLMN system failure", "120": "HLR system failure", "121": "VLR system failure",
    "122": "previous VLR system failure", "123": "controlling MSC system failure",
    "124": "VMSC system failure", "125": "EIR system failure", "126": "system failure",
    "127": "unexpected data value", "200": "error in service-centre address",
    "201": "invalid absolute validity period", "202": "message exceeds maximum",
    "203": "unable to unpack GSM message", "204": "unable to convert to IA5 alphabet",
    "205": "invalid validity-period format", "206": "invalid destination address",
    "207": "duplicate message submit", "208": "invalid message-type indicator",
}
# The metrics' reason class (few label values): the subscriber's side, our sender id, the
# message itself; every other known code is the networks'.
REASON_CLASS = {
    **dict.fromkeys("000 101 103 104 107 108 111 114 115 116 117".split(), "subscriber"),
    **dict.fromkeys(("030", "031"), "originator"),
    **{f"{code}": "message" for code in range(200, 209)},
}


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


def describe(status: str, reason: str) -> tuple[str, str]:
    """(meaning, reason class) of a reason code; "000" with a delivery is no error (§6.3)."""
    if not reason or status in ("submitted", "delivered"):
        return "", "none"
    if reason not in REASON_TEXT:
        return "", "unknown"
    return REASON_TEXT[reason], REASON_CLASS.get(reason, "network")


def trn_for(verification_id: str, send: int) -> str:
    """The id's tag and random bytes in hex, then the send number: [a-fx0-9] only."""
    return f"{trn_base(verification_id)}x{send}"


def trn_base(verification_id: str) -> str:
    """The TRN of a verification's sends, less 'x<send>' (reserve_send.lua appends it)."""
    tag, rest = verification_id[3:7], verification_id[7:]
    return f"{tag}{base64.urlsafe_b64decode(rest + '==').hex()}"


def parse_trn(trn: str) -> tuple[str, int] | None:
    match = TRN.match(trn)
    if match is None:
        return None
    rest = base64.urlsafe_b64encode(bytes.fromhex(match.group(2))).decode().rstrip("=")
    return f"vf_{match.group(1)}{rest}", int(match.group(3))


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


class DeliveryNotifier:
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
    def receive(self, verification_id: str, event: str, tags: Mapping[str, str]) -> str:
        """Check a callback's signature and tags, then apply it; raises a ServiceError."""
        report = self.verify(verification_id, event, tags)
        decision = self.apply(report)
        if decision == "not_found":
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

    def apply(self, report: Report) -> str:
        """Record a report (the script orders them): updated, unchanged, stale, not_found,
        or kept (about the send before one whose reservation stands; undo_send.lua puts it
        back if that send fails)."""
        text, family = describe(report.status, report.reason)
        decision, _ = self.store.record_delivery(
            report.verification_id, send=report.send, status=report.status,
            reason=report.reason, reason_text=text, at_ms=report.at_ms)
        trn = trn_for(report.verification_id, report.send)
        if decision in ("stale", "not_found") or (decision in ("updated", "kept")
                                                 and report.status in FINAL):
            self._forget(trn)
        if decision == "updated" and report.status != "submitted":
            log.info("delivery %s reason=%s class=%s", report.status, report.reason or "-",
                     family)
            self._events(Event.DELIVERY, status=report.status, reason_class=family)
        return decision

    # -- the inquiry fallback ------------------------------------------------------------
    def poll(self, gateway, *, older_than: float, batch: int, max_age: float) -> dict:
        """Inquire sends without a final status older than ``older_than`` seconds."""
        now = self._now_ms()
        oldest, newest = now - int(max_age * 1000), now - int(older_than * 1000)
        expired, due = self._awaiting(oldest, newest)
        wanted = [trn for trn in due if self._still_open(trn)]
        updated = 0
        for first in range(0, len(wanted), batch):
            rows = gateway.inquire_delivery_notifications(wanted[first:first + batch])
            updated += sum(self._apply_row(row) == "updated" for row in rows)
        return {"due": len(due), "inquired": len(wanted), "updated": updated,
                "expired": expired}

    @store_call
    def _awaiting(self, oldest: int, newest: int) -> tuple[int, list[str]]:
        """Forget sends older than ``oldest``; the TRNs sent from then to ``newest``."""
        expired, due = 0, []
        for first in range(0, len(TAGS), POLL_BATCH):
            pipe = self.store.redis.pipeline(transaction=False)
            for tag in TAGS[first:first + POLL_BATCH]:
                key = self.store.awaiting_delivery_key(tag)
                pipe.zremrangebyscore(key, "-inf", f"({oldest}")
                pipe.zrangebyscore(key, oldest, newest)
            answers = pipe.execute()
            expired += sum(answers[0::2])
            due += [trn for trns in answers[1::2] for trn in trns]
        return expired, due

    def _still_open(self, trn: str) -> bool:
        """Whether the send still lacks a final status; forgets those that do not."""
        parsed = parse_trn(trn)
        data = self.store.read(parsed[0]) if parsed else None
        if data is not None:
            known = int(data.get("delivery_send") or 1)  # creation describes send 1
            if known < parsed[1] or (known == parsed[1] and data.get("delivery") not in FINAL):
                return True
        self._forget(trn)
        return False

    def _apply_row(self, row) -> str:
        parsed = parse_trn(row.transaction_reference_number)
        status = STATUS_FOR_DST.get(row.delivery_status)
        if parsed is None or status is None:
            return "skipped"
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

    @store_call
    def _forget(self, trn: str) -> None:
        self.store.redis.zrem(self.store.awaiting_delivery_key(trn[:4]), trn)
