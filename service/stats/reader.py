"""The dashboard's figures for one window, read from the counters (:mod:`.keys`), the
breakers' own keys (service/verification/budgets.py) and the credit readings. No Flask.

A window is the current bucket and those before it: the last hour by the minute (60), the
last day by the hour (24) and the last week by the hour (168), so the oldest bucket of a
window may lie partly before it. Reading first writes this process's pending counts
(one pipeline), so what an admin just did shows; other processes' last seconds follow
with their next flush.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from service.stats import keys
from service.stats.recorder import StatsRecorder
from service.stats.trend import credits_trend
from service.storage import store_call
from service.verification.budgets import PhoneLimits
from service.verification.model import rfc3339
from service.verification.tenant import DEFAULT

# window -> (bucket key, bucket seconds, buckets)
WINDOWS = {"hour": (keys.minute_key, 60, 60), "day": (keys.hour_key, 3600, 24),
           "week": (keys.hour_key, 3600, 168)}
GLOBAL_BREAKER = PhoneLimits.breaker_key("global", "all")


def _no_backlog() -> int | None:
    """The webhook backlog before there are webhooks: none to show (see StatsReader)."""
    return None


def rates(counts: dict[str, int]) -> dict[str, Any]:
    """A row of counts with its conversion rate (approvals ÷ sends) and delivery failure
    rate (failed ÷ final delivery reports); None where there is nothing to divide by."""
    row: dict[str, Any] = {metric: counts.get(metric, 0) for metric in keys.METRICS}
    final = row["delivered"] + row["undelivered"]
    row["conversion_rate"] = round(row["approved"] / row["sent"], 4) if row["sent"] else None
    row["delivery_failure_rate"] = round(row["undelivered"] / final, 4) if final else None
    return row


class StatsReader:
    """``service_ids``: the services to list even without counts (the tenant registry's
    ids once issue 17's lands; the default service until then). ``webhook_backlog``: the
    hook the events branch (issue 18) points at its outbox, answering how many webhook
    deliveries wait; None (no webhooks) hides the figure."""

    def __init__(self, redis, *, recorder: StatsRecorder | None = None,
                 clock: Callable[[], float] = time.time,
                 service_ids: Callable[[], list[str]] = lambda: [DEFAULT],
                 webhook_backlog: Callable[[], int | None] = _no_backlog):
        self.redis = redis
        self.recorder = recorder
        self.clock = clock
        self.service_ids = service_ids
        self.webhook_backlog = webhook_backlog

    @store_call  # Redis down: 503 store_unavailable, as every store call
    def read(self, window: str) -> dict[str, Any]:
        key_of, seconds, count = WINDOWS[window]
        if self.recorder is not None:
            self.recorder.flush()
        now_ms = int(self.clock() * 1000)
        last = now_ms // (seconds * 1000)
        buckets = list(range(last - count + 1, last + 1))
        pipe = self.redis.pipeline(transaction=False)
        for bucket in buckets:
            pipe.hgetall(key_of(bucket))
        pipe.zrangebyscore(keys.BREAKERS_KEY, now_ms - keys.HISTORY_MS, "+inf", withscores=True)
        pipe.zrangebyscore(keys.CREDITS_KEY, now_ms - WINDOWS["week"][1] * 168 * 1000, "+inf",
                           withscores=True)
        *hashes, trips, readings = pipe.execute()

        series, by_service, by_country, totals = [], {}, {}, {}
        for bucket, fields in zip(buckets, hashes, strict=True):
            point: dict[str, int] = {}
            for name, value in fields.items():
                parsed = keys.parse_field(_text(name))
                if parsed is None or parsed[0] not in keys.METRICS:
                    continue  # a field this version does not know
                metric, service, country = parsed
                for counts in (point, totals, by_service.setdefault(service, {}),
                               by_country.setdefault(country, {})):
                    counts[metric] = counts.get(metric, 0) + int(value)
            series.append({"at": rfc3339(bucket * seconds * 1000), **rates(point)})
        for service in self.service_ids():
            by_service.setdefault(service, {})
        return {
            "window": window,
            "bucket_seconds": seconds,
            "from": rfc3339(buckets[0] * seconds * 1000),
            "to": rfc3339(now_ms),
            "totals": rates(totals),
            "series": series,
            "services": [{"service": name, **rates(row)} for name, row in
                         sorted(by_service.items(), key=lambda i: (-i[1].get("sent", 0), i[0]))],
            "countries": [{"country": name, **rates(row)} for name, row in
                          sorted(by_country.items(), key=lambda i: (-i[1].get("sent", 0), i[0]))],
            "breakers": self._breakers(trips, now_ms, buckets[0] * seconds * 1000),
            "credits": credits_trend(_readings(readings), now_ms),
            "webhook_backlog": self.webhook_backlog(),
        }

    def _breakers(self, trips: list, now_ms: int, since_ms: int) -> list[dict[str, Any]]:
        """The global breaker, and every breaker that tripped in the window or is open."""
        known: dict[str, dict[str, Any]] = {
            GLOBAL_BREAKER: {"kind": "global", "country": None, "service": DEFAULT,
                             "tripped_at": None}}
        for member, score in trips:
            kind, country, service, key = (_text(member).split("|", 3) + ["", "", ""])[:4]
            if key:
                known[key] = {"kind": kind, "country": country or None, "service": service,
                              "tripped_at": int(score)}
        pipe = self.redis.pipeline(transaction=False)
        for key in known:
            pipe.get(key)
        shown = []
        for (key, breaker), until in zip(known.items(), pipe.execute(), strict=True):
            until_ms = int(until) if until and _text(until).isdigit() else 0
            is_open = until_ms > now_ms
            tripped = breaker["tripped_at"]
            if key != GLOBAL_BREAKER and not is_open and (tripped or 0) < since_ms:
                continue
            shown.append({**breaker, "tripped_at": rfc3339(tripped), "open": is_open,
                          "resets_at": rfc3339(until_ms) if is_open else None})
        return sorted(shown, key=lambda b: (not b["open"], b["kind"] != "global",
                                            b["country"] or "", b["kind"]))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _readings(entries: list) -> list[tuple[int, Decimal]]:
    """(ms, credits) from the sorted set's ``<ms>:<credits>`` members, oldest first."""
    readings = []
    for member, score in entries:
        try:
            readings.append((int(score), Decimal(_text(member).split(":", 1)[1])))
        except (IndexError, InvalidOperation):
            continue  # not a reading this version wrote
    return readings
