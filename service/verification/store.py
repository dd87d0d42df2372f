"""Verification state in Redis.

Key design (cluster-ready, issue 9): every key that one script touches carries the same
hash tag, derived from the phone number's HMAC, so each script runs unchanged on a Redis
Cluster. The tag is also embedded in the verification id, so an id alone names its slot.

    otp:{tag}:v:<id>              hash: one verification
    otp:{tag}:cur:<client>:<ph>   string: that client's latest verification for the phone
    otp:{tag}:fail:<ph>           hash: the phone's consecutive failures and lock
    otp:{tag}:dlv                 sorted set: the slot's sends awaiting a final delivery
                                  status, by TRN, scored by send time (delivery.py)

No key holds a raw phone number; the verification hash holds it while pending and a masked
form once it has ended. Codes are never stored: the gateway generates and checks them.

Failover (asynchronous replication can lose the last writes): a decision that is acted on
outside Redis, a send reserved before the SMS goes out and a check claimed before the code
goes to the gateway, is on a replica before it is acted on (WAIT). A claim that was never
settled then survives a failover, and claim_attempt.lua settles it as a check without an
answer (its token is never asked again, which would approve a verified token for any code).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import time
from dataclasses import dataclass
from importlib import resources

import redis
from redis.cluster import RedisCluster

from service.errors import StoreUnavailable
from service.storage import store_call

log = logging.getLogger(__name__)

RETENTION_MS = 24 * 3600 * 1000
# a verification's record is gone by then: validity (≤ 60 min) plus retention
PENDING_HORIZON_MS = RETENTION_MS + 3600 * 1000
FAILURE_MEMORY_MS = 24 * 3600 * 1000
ID_PATTERN = re.compile(r"\Avf_([0-9a-f]{4})[A-Za-z0-9_-]{22}\Z")
SCRIPTS = ("reserve_send", "undo_send", "claim_attempt", "settle_check", "end_pending",
           "record_delivery", "clear_lockout")
# how long a decision acted on outside Redis waits for a replica (healthy: a millisecond)
REPLICA_WAIT_MS = 100
REPLICA_CHECK_SECONDS = 1.0
# Shared Lua functions, prepended to the scripts that use them.
PRELUDES = {"claim_attempt": ("_moving_window", "_spend_attempt"),
            "settle_check": ("_spend_attempt",), "count_limits": ("_moving_window",),
            "reserve_send": ("_kept_send",), "undo_send": ("_kept_send",),
            "record_delivery": ("_kept_send",)}
UNREAD = "?"  # reserve_send's seen_pointer when the caller has not read the pointer


def script_source(name: str) -> str:
    """lua/<name>.lua, after the shared functions it uses (PRELUDES)."""
    lua = resources.files("service.verification").joinpath("lua")
    text = lua.joinpath(f"{name}.lua").read_text()
    preludes = [lua.joinpath(f"{prelude}.lua").read_text() for prelude in PRELUDES.get(name, ())]
    return "".join(preludes) + text


def register_script(client, name: str):
    return client.register_script(script_source(name))


class Unreplicated(StoreUnavailable):
    """No replica confirmed a send's reservation: the caller takes it back, sends nothing."""

    def __init__(self, reservation: Reservation):
        super().__init__("No replica confirmed the send; nothing was sent.")
        self.reservation = reservation


@dataclass(frozen=True)
class Reservation:
    outcome: str  # created | resend | cooldown | max_sends | retry
    verification_id: str | None = None
    wait_ms: int = 0
    state: dict[str, str] | None = None  # the verification's fields after a send reservation


class VerificationStore:
    def __init__(self, client: redis.Redis, secret: bytes):
        self.redis = client
        self._secret = secret
        self._warned = False
        self._replicas: dict[str, tuple[float, bool]] = {}  # node -> (checked until, in sync)
        self._scripts = {name: register_script(client, name) for name in SCRIPTS}

    # -- names ---------------------------------------------------------------------------
    def phone_hash(self, e164: str) -> str:
        return hmac.new(self._secret, e164.encode(), hashlib.sha256).hexdigest()[:32]

    @staticmethod
    def new_id(phone_hash: str) -> str:
        return f"vf_{phone_hash[:4]}{secrets.token_urlsafe(16)}"

    @staticmethod
    def verification_key(verification_id: str) -> str | None:
        match = ID_PATTERN.match(verification_id)
        return f"otp:{{{match.group(1)}}}:v:{verification_id}" if match else None

    @staticmethod
    def pointer_key(client: str, phone_hash: str) -> str:
        return f"otp:{{{phone_hash[:4]}}}:cur:{client}:{phone_hash}"

    @staticmethod
    def failure_key(phone_hash: str) -> str:
        return f"otp:{{{phone_hash[:4]}}}:fail:{phone_hash}"

    @staticmethod
    def awaiting_delivery_key(tag: str) -> str:
        """The sends of one slot (a verification id's tag) that await a delivery status."""
        return f"otp:{{{tag}}}:dlv"

    # -- reads ---------------------------------------------------------------------------
    @store_call
    def pointer(self, client: str, phone_hash: str) -> str | None:
        return self.redis.get(self.pointer_key(client, phone_hash))

    @store_call
    def read(self, verification_id: str) -> dict[str, str] | None:
        key = self.verification_key(verification_id)
        data = self.redis.hgetall(key) if key else None
        return data or None

    @store_call
    def ping(self) -> bool:
        return bool(self.redis.ping())

    # -- decisions -----------------------------------------------------------------------
    def _decide(self, name: str, keys: list, args: list, acted_on: tuple[str, ...]):
        """The script's answer, and whether a replica (if the primary has one in sync) holds
        it when the answer is one the caller acts on outside Redis. WAIT counts only the
        writes of its own connection, so then both run on one connection to the keys' node;
        without a replica in sync the script runs on any pooled connection."""
        client, node = self.redis, ""
        if isinstance(client, RedisCluster):
            primary = client.get_node_from_key(keys[0])
            client, node = client.get_redis_connection(primary), primary.name
        if not self._replica_known_in_sync(client, node):
            return self._scripts[name](keys=keys, args=args, client=client), True
        with client.client() as pinned:
            answer = self._scripts[name](keys=keys, args=args, client=pinned)
            if answer[0] not in acted_on:
                return answer, True
            try:
                return answer, pinned.wait(1, REPLICA_WAIT_MS) >= 1
            except redis.exceptions.ResponseError as e:  # an ACL that allows INFO, not WAIT
                self._no_permission(e)
                return answer, True

    def _replica_known_in_sync(self, client, node: str) -> bool:
        """Whether the node has a replica in sync, asked at most once a second per node: the
        answer changes with topology, not per request, and INFO is a round trip."""
        until, in_sync = self._replicas.get(node, (0.0, False))
        if time.monotonic() >= until:
            try:
                in_sync = self._replica_in_sync(client.info("replication"))
            except redis.exceptions.ResponseError as e:  # the embedded store, or an ACL
                self._no_permission(e)
                in_sync = False
            self._replicas[node] = (time.monotonic() + REPLICA_CHECK_SECONDS, in_sync)
        return in_sync

    def _no_permission(self, error: redis.exceptions.ResponseError) -> None:
        if isinstance(error, redis.exceptions.NoPermissionError) and not self._warned:
            self._warned = True
            log.warning("the Redis user may not run INFO or WAIT: sends and checks "
                        "do not wait for a replica; a failover may forget the latest")

    @staticmethod
    def _replica_in_sync(info: dict) -> bool:
        """A replica streaming and acknowledging. One still receiving a full copy is not
        waited for: it would refuse every send and check until it is done."""
        return any(name.startswith("slave") and isinstance(replica, dict)
                   and replica.get("state") == "online" and int(replica.get("offset", 0)) > 0
                   for name, replica in info.items())

    @store_call
    def reserve_send(self, *, client: str, phone_hash: str, seen_pointer: str | None,
                     new_id: str, now_ms: int, cooldown_ms: int, max_sends: int,
                     expires_ms: int, fields: dict[str, str | int],
                     trns: tuple[str, str] = ("", "")) -> Reservation:
        """``trns``: the TRNs (less 'x<send>') of the pointer's verification and of the new
        one, under which a reserved send awaits its delivery status; '' for none."""
        read = seen_pointer not in (None, UNREAD)
        keys = [
            self.pointer_key(client, phone_hash),
            self.verification_key(seen_pointer if read else new_id),
            self.verification_key(new_id),
            self.awaiting_delivery_key(phone_hash[:4]),
        ]
        flat = [item for pair in fields.items() for item in pair]
        args = [now_ms, seen_pointer or "", new_id, RETENTION_MS, cooldown_ms, max_sends,
                expires_ms, *trns, PENDING_HORIZON_MS,
                fields.get("ref") or secrets.token_hex(16), *flat]
        answer, replicated = self._decide("reserve_send", keys, args, ("created", "resend"))
        outcome = answer[0]
        if outcome in ("cooldown", "max_sends"):
            return Reservation(outcome, seen_pointer, int(float(answer[1])))
        if outcome == "retry":
            return Reservation(outcome, answer[1] or None)
        state = dict(zip(answer[2::2], answer[3::2], strict=True))
        reservation = Reservation(outcome, answer[1], state=state)
        if not replicated:
            raise Unreplicated(reservation)
        return reservation

    @store_call
    def undo_send(self, *, client: str, phone_hash: str, reservation: Reservation,
                  seen_pointer: str | None, trn: str = "", reference: str = "") -> str:
        """Take back a reserved send that did not go out: ``removed`` (a creation),
        ``reverted`` (a resend), ``superseded`` (a later send was reserved meanwhile and
        stands; the failed one still counts toward the send budget) or ``gone`` (ended and
        removed, or taken back already). ``reference``: a resend whose reservation answer
        was lost, named by the token reference it was reserved under."""
        keys = [self.pointer_key(client, phone_hash),
                self.verification_key(reservation.verification_id),
                self.awaiting_delivery_key(phone_hash[:4])]
        send = 0 if reference else int((reservation.state or {}).get("sends", 1))
        args = [reservation.outcome, reservation.verification_id, seen_pointer or "", trn,
                send, reference]
        return self._scripts["undo_send"](keys=keys, args=args)

    @store_call
    def claim_attempt(self, verification_id: str, phone_hash: str, *, client: str,
                      now_ms: int, hold_ms: int, masked_phone: str,
                      lockout: tuple[int, int, int],
                      windows: tuple = ()) -> tuple[str, list[str]]:
        """The decision and its details; ``windows`` are the phone's check limit as
        (key, amount, window ms), counted only by a claim; ``lockout`` as for
        :meth:`settle_check`, for a claim found never settled."""
        keys = [self.verification_key(verification_id), self.failure_key(phone_hash),
                *(key for key, _, _ in windows)]
        args = [now_ms, client, hold_ms, masked_phone, *lockout, FAILURE_MEMORY_MS,
                *(value for _, amount, window in windows for value in (amount, window))]
        answer, replicated = self._decide("claim_attempt", keys, args, ("claimed",))
        if not replicated:
            self.redis.hdel(keys[0], "busy")
            raise StoreUnavailable("No replica confirmed the check; the code was not checked.")
        return answer[0], answer[1:]

    @store_call
    def settle_check(self, verification_id: str, phone_hash: str, *, outcome: str,
                     now_ms: int, masked_phone: str, lockout: tuple[int, int, int],
                     token_reference: str) -> tuple[str, dict[str, str]]:
        """The decision taken and the verification's fields after it. ``lockout``: failures
        before the phone locks, the first and the longest lock (ms); ``token_reference``:
        the token the check asked about (spent when the outcome is unknown)."""
        keys = [self.verification_key(verification_id), self.failure_key(phone_hash)]
        args = [now_ms, outcome, masked_phone, *lockout, FAILURE_MEMORY_MS, token_reference]
        answer = self._scripts["settle_check"](keys=keys, args=args)
        return answer[0], dict(zip(answer[1::2], answer[2::2], strict=True))

    @store_call
    def end_pending(self, verification_id: str, *, client: str, now_ms: int, status: str,
                    masked_phone: str) -> tuple[str, str]:
        answer = self._scripts["end_pending"](
            keys=[self.verification_key(verification_id)],
            args=[now_ms, client, status, masked_phone])
        return answer[0], (answer[1] if len(answer) > 1 else "")

    @store_call
    def clear_lockout(self, phone_hash: str, now_ms: int) -> bool:
        """Forget the phone's wrong codes; whether a lock was in force (and is now lifted)."""
        return self._scripts["clear_lockout"](keys=[self.failure_key(phone_hash)],
                                              args=[now_ms]) == 1

    @store_call
    def record_delivery(self, verification_id: str, *, send: int, status: str, reason: str,
                        reason_text: str, at_ms: int | None) -> tuple[str, str]:
        """Apply one delivery report: (updated | unchanged | stale | kept | not_found, status)."""
        key = self.verification_key(verification_id)
        if key is None:
            return "not_found", ""
        answer = self._scripts["record_delivery"](
            keys=[key], args=[send, status, reason, reason_text, "" if at_ms is None else at_ms])
        return answer[0], (answer[1] if len(answer) > 1 else "")
