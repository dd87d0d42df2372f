"""The audit log: who did what to which target, with what outcome.

Every admin action and every use (start or check) of a test number is written twice: as a
structured log line (logger ``service.audit``, so it reaches the log pipeline even when
Redis is down) and as an entry of a capped Redis stream, which ``GET /admin/audit`` pages
through newest first. Targets are masked by the caller: an entry never holds a full phone
number or a code.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

from service.events import Event
from service.storage import store_call
from service.verification.model import rfc3339
from service.verification.phones import mask_phone

# The name log pipelines select audit lines by: kept when the module moved.
log = logging.getLogger("service.audit")

STREAM_KEY = "otp:audit"
# Enough for months of admin work; "~" lets Redis trim whole nodes, which is cheap.
MAX_ENTRIES = 10_000
# A stream id, <ms>-<seq>, ASCII digits (openapi.yaml's pattern for ``before``, exactly).
# Redis takes each part up to 2**64 - 1; a larger one names a moment after every entry.
CURSOR = re.compile(r"\A[0-9]{1,20}-[0-9]{1,20}\Z")
_PART_MAX = 2**64 - 1


@dataclass(frozen=True)
class Entry:
    id: str
    time: str
    actor: str
    actor_type: str  # admin | client
    action: str
    target: str
    outcome: str
    fields: tuple[str, ...] = ()  # the names of the fields a change touched, never values

    @classmethod
    def from_stream(cls, entry_id: str, data: dict[str, str]) -> Entry:
        return cls(id=entry_id, time=rfc3339(int(data["ms"])), actor=data["actor"],
                   actor_type=data.get("actor_type", "admin"), action=data["action"],
                   target=data["target"], outcome=data["outcome"],
                   fields=tuple(filter(None, data.get("fields", "").split(","))))

    def public(self) -> dict[str, Any]:
        entry = asdict(self)
        if self.fields:
            entry["fields"] = list(self.fields)
        else:
            del entry["fields"]
        return entry


class AuditLog:
    def __init__(self, client, *, clock: Callable[[], float] = time.time,
                 max_entries: int = MAX_ENTRIES):
        self.redis = client
        self.clock = clock
        self.max_entries = max_entries

    @store_call
    def ready(self) -> None:
        """Fail closed: an admin action that could not be audited is not started."""
        self.redis.ping()

    @store_call
    def record(self, actor: str, action: str, target: str, outcome: str, *,
               actor_type: str = "admin", changed: Iterable[str] = ()) -> str:
        """Log the action, then append it to the stream; the entry's id. ``changed``: the
        names of the fields a change touched (a service's), never their values."""
        fields = {"ms": int(self.clock() * 1000), "actor": actor, "actor_type": actor_type,
                  "action": action, "target": target, "outcome": outcome}
        if changed:
            fields["fields"] = ",".join(changed)
        log.info("audit action=%s actor=%s actor_type=%s target=%s outcome=%s",
                 action, actor, actor_type, target, outcome,
                 extra={"audit": {**fields, "time": rfc3339(fields["ms"])}})
        return self.redis.xadd(STREAM_KEY, fields, maxlen=self.max_entries, approximate=True)

    @store_call
    def page(self, limit: int, before: str | None = None) -> tuple[list[Entry], str | None]:
        """Up to ``limit`` entries older than the cursor ``before``, and the next cursor."""
        newest = "+"
        if before:
            ms, seq = (min(int(part), _PART_MAX) for part in before.split("-"))
            if ms == seq == 0:
                return [], None  # nothing is older than 0-0 (and Redis refuses "(0-0")
            newest = f"({ms}-{seq}"
        rows = self.redis.xrevrange(STREAM_KEY, newest, "-", count=limit + 1)
        entries = [Entry.from_stream(entry_id, data) for entry_id, data in rows[:limit]]
        return entries, (entries[-1].id if len(rows) > limit else None)

    def on_event(self, name: Event, **details: Any) -> None:
        """Event-bus listener: a test number was used (no SMS, a fixed code) or checked."""
        verification = details.get("verification")
        if name is Event.TEST_NUMBER_USED:
            action, outcome = "test_number.used", "ok"
        elif name is Event.CHECKED and getattr(verification, "test", False):
            action, outcome = "test_number.checked", (
                "approved" if details.get("valid") else "rejected")
        else:
            return
        self.record(verification.client, action, mask_phone(verification.phone), outcome,
                    actor_type="client")

