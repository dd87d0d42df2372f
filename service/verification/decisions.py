"""What each Lua script decides: an enum of its decisions and a frozen result, read from the
script's positional answer here and nowhere else (lua/<script>.lua documents each answer).

The enums are ``StrEnum``: a decision is also the string the script answered, so it goes
into a log line, a metric label or back into a script (undo_send.lua) as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


def _fields(flat: list) -> dict[str, str]:
    """A hash's HGETALL answer (name, value, name, value …) as a dict."""
    return dict(zip(flat[0::2], flat[1::2], strict=True))


class Send(StrEnum):  # reserve_send.lua
    CREATED = "created"
    RESEND = "resend"
    COOLDOWN = "cooldown"
    MAX_SENDS = "max_sends"
    RETRY = "retry"  # the pointer changed since it was read: reserve again behind it


SENDS = (Send.CREATED, Send.RESEND)  # the decisions after which an SMS goes out


@dataclass(frozen=True)
class Reservation:
    outcome: Send
    verification_id: str | None = None
    wait_ms: int = 0
    state: dict[str, str] | None = None  # the verification's fields after a send reservation

    @classmethod
    def parse(cls, answer: list, seen_pointer: str | None) -> Reservation:
        outcome = Send(answer[0])
        if outcome in (Send.COOLDOWN, Send.MAX_SENDS):
            return cls(outcome, seen_pointer, int(float(answer[1])))
        if outcome is Send.RETRY:
            return cls(outcome, answer[1] or None)
        return cls(outcome, answer[1], state=_fields(answer[2:]))


class Undo(StrEnum):  # undo_send.lua
    REMOVED = "removed"  # a creation, taken back
    REVERTED = "reverted"  # a resend, taken back
    SUPERSEDED = "superseded"  # a later send stands; the failed one still counts
    GONE = "gone"  # ended and removed, or taken back already


class Claimed(StrEnum):  # claim_attempt.lua
    CLAIMED = "claimed"
    NOT_FOUND = "not_found"
    CLOSED = "closed"
    LOCKED = "locked"
    BUSY = "busy"  # another check of this verification is in flight
    RESEND_REQUIRED = "resend_required"
    LIMITED = "limited"


@dataclass(frozen=True)
class Claim:
    decision: Claimed
    status: str = ""  # CLOSED: the verification's status
    wait_ms: int = 0  # LOCKED, BUSY, LIMITED
    window: int = 0  # LIMITED: the check limit's item that refused (1-based)
    reference: str = ""  # CLAIMED: the token reference current when the claim was taken

    @classmethod
    def parse(cls, answer: list) -> Claim:
        decision = Claimed(answer[0])
        if decision is Claimed.CLOSED:
            return cls(decision, status=answer[1])
        if decision in (Claimed.LOCKED, Claimed.BUSY):
            return cls(decision, wait_ms=int(answer[1]))
        if decision is Claimed.LIMITED:
            return cls(decision, window=int(answer[1]), wait_ms=int(answer[2]))
        if decision is Claimed.CLAIMED:
            return cls(decision, reference=answer[1])
        return cls(decision)


class Settled(StrEnum):  # settle_check.lua
    APPROVED = "approved"
    WRONG = "wrong"  # an attempt spent
    UNKNOWN = "unknown"  # an attempt spent, and the token with it
    UNCHANGED = "unchanged"  # ended meanwhile, or the check never reached the gateway


@dataclass(frozen=True)
class Settlement:
    decision: Settled
    state: dict[str, str]  # the verification's fields after it

    @classmethod
    def parse(cls, answer: list) -> Settlement:
        return cls(Settled(answer[0]), _fields(answer[1:]))


class Ended(StrEnum):  # end_pending.lua
    ENDED = "ended"
    CLOSED = "closed"  # it had ended already, with another status
    UNCHANGED = "unchanged"  # it had ended already, with this status
    NOT_FOUND = "not_found"


@dataclass(frozen=True)
class Ending:
    decision: Ended
    status: str = ""  # the verification's status after it

    @classmethod
    def parse(cls, answer: list) -> Ending:
        return cls(Ended(answer[0]), answer[1] if len(answer) > 1 else "")


class Recorded(StrEnum):  # record_delivery.lua
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    STALE = "stale"  # about an earlier send than the latest
    KEPT = "kept"  # about the send before one whose reservation stands
    NOT_FOUND = "not_found"


@dataclass(frozen=True)
class DeliveryRecord:
    decision: Recorded
    status: str = ""  # the verification's delivery status after it

    @classmethod
    def parse(cls, answer: list) -> DeliveryRecord:
        return cls(Recorded(answer[0]), answer[1] if len(answer) > 1 else "")


class Counted(StrEnum):  # count_limits.lua
    OK = "ok"
    TRIPPED = "tripped"  # a breaker was open already
    REFUSED = "refused"  # a limit item's window is full


@dataclass(frozen=True)
class Count:
    decision: Counted
    index: int = 0  # TRIPPED: the breaker (1-based); REFUSED: the limit item (1-based)
    wait_ms: int = 0
    opened: bool = False  # REFUSED: this refusal opened the item's breaker

    @classmethod
    def parse(cls, answer: list) -> Count:
        decision = Counted(answer[0])
        if decision is Counted.OK:
            return cls(decision)
        return cls(decision, int(answer[1]), int(answer[2]),
                   len(answer) > 3 and int(answer[3]) == 1)
