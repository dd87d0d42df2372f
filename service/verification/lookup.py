"""The support lookup: a phone number's verifications of the last 30 days, per service, each
with its timeline (sends, delivery reports, checks, lockouts, its end). No Flask here.

The scripts that decide write the record as they decide (lua/_history.lua), keyed by the
phone's HMAC, so a start or a check costs no extra round trip and nothing stored names the
number. A check's entry says whether the code was right, never the code.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from service.verification.delivery_reasons import describe
from service.verification.keys import HISTORY_MS, HISTORY_PER_VERIFICATION
from service.verification.model import rfc3339
from service.verification.phones import mask_phone
from service.verification.store import VerificationStore
from service.verification.tenant import DEFAULT

# A check's result as the timeline says it (settle_check.lua's outcomes)
CHECK_RESULTS = {"right": "right", "wrong": "wrong", "unknown": "unknown",
                 "error": "not_checked"}


def _ms(word: str) -> int | None:
    return int(word) if word.isascii() and word.isdigit() else None


def _word(word: str) -> str | None:
    return None if word == "-" else word


def _event(words: list[str]) -> dict[str, Any] | None:
    """One timeline entry as the API shows it; None for one it does not know."""
    at, kind, rest = rfc3339(_ms(words[0])), words[1], words[2:]
    if kind in ("created", "sent") and len(rest) >= 2:
        send = 1 if kind == "created" else _ms(rest[0])
        expires = rest[0] if kind == "created" else rest[1]
        return {"at": at, "event": "sent", "send": send, "expires_at": rfc3339(_ms(expires))}
    if kind == "undone" and rest:
        return {"at": at, "event": "not_sent", "send": _ms(rest[0])}
    if kind == "delivery" and len(rest) == 3:
        status, reason = rest[1], _word(rest[2])
        return {"at": at, "event": "delivery", "send": _ms(rest[0]), "status": status,
                "reason": reason, "reason_text": describe(status, reason or "")[0] or None}
    if kind == "check" and rest:
        return {"at": at, "event": "check", "result": CHECK_RESULTS.get(rest[0], rest[0])}
    if kind == "refused" and rest:
        return {"at": at, "event": "check_refused", "reason": rest[0]}
    if kind == "lockout" and rest:
        return {"at": at, "event": "lockout", "until": rfc3339(_ms(rest[0]))}
    if kind == "ended" and rest:
        return {"at": at, "event": "ended", "status": rest[0]}
    return None


def _status(timeline: list[dict], live: dict[str, str], now: int) -> str:
    """The end state: the hash's while it is kept (a pending one past its time has expired);
    else the timeline's end; a creation taken back was never sent; else it expired unseen
    (the hash is deleted a day after its time is up)."""
    if live.get("status"):
        expired = live["status"] == "pending" and (_ms(live.get("expires", "")) or 0) <= now
        return "expired" if expired else live["status"]
    ends = [event["status"] for event in timeline if event["event"] == "ended"]
    if ends:
        return ends[-1]
    if any(event["event"] == "not_sent" and event["send"] == 1 for event in timeline):
        return "not_sent"
    return "expired"


def _verification(verification_id: str, entries: list[str], live: dict[str, str],
                  now: int) -> dict[str, Any] | None:
    words = [entry.split(" ") for entry in entries]
    if not words or len(words[0]) < 7 or words[0][1] != "created":
        return None  # its timeline expired or was pushed out meanwhile
    created = words[0]
    timeline = [event for event in map(_event, words) if event is not None]
    sends = [event["send"] for event in timeline if event["event"] == "sent"]
    return {
        "id": verification_id, "service": created[3] or DEFAULT,
        "client": " ".join(created[6:]), "country": created[4], "test": created[5] == "1",
        "created_at": rfc3339(_ms(created[0])), "status": _status(timeline, live, now),
        "send_count": int(live.get("sends") or max(sends, default=1)),
        "timeline": timeline,
        # the creation and the newest entries are kept: some in between may be gone
        "timeline_truncated": len(entries) >= HISTORY_PER_VERIFICATION,
    }


class SupportLookup:
    def __init__(self, store: VerificationStore, *, clock: Callable[[], float] = time.time):
        self.store = store
        self.clock = clock

    def find(self, e164: str) -> dict[str, Any]:
        """The verifications of the number (E.164) created in the last 30 days, newest
        first, grouped by service; the number masked."""
        now = int(self.clock() * 1000)
        since = now - HISTORY_MS
        found = [_verification(verification_id, entries, live, now)
                 for verification_id, entries, live
                 in self.store.history(self.store.phone_hash(e164), since)]
        services: dict[str, list[dict]] = {}
        for verification in reversed([item for item in found if item is not None]):
            services.setdefault(verification["service"], []).append(verification)
        return {
            "phone": mask_phone(e164), "since": rfc3339(since),
            "count": sum(len(items) for items in services.values()),
            "services": [{"service": service, "verifications": items}
                         for service, items in sorted(services.items())],
        }
