"""Deliveries given up after a day of retries: kept, listed, and redelivered by hand.

One hash per service under the ``{otp-webhooks}`` tag (``otp:{otp-webhooks}:failed:<id>``:
delivery id → the event's entry and how it failed, JSON), kept KEEP_MS after the last
failure. The delivery id is the webhook id. A retry puts the entry back as a new event of
the retries' stream with the same ``wid``, so the receiver sees the same ``webhook-id``
and can tell it from a new event, and removes it from this list; the worker then delivers
it (and retries it for a day) like any other.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis as redis_lib

from service.storage import store_call
from service.verification.event_log import GROUP, RETRIES_TAG, EventLog
from service.verification.model import rfc3339
from service.verification.phones import mask_phone
from service.webhooks.payload import Event

KEEP_MS = 30 * 24 * 3600 * 1000
LIST_LIMIT = 500


def _masked(fields: dict[str, str]) -> dict[str, str]:
    """An event's fields as kept for a month: its number masked (the verification's own
    record holds the number only while it is pending), so a redelivery shows it masked."""
    phone = fields.get("f:phone", "")
    return {**fields, "f:phone": mask_phone(phone)} if phone.startswith("+") else fields


def failed_key(service_id: str) -> str:
    return f"otp:{{{RETRIES_TAG}}}:failed:{service_id}"


@dataclass(frozen=True)
class Failed:
    id: str
    type: str
    attempts: int
    last_error: str
    created_ms: int
    failed_ms: int
    fields: dict[str, str]

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type, "status": "failed",
                "attempts": self.attempts, "last_error": self.last_error,
                "created_at": rfc3339(self.created_ms), "failed_at": rfc3339(self.failed_ms),
                "verification_id": self.fields.get("vid")}


class FailedDeliveries:
    def __init__(self, client, event_log: EventLog, clock: Callable[[], float] = time.time):
        self.redis = client
        self.event_log = event_log
        self._clock = clock

    @store_call
    def record(self, event: Event, attempts: int, last_error: str) -> None:
        now = int(self._clock() * 1000)
        record = {"type": event.type, "attempts": attempts, "last_error": last_error,
                  "created_ms": event.at_ms, "failed_ms": now,
                  "fields": {**_masked(event.fields), "wid": event.webhook_id}}
        key = failed_key(event.service_id)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(key, event.webhook_id, json.dumps(record))
        pipe.pexpire(key, KEEP_MS)
        pipe.execute()

    @store_call
    def list(self, service_id: str) -> list[Failed]:
        stored = self.redis.hgetall(failed_key(service_id))
        failed = [self._parse(delivery_id, raw) for delivery_id, raw in stored.items()]
        failed.sort(key=lambda f: f.failed_ms, reverse=True)
        return failed[:LIST_LIMIT]

    @store_call
    def get(self, service_id: str, delivery_id: str) -> Failed | None:
        raw = self.redis.hget(failed_key(service_id), delivery_id)
        return self._parse(delivery_id, raw) if raw else None

    @store_call
    def retry(self, service_id: str, delivery_id: str) -> bool:
        """Queue the failed delivery again (same webhook id); False if there is none."""
        failed = self.get(service_id, delivery_id)
        if failed is None:
            return False
        stream = self.event_log.stream(RETRIES_TAG)
        if not stream.endswith(":ev"):  # no service takes webhooks now: still queued
            stream = stream[:-4] + "ev"
        try:
            self.redis.xgroup_create(stream, GROUP, id="0", mkstream=True)
        except redis_lib.ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise
        self.redis.xadd(stream, failed.fields)
        self.redis.hdel(failed_key(service_id), delivery_id)
        return True

    @staticmethod
    def _parse(delivery_id: str, raw: str) -> Failed:
        record = json.loads(raw)
        return Failed(delivery_id, record["type"], int(record["attempts"]),
                      record["last_error"], int(record["created_ms"]),
                      int(record["failed_ms"]), record["fields"])
