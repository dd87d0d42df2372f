"""Verification state in Redis: the reads, and the decisions, each one Lua script.

Where the state lives is :mod:`service.verification.keys`, the scripts' text
:mod:`service.verification.scripts`; a decision acted on outside Redis (a send reserved
before the SMS goes out, a check claimed before the code goes to the gateway) is on a
replica before it is acted on (:mod:`service.verification.replicas`). Redis trouble is
:func:`service.storage.store_call`'s: 503 store_unavailable.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable

import redis
from redis.exceptions import NoScriptError

from service.errors import StoreUnavailable
from service.storage import store_call
from service.verification import keys
from service.verification.budgets import Counting
from service.verification.decisions import (
    SENDS,
    Claim,
    Claimed,
    DeliveryRecord,
    Ending,
    Recorded,
    Reservation,
    Settlement,
    Undo,
)
from service.verification.end_users import EndUser
from service.verification.event_log import EventLog, tries_key
from service.verification.keys import (
    FAILURE_MEMORY_MS,
    PENDING_HORIZON_MS,
    RETENTION_MS,
    TAGS,
)
from service.verification.replicas import ReplicaGuard
from service.verification.scripts import register_script

__all__ = ["UNREAD", "Reservation", "Unreplicated", "VerificationStore"]

SCRIPTS = ("reserve_send", "undo_send", "claim_attempt", "settle_check", "end_pending",
           "record_delivery", "clear_lockout")
UNREAD = "?"  # reserve_send's seen_pointer when the caller has not read the pointer
LIVE_FIELDS = ("status", "expires", "sends", "attempts")  # what history() reads of a hash
POLL_BATCH = 2048  # slots read per round trip by the delivery poll


class Unreplicated(StoreUnavailable):
    """No replica confirmed a send's reservation: the caller takes it back, sends nothing."""

    def __init__(self, reservation: Reservation):
        super().__init__("No replica confirmed the send; nothing was sent.")
        self.reservation = reservation


class VerificationStore:
    def __init__(self, client: redis.Redis, secret: bytes, events: EventLog | None = None):
        self.redis = client
        self._secret = secret
        # each decision's event goes to its slot's stream (lua/_event.lua); off by default
        self.events = events or EventLog.off(client)
        self._replicas = ReplicaGuard(client)
        self._scripts = {name: register_script(client, name) for name in SCRIPTS}

    def phone_hash(self, e164: str) -> str:
        return keys.phone_hash(self._secret, e164)

    def end_user(self, ip: str | None, user_id: str | None, *,
                 require_ip: bool = False) -> EndUser:
        """The end user a request names, as the HMACs its limits and records keep."""
        return EndUser.of(self._secret, ip, user_id, require_ip=require_ip)

    # -- reads ---------------------------------------------------------------------------
    @store_call
    def pointer(self, client: str, phone_hash: str) -> str | None:
        return self.redis.get(keys.pointer_key(client, phone_hash))

    @store_call
    def read(self, verification_id: str) -> dict[str, str] | None:
        key = keys.verification_key(verification_id)
        data = self.redis.hgetall(key) if key else None
        return data or None

    # A check counts its end-user IP limit (count_limits.lua, in the IP's slot) beside its
    # first read (in the phone's slot): one round trip, a pipeline of the two.
    @store_call
    def read_along(self, verification_id: str,
                   counting: Counting) -> tuple[dict[str, str] | None, list]:
        """:meth:`read`, and count_limits.lua's answer for ``counting``."""
        key = keys.verification_key(verification_id)
        data, answer = self._along(counting, ("HGETALL", key) if key else None)
        return data or None, answer

    @store_call
    def pointer_along(self, client: str, phone_hash: str,
                      counting: Counting) -> tuple[str | None, list]:
        """:meth:`pointer`, and count_limits.lua's answer for ``counting``."""
        return self._along(counting, ("GET", keys.pointer_key(client, phone_hash)))

    def _along(self, counting: Counting, read: tuple | None) -> tuple:
        run = (list(counting.keys), list(counting.args))
        if read is None:
            return None, counting.script(keys=run[0], args=run[1])
        pipe = self.redis.pipeline(transaction=False)
        pipe.execute_command(*read)
        pipe.execute_command("EVALSHA", counting.script.sha, len(run[0]), *run[0], *run[1])
        found, answer = pipe.execute(raise_on_error=False)
        if isinstance(answer, NoScriptError):  # a store that lost its scripts: load it
            answer = counting.script(keys=run[0], args=run[1])
        for outcome in (found, answer):
            if isinstance(outcome, Exception):
                raise outcome
        return found, answer

    @store_call
    def history(self, phone_hash: str, since_ms: int) -> list[tuple[str, list[str], dict]]:
        """The phone's verifications created since ``since_ms``, oldest first: each id, its
        timeline's entries (lua/_history.lua) and its hash's status fields while it is kept
        (else empty). Two round trips, whatever the number (at most HISTORY_PER_PHONE)."""
        ids = self.redis.zrangebyscore(keys.history_key(phone_hash), since_ms, "+inf")
        pipe = self.redis.pipeline(transaction=False)
        for verification_id in ids:
            pipe.lrange(keys.timeline_key(verification_id), 0, -1)
            pipe.hmget(keys.verification_key(verification_id), LIVE_FIELDS)
        answers = pipe.execute() if ids else []
        return [(verification_id, entries, {name: value for name, value
                                            in zip(LIVE_FIELDS, live, strict=True) if value})
                for verification_id, entries, live in zip(ids, answers[0::2], answers[1::2],
                                                           strict=True)]

    @store_call
    def ping(self) -> bool:
        return bool(self.redis.ping())

    # -- decisions -----------------------------------------------------------------------
    @store_call
    def reserve_send(self, *, client: str, phone_hash: str, seen_pointer: str | None,
                     new_id: str, now_ms: int, cooldown_ms: int, max_sends: int,
                     expires_ms: int, fields: dict[str, str | int],
                     trns: tuple[str, str] = ("", "")) -> Reservation:
        """``trns``: the TRNs (less 'x<send>') of the pointer's verification and of the new
        one, under which a reserved send awaits its delivery status; '' for none."""
        read = seen_pointer not in (None, UNREAD)
        names = [
            keys.pointer_key(client, phone_hash),
            keys.verification_key(seen_pointer if read else new_id),
            keys.verification_key(new_id),
            keys.awaiting_delivery_key(phone_hash[:4]),
            keys.history_key(phone_hash),
            keys.timeline_key(seen_pointer if read else new_id),
            keys.timeline_key(new_id),
            self.events.stream(phone_hash[:4]),
        ]
        flat = [item for pair in fields.items() for item in pair]
        args = [now_ms, seen_pointer or "", new_id, RETENTION_MS, cooldown_ms, max_sends,
                expires_ms, *trns, PENDING_HORIZON_MS,
                fields.get("ref") or secrets.token_hex(16), *flat]
        answer, replicated = self._replicas.run(self._scripts["reserve_send"], names, args,
                                                SENDS)
        reservation = Reservation.parse(answer, seen_pointer)
        if not replicated:
            raise Unreplicated(reservation)
        return reservation

    @store_call
    def undo_send(self, *, client: str, phone_hash: str, reservation: Reservation,
                  seen_pointer: str | None, trn: str = "", reference: str = "") -> Undo:
        """Take back a reserved send that did not go out. ``reference``: a resend whose
        reservation answer was lost, named by the token reference it was reserved under."""
        stream = self.events.stream(phone_hash[:4])
        names = [keys.pointer_key(client, phone_hash),
                keys.verification_key(reservation.verification_id),
                keys.awaiting_delivery_key(phone_hash[:4]),
                keys.timeline_key(reservation.verification_id), stream, tries_key(stream)]
        send = 0 if reference else int((reservation.state or {}).get("sends", 1))
        args = [reservation.outcome, reservation.verification_id, seen_pointer or "", trn,
                send, reference]
        return Undo(self._scripts["undo_send"](keys=names, args=args))

    @store_call
    def claim_attempt(self, verification_id: str, phone_hash: str, *, client: str,
                      now_ms: int, hold_ms: int, masked_phone: str,
                      lockout: tuple[int, int, int],
                      windows: tuple = (), service: str = keys.DEFAULT) -> Claim:
        """``windows`` are the phone's check limit as
        (key, amount, window ms), counted only by a claim; ``lockout`` as for
        :meth:`settle_check`, for a claim found never settled."""
        names = [keys.verification_key(verification_id),
                 keys.failure_key(phone_hash, service), *(key for key, _, _ in windows),
                 self.events.stream(phone_hash[:4]), keys.timeline_key(verification_id)]
        args = [now_ms, client, hold_ms, masked_phone, *lockout, FAILURE_MEMORY_MS,
                *(value for _, amount, window in windows for value in (amount, window))]
        answer, replicated = self._replicas.run(self._scripts["claim_attempt"], names, args,
                                                (Claimed.CLAIMED,))
        claim = Claim.parse(answer)
        if not replicated:
            self.redis.hdel(names[0], "busy")
            raise StoreUnavailable("No replica confirmed the check; the code was not checked.")
        return claim

    @store_call
    def settle_check(self, verification_id: str, phone_hash: str, *, outcome: str,
                     now_ms: int, masked_phone: str, lockout: tuple[int, int, int],
                     token_reference: str, service: str = keys.DEFAULT) -> Settlement:
        """``lockout``: failures
        before the phone locks, the first and the longest lock (ms); ``token_reference``:
        the token the check asked about (spent when the outcome is unknown)."""
        names = [keys.verification_key(verification_id), keys.failure_key(phone_hash, service),
                 keys.timeline_key(verification_id), self.events.stream(phone_hash[:4])]
        args = [now_ms, outcome, masked_phone, *lockout, FAILURE_MEMORY_MS, token_reference]
        return Settlement.parse(self._scripts["settle_check"](keys=names, args=args))

    @store_call
    def end_pending(self, verification_id: str, *, client: str, now_ms: int, status: str,
                    masked_phone: str) -> Ending:
        return Ending.parse(self._scripts["end_pending"](
            keys=[keys.verification_key(verification_id), keys.timeline_key(verification_id),
                  self.events.stream(verification_id[3:7])],
            args=[now_ms, client, status, masked_phone]))

    @store_call
    def clear_lockout(self, phone_hash: str, now_ms: int,
                      services: Iterable[str] = (keys.DEFAULT,)) -> bool:
        """Forget the phone's wrong codes in each of ``services``; whether a lock was in
        force (and is now lifted)."""
        names = [keys.failure_key(phone_hash, service) for service in services]
        return self._scripts["clear_lockout"](keys=names,
                                              args=[now_ms]) == 1

    @store_call
    def record_delivery(self, verification_id: str, *, send: int, status: str, reason: str,
                        reason_text: str, at_ms: int | None) -> DeliveryRecord:
        """Apply one delivery report."""
        key = keys.verification_key(verification_id)
        if key is None:
            return DeliveryRecord(Recorded.NOT_FOUND)
        return DeliveryRecord.parse(self._scripts["record_delivery"](
            keys=[key, keys.timeline_key(verification_id),
                  self.events.stream(verification_id[3:7])],
            args=[send, status, reason, reason_text, "" if at_ms is None else at_ms]))

    # -- sends awaiting a delivery status (the delivery poll) ----------------------------
    @store_call
    def awaiting_delivery(self, oldest: int, newest: int) -> tuple[int, list[str]]:
        """Forget sends sent before ``oldest`` (ms); the TRNs sent from then to ``newest``.
        Every slot's set, in pipelines of POLL_BATCH slots."""
        expired, due = 0, []
        for first in range(0, len(TAGS), POLL_BATCH):
            pipe = self.redis.pipeline(transaction=False)
            for tag in TAGS[first:first + POLL_BATCH]:
                key = keys.awaiting_delivery_key(tag)
                pipe.zremrangebyscore(key, "-inf", f"({oldest}")
                pipe.zrangebyscore(key, oldest, newest)
            answers = pipe.execute()
            expired += sum(answers[0::2])
            due += [trn for trns in answers[1::2] for trn in trns]
        return expired, due

    @store_call
    def forget_awaiting(self, trn: str) -> None:
        """A send no longer awaits a status (its TRN starts with its slot's tag)."""
        self.redis.zrem(keys.awaiting_delivery_key(trn[:4]), trn)
