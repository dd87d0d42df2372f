"""The webhook worker: reads the event streams, delivers, retries, sweeps expiries.

Any number of workers share the work as one consumer group (each its own consumer name);
each delivers to up to ``concurrency`` services at once, and a pass never waits for a
delivery: a service's events go to the pool a batch at a time, and those that come while
its batch runs wait here (kept this worker's) for the next, so one slow receiver (up to
the 5 s timeout each) holds up only its own service; one service's events go one at a time
in the order they happened (a retry may still arrive after a later event: dedupe and order
by the body's ``timestamp``, as with any webhook).
A pass: new entries (XREADGROUP), entries a dead worker read and never settled (XAUTOCLAIM
after ``claim_idle``), retries that are due, the expiry sweep, and the backlog gauges.
Each event is delivered, then finished; a failure schedules the next attempt, with
exponential backoff and full jitter (``backoff_base`` · 2^attempt, at most
``backoff_cap``), until the entry is ``give_up_after`` old: then it is kept as failed
(:mod:`.failed`). So an event is delivered at least once: a crash at any point leaves it
pending or due, and some worker delivers it again.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from service import metrics, waits
from service.verification.store import VerificationStore
from service.verification.tenant import Tenant
from service.webhooks import safety, signing
from service.webhooks.failed import FailedDeliveries
from service.webhooks.lanes import Lanes
from service.webhooks.payload import Event
from service.webhooks.queue import LEASE_MS, Queue
from service.webhooks.sweep import sweep

log = logging.getLogger(__name__)
TIMEOUT_SECONDS = 5.0
# events taken at a time: even if each timed out, the last is settled well within
# claim_idle (and a retry's lease), so no live worker's events are taken over
BATCH = 10
# events of one service waiting here for their turn; more are scheduled as retries
HELD_PER_SERVICE = 100


@dataclass(frozen=True)
class Timing:
    backoff_base: float = 5.0  # seconds before the first retry (jittered)
    backoff_cap: float = 3600.0
    give_up_after: float = 25 * 3600.0  # a day of retries, and then some
    claim_idle: float = 60.0  # an entry read this long ago and not settled: its worker died
    sweep_every: float = 15.0  # verification.expired within this (and a pass) of expiry
    idle_pause: float = 0.1  # between passes that found nothing
    streams_every: float = 5.0  # a cluster's new streams are found within this
    concurrency: int = 8  # services delivered to at once


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{random.randrange(16**4):04x}"


class Worker:
    def __init__(self, *, store: VerificationStore, targets: Callable[[str], Tenant | None],
                 secrets: signing.Secrets, failed: FailedDeliveries, allow_private: bool,
                 timing: Timing | None = None, consumer: str | None = None,
                 clock: Callable[[], float] = time.time):
        self.store = store
        self.queue = Queue(store.redis, store.events, consumer or consumer_name())
        self.targets = targets
        self.secrets = secrets
        self.failed = failed
        self.allow_private = allow_private
        self.timing = timing or Timing()
        self.clock = clock
        self._streams: list[str] = []
        self._next = {"streams": 0.0, "claim": 0.0, "sweep": 0.0, "gauges": 0.0}
        self._lanes = Lanes(HELD_PER_SERVICE, BATCH)
        self._pool = ThreadPoolExecutor(max_workers=self.timing.concurrency,
                                        thread_name_prefix="webhook-delivery")

    # -- the loop -------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        log.info("webhook worker %s started", self.queue.consumer)
        while not stop.is_set():
            try:
                busy = self.run_once()
            except Exception:  # the store down, a bug: logged, and the next pass tries again
                log.exception("webhook worker pass failed")
                busy = 0
            if not busy:
                stop.wait(self.timing.idle_pause)
        self._pool.shutdown(wait=True)  # the deliveries in hand finish

    def _due(self, what: str, every: float) -> bool:
        now = time.monotonic()
        if now < self._next[what]:
            return False
        self._next[what] = now + every
        return True

    def run_once(self) -> int:
        """One pass; how many events it took in. It never waits for a delivery: each
        service's events go to the pool one batch at a time, in order, and a service whose
        batch is still running keeps its next events here until it is done (a slow
        receiver holds up only its own service)."""
        waits.begin()
        if self._due("streams", self.timing.streams_every) or not self._streams:
            self._streams = self.queue.streams()
        taken = 0
        claim = self._due("claim", min(self.timing.claim_idle / 2, 30.0))
        for stream in self._streams:
            work = [(event, 0) for event in self.queue.read_new(stream, BATCH)]
            if claim:
                work += [(event, 0) for event in self.queue.claim_stale(
                    stream, int(self.timing.claim_idle * 1000), BATCH)]
            work += self.queue.take_due(stream, self._now_ms(), BATCH)
            taken += self._take_in(work)
        if claim:
            self._keep_waiting()
        self._submit_ready()
        if self._due("sweep", self.timing.sweep_every):
            for stream in self._streams:
                sweep(self.store, stream, self._now_ms())
        if self._due("gauges", 5.0):
            metrics.set_webhook_backlog(*self.queue.backlog(self._streams, self._now_ms()))
        return taken

    # -- each service in order, none waiting for another ----------------------------------
    def _take_in(self, work: list[tuple[Event, int]]) -> int:
        """Queue ``work`` in its services' lanes; one beyond HELD_PER_SERVICE is scheduled
        as a retry instead, so memory stays bounded."""
        taken = 0
        for event, attempts in work:
            added = self._lanes.add((event, attempts))
            if added is False:
                self.queue.retry_at(event, attempts, self._now_ms() + int(
                    self.backoff(max(attempts, 1)) * 1000))
            taken += added is not None
        return taken

    def _submit_ready(self) -> None:
        # no more batches than threads: one queued in the pool would not be kept
        free = self.timing.concurrency - self._lanes.in_flight()
        for service, batch in self._lanes.ready(free):
            self._pool.submit(self._handle_in_order, service, batch)

    def _keep_waiting(self) -> None:
        """Events waiting here for their service's turn, or for their turn in its batch,
        are kept this worker's (else after claim_idle another worker would take them as a
        dead worker's, and deliver them out of order)."""
        by_stream: dict[str, tuple[list[str], list[str]]] = {}
        for event, attempts in self._lanes.held():
            pending, leased = by_stream.setdefault(event.stream, ([], []))
            (leased if attempts else pending).append(event.entry_id)
        for stream, (pending, leased) in by_stream.items():
            self.queue.keep(stream, pending, leased, self._now_ms() + LEASE_MS)

    def _handle_in_order(self, service: str, items: list[tuple[Event, int]]) -> None:
        try:
            for item in items:
                self._handle_one(item)
                self._lanes.settled(item[0])
        finally:
            self._lanes.done(service, items)

    # -- one event ------------------------------------------------------------------------
    def _handle_one(self, item: tuple[Event, int]) -> str:
        """``handle`` in a pool thread: a failure is logged and the event stays pending,
        for XAUTOCLAIM after claim_idle (this worker's or another's)."""
        waits.begin()  # each delivery waits for the store at most once
        try:
            return self.handle(*item)
        except Exception:
            log.exception("webhook delivery failed", extra={"webhook_id": item[0].webhook_id})
            return "error"

    def handle(self, event: Event, attempts: int) -> str:
        """Deliver ``event`` (tried ``attempts`` times before); the outcome."""
        tenant = self.targets(event.service_id)
        wanted = tenant is not None and tenant.webhook_url and (
            not tenant.webhook_events or event.type in tenant.webhook_events)
        if not wanted:
            self.queue.finish(event, retried=attempts > 0)
            return self._count("skipped")
        outcome, error = self._deliver(tenant, event)
        if outcome == "delivered":
            self.queue.finish(event, retried=attempts > 0)
            return self._count(outcome)
        attempts += 1
        if self._now_ms() - event.queued_ms >= self.timing.give_up_after * 1000:
            self.failed.record(event, attempts, error)
            self.queue.finish(event)
            log.warning("webhook delivery failed for good after %d attempts: %s",
                        attempts, error, extra={"webhook_id": event.webhook_id})
            return self._count("failed")
        self.queue.retry_at(event, attempts, self._now_ms() + int(self.backoff(attempts) * 1000))
        log.info("webhook delivery attempt %d: %s; retried later", attempts, error,
                 extra={"webhook_id": event.webhook_id})
        return self._count(outcome)

    def backoff(self, attempts: int) -> float:
        """Seconds before attempt ``attempts`` + 1: doubling, capped, jittered over its upper
        half (so retries of many events spread out, and each gap still grows)."""
        ceiling = min(self.timing.backoff_cap, self.timing.backoff_base * 2 ** (attempts - 1))
        return ceiling * random.uniform(0.5, 1.0)

    def _deliver(self, tenant: Tenant, event: Event) -> tuple[str, str]:
        """("delivered", "") or (the outcome to count, why: safe to log)."""
        in_force = self.secrets.signing(tenant.id)
        if not in_force:
            return "unsigned", "the service has no signing secret yet"
        body = event.body(tenant.policy.max_sends)
        headers = signing.headers(in_force, event.webhook_id, body, self.clock)
        try:
            answer = safety.post(tenant.webhook_url, body.encode(), headers,
                                 timeout=TIMEOUT_SECONDS, allow_private=self.allow_private)
        except safety.Refused as e:
            return "refused", str(e)
        except TimeoutError:
            return "timeout", "no answer within 5 s"
        except OSError as e:
            return "error", f"connection failed ({type(e).__name__})"
        if 200 <= answer.status < 300:
            return "delivered", ""
        return "rejected", f"the receiver answered {answer.status}"

    @staticmethod
    def _count(outcome: str) -> str:
        metrics.count_webhook_delivery(outcome)
        return outcome

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)


def start_in_thread(worker: Worker) -> threading.Event:
    """The sandbox's in-process worker: a daemon thread; set the answer to stop it."""
    stop = threading.Event()
    threading.Thread(target=worker.run, args=(stop,), daemon=True,
                     name="webhook-worker").start()
    return stop
