"""The dashboard's counters: counted in process, written to Redis in the background.

An event of the domain (:class:`service.events.Events`) costs a request a dictionary
update under a lock and no Redis round trip: the counts of each minute gather here, and a
background thread writes them every ``FLUSH_SECONDS`` in one pipeline (HINCRBY on the
minute's and the hour's hash, EXPIRE on each; :mod:`.keys`). So a process that dies loses
at most the last ``FLUSH_SECONDS`` of its counts, and a flush whose answer is lost (Redis
timed out after it wrote) is written again: the counts are for reading trends, not for
billing. While Redis is down the counts wait here (at most ``MOST_PENDING`` fields).

Delivery reports name their verification, not its country: the flush reads the country and
service of those verifications (one HMGET each, one pipeline, only when there were
reports), off every request path.

Forks and exits: the thread starts with the first count of a process; a gunicorn worker
forked from a master that counted starts its own and drops what it inherited (the master
writes that itself). At exit (``atexit``, which gunicorn's workers reach on a graceful
stop) the thread stops and the last counts are written.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable
from typing import Any

from service import waits
from service.events import Event
from service.stats import keys
from service.storage import STORE_ERRORS
from service.verification.keys import verification_key

log = logging.getLogger(__name__)

FLUSH_SECONDS = 5.0
THREAD_NAME = "otp-stats-flush"
MOST_PENDING = 50_000
CREDITS_EVERY_MS = 60_000  # one credit reading a minute per process is history enough
DELIVERY_METRIC = {"delivered": "delivered", "failed": "undelivered", "buffered": "buffered"}
_RECORDERS: weakref.WeakSet[StatsRecorder] = weakref.WeakSet()


class StatsRecorder:
    def __init__(self, redis, *, clock: Callable[[], float] = time.time,
                 flush_seconds: float = FLUSH_SECONDS):
        self.redis = redis
        self.clock = clock
        self.flush_seconds = flush_seconds
        self._closed = False
        self._last_credits_ms = -CREDITS_EVERY_MS
        self._fresh()
        self._handlers = {Event.SENT: self._sent, Event.SEND_FAILED: self._send_failed,
                          Event.CHECKED: self._checked, Event.DELIVERY: self._delivery,
                          Event.BREAKER_TRIPPED: self._breaker_tripped,
                          Event.CREDITS: self._credits}
        _RECORDERS.add(self)

    def _fresh(self) -> None:
        """Nothing pending, no thread (at start, and in a forked child)."""
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._wake = threading.Event()
        self._counts: Counter[tuple[int, str]] = Counter()  # (minute, field)
        self._deliveries: Counter[tuple[int, str, str]] = Counter()  # (minute, metric, id)
        self._breakers: dict[str, int] = {}  # member -> trip ms
        self._readings: list[tuple[int, str]] = []  # (ms, credits)
        self._thread: threading.Thread | None = None

    # -- counting (request threads) ------------------------------------------------------
    def on_event(self, name: Event, **details: Any) -> None:
        """Listener for :class:`service.events.Events`."""
        handler = self._handlers.get(name)
        if handler is not None:
            handler(**details)

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def _count(self, metric: str, service: str, country: Any) -> None:
        name = keys.field(metric, service, keys.bounded_country(country))
        minute = self._now_ms() // 60_000
        with self._lock:
            self._counts[minute, name] += 1
            self._started()

    def _sent(self, country: str = "ZZ", test: bool = False, verification: Any = None,
              service: Any = None, **_: Any) -> None:
        if not test:  # nothing is texted to a test number
            self._count("sent", keys.service_of(verification, service), country)

    def _send_failed(self, country: str = "ZZ", verification: Any = None, service: Any = None,
                     **_: Any) -> None:
        self._count("send_failed", keys.service_of(verification, service), country)

    def _checked(self, verification: Any = None, valid: bool = False, **_: Any) -> None:
        if verification is None or getattr(verification, "test", False):
            return
        self._count("approved" if valid else "rejected", keys.service_of(verification),
                    getattr(verification, "country", "ZZ"))

    def _delivery(self, status: str = "", verification_id: str | None = None,
                  **_: Any) -> None:
        metric = DELIVERY_METRIC.get(status)
        if metric is None or not verification_id:
            return
        minute = self._now_ms() // 60_000
        with self._lock:
            self._deliveries[minute, metric, verification_id] += 1
            self._started()

    def _breaker_tripped(self, kind: str = "", breaker: str | None = None,
                         country: Any = None, service: Any = None, **_: Any) -> None:
        if not breaker:
            return
        member = "|".join((kind, keys.bounded_country(country) if country else "",
                           keys.bounded_service(service), breaker))
        with self._lock:
            self._breakers[member] = self._now_ms()
            self._started()

    def _credits(self, credits: Any = None, **_: Any) -> None:
        now = self._now_ms()
        if credits is None or now - self._last_credits_ms < CREDITS_EVERY_MS:
            return
        self._last_credits_ms = now
        with self._lock:
            self._readings.append((now, str(credits)))
            self._started()

    def _started(self) -> None:
        """Under the lock: the flush thread runs (from this process's first count on)."""
        if self._thread is None and not self._closed:
            self._thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)
            self._thread.start()

    # -- writing (the flush thread, a reader, or exit) -----------------------------------
    def _run(self) -> None:
        while not self._wake.wait(self.flush_seconds):
            waits.begin()  # each pass waits for the store once, as a request does
            try:
                self.flush()
            except Exception:  # a bug here must not end the counting for good
                log.exception("the dashboard's counters could not be written")

    def flush(self) -> bool:
        """Write what was counted so far; False when Redis failed (it is kept for later)."""
        with self._flushing:
            with self._lock:
                counts, self._counts = self._counts, Counter()
                deliveries, self._deliveries = self._deliveries, Counter()
                breakers, self._breakers = self._breakers, {}
                readings, self._readings = self._readings, []
            if not (counts or deliveries or breakers or readings):
                return True
            try:
                counts.update(self._placed(deliveries))
                deliveries = Counter()
                self._write(counts, breakers, readings)
            except STORE_ERRORS as e:
                log.warning("the dashboard's counters wait for the store: %s", type(e).__name__)
                self._keep(counts, deliveries, breakers, readings)
                return False
            return True

    def _placed(self, deliveries: Counter) -> Counter[tuple[int, str]]:
        """Delivery counts by the country and service of their verifications."""
        if not deliveries:
            return Counter()
        ids = sorted({vid for _, _, vid in deliveries if verification_key(vid)})
        pipe = self.redis.pipeline(transaction=False)
        for vid in ids:
            pipe.hmget(verification_key(vid), "country", "svc")
        found = dict(zip(ids, pipe.execute(), strict=True))
        placed: Counter[tuple[int, str]] = Counter()
        for (minute, metric, vid), count in deliveries.items():
            country, service = found.get(vid) or (None, None)
            placed[minute, keys.field(metric, keys.bounded_service(service),
                                      keys.bounded_country(country))] += count
        return placed

    def _write(self, counts: Counter, breakers: dict[str, int],
               readings: list[tuple[int, str]]) -> None:
        now = self._now_ms()
        pipe = self.redis.pipeline(transaction=False)
        buckets: dict[str, int] = {}
        for (minute, name), count in counts.items():
            for key, ttl in ((keys.minute_key(minute), keys.MINUTE_TTL_SECONDS),
                             (keys.hour_key(minute // 60), keys.HOUR_TTL_SECONDS)):
                pipe.hincrby(key, name, count)
                buckets[key] = ttl
        for key, ttl in buckets.items():
            pipe.expire(key, ttl)
        for key, entries, most in ((keys.BREAKERS_KEY, breakers, keys.MOST_BREAKERS),
                                   (keys.CREDITS_KEY, {f"{ms}:{value}": ms
                                                       for ms, value in readings},
                                    keys.MOST_READINGS)):
            if entries:
                pipe.zadd(key, entries)
                pipe.zremrangebyscore(key, "-inf", f"({now - keys.HISTORY_MS}")
                pipe.zremrangebyrank(key, 0, -most - 1)
                pipe.pexpire(key, keys.HISTORY_MS)
        pipe.execute()

    def _keep(self, counts: Counter, deliveries: Counter, breakers: dict[str, int],
              readings: list[tuple[int, str]]) -> None:
        """Put back what a failed flush took, under what was counted since."""
        with self._lock:
            self._counts.update(counts)
            self._deliveries.update(deliveries)
            self._breakers = {**breakers, **self._breakers}
            self._readings = readings + self._readings
            if len(self._counts) + len(self._deliveries) > MOST_PENDING:
                log.error("the store has been down too long: the dashboard's counters of "
                          "this process are dropped")
                self._counts.clear()
                self._deliveries.clear()

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread and write the last counts (at exit; tests, between apps)."""
        self._closed = True
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        waits.begin()
        try:
            self.flush()
        except Exception:
            log.exception("the dashboard's last counters could not be written")


def _after_fork() -> None:
    """In a forked child: the parent writes what it counted; the child counts anew."""
    for recorder in list(_RECORDERS):
        recorder._fresh()


def _close_all() -> None:
    for recorder in list(_RECORDERS):
        if not recorder._closed:
            recorder.close(timeout=2.0)


os.register_at_fork(after_in_child=_after_fork)
atexit.register(_close_all)
