"""Idempotency keys: a retried or duplicated request replays the first answer.

A record is claimed with SET NX before any work, so two concurrent requests with one key
can never both send; the second waits briefly for the first answer. Records keep only the
outcome (status, verification id, validity, or the problem) — never a phone number — and
replays render the verification as it is now.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from typing import Any

from service.storage import store_call
from service.verification.errors import IdempotencyInProgress, IdempotencyKeyReused
from service.verification.tenant import DEFAULT

TTL_SECONDS = 24 * 3600
CLAIM_SECONDS = 60  # a claim whose owner died frees itself after this
# Refusals that changed nothing and may well differ on a retry (busy, limited): not replayed.
# Server-side failures (5xx) neither, unless their outcome is unknown: a send or check that
# may have happened is replayed, so that a retry never texts or checks a second time.
NOT_RECORDED = frozenset({409, 429})


def replays(status: int, outcome_unknown: bool = False) -> bool:
    """Whether a refusal with this status is recorded, to be replayed to a retry."""
    return outcome_unknown or (status < 500 and status not in NOT_RECORDED)


@dataclass(frozen=True)
class Answered:
    """A request that did its work: replayed as the verification is now."""

    status: int
    verification_id: str
    valid: bool | None = None  # a check's answer

    def stored(self) -> dict[str, Any]:
        extra = {} if self.valid is None else {"valid": self.valid}
        return {"verification_id": self.verification_id, **extra}


@dataclass(frozen=True)
class Refused:
    """A request refused for good (its refusal would be the same again): replayed as it was."""

    problem: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def status(self) -> int:
        return self.problem["status"]

    def stored(self) -> dict[str, Any]:
        return {"problem": self.problem, "headers": self.headers}


Recorded = Answered | Refused


def _recorded(status: int, outcome: dict[str, Any]) -> Recorded:
    """The typed record of what ``record`` stored (the stored layout is kept for records
    written by earlier versions: they live a day)."""
    if "problem" in outcome:
        return Refused(outcome["problem"], outcome.get("headers") or {})
    return Answered(status, outcome["verification_id"], outcome.get("valid"))


class IdempotencyStore:
    def __init__(self, client, secret: bytes, wait_seconds: float = 5.0):
        self.redis = client
        self._secret = secret
        self.wait_seconds = wait_seconds

    @staticmethod
    def _key(client: str, key: str, service: str = DEFAULT) -> str:
        """The record of one owner's key; a service other than the default scopes it too
        (the default's names are kept: records made before services still replay)."""
        scope = f"{client}\0{key}" if service == DEFAULT else f"{service}\0{client}\0{key}"
        digest = hashlib.sha256(scope.encode()).hexdigest()[:40]
        return f"otp:idem:{digest}"

    def fingerprint(self, route: str, body: Any) -> str:
        canonical = json.dumps([route, body], sort_keys=True, separators=(",", ":"))
        return hmac.new(self._secret, canonical.encode(), hashlib.sha256).hexdigest()

    @store_call
    def claim(self, client: str, key: str, fingerprint: str,
              service: str = DEFAULT) -> Recorded | None:
        """None when this request owns the key; the recorded answer when one exists."""
        name = self._key(client, key, service)
        pending = json.dumps({"fp": fingerprint, "state": "pending"})
        deadline = time.monotonic() + self.wait_seconds
        while True:
            if self.redis.set(name, pending, nx=True, ex=CLAIM_SECONDS):
                return None
            raw = self.redis.get(name)
            record = json.loads(raw) if raw else None
            if record is not None:
                if not hmac.compare_digest(record["fp"], fingerprint):
                    raise IdempotencyKeyReused(
                        "This Idempotency-Key was used with a different request body.")
                if record["state"] == "done":
                    return _recorded(record["status"], record["outcome"])
            if time.monotonic() >= deadline:
                raise IdempotencyInProgress(
                    "A request with this Idempotency-Key is still being processed.",
                    headers={"Retry-After": "1"})
            time.sleep(0.02)

    @store_call
    def record(self, client: str, key: str, fingerprint: str, recorded: Recorded,
               service: str = DEFAULT) -> None:
        value = json.dumps({"fp": fingerprint, "state": "done", "status": recorded.status,
                            "outcome": recorded.stored()})
        self.redis.set(self._key(client, key, service), value, ex=TTL_SECONDS)

    @store_call
    def release(self, client: str, key: str, service: str = DEFAULT) -> None:
        """Forget a claim whose request changed nothing, so that a retry runs again."""
        self.redis.delete(self._key(client, key, service))
