"""The worker's events in hand, one lane per service: each service's events in the order
they were read, handed out one batch at a time, and never a second batch of a service
while one is in flight; so a slow receiver holds up only its own lane, and the worker's
pass never waits for a delivery. Every event held (waiting or in flight) is known by its
(stream, entry id), so one claimed back or leased again while held is not taken twice.
"""

from __future__ import annotations

import threading
from collections import deque

from service.webhooks.payload import Event

Item = tuple[Event, int]  # an event and its attempts so far


class Lanes:
    def __init__(self, per_service: int, batch: int):
        self.per_service, self.batch = per_service, batch
        self._lock = threading.Lock()
        self._waiting: dict[str, deque[Item]] = {}  # per service, in order
        self._in_flight: set[str] = set()  # services with a batch being delivered
        self._held: dict[tuple[str, str], Item] = {}  # every event waiting or in flight

    def add(self, item: Item) -> bool | None:
        """Queue ``item`` behind its service's: True; False when that lane is full (the
        caller schedules it for later); None when it is held already."""
        event = item[0]
        key = (event.stream, event.entry_id)
        with self._lock:
            if key in self._held:
                return None
            waiting = self._waiting.setdefault(event.service_id, deque())
            if len(waiting) >= self.per_service:
                return False
            self._held[key] = item
            waiting.append(item)
            return True

    def ready(self, free: int) -> list[tuple[str, list[Item]]]:
        """At most ``free`` batches, each of a service with none in flight (now it has),
        the services longest without a turn first."""
        with self._lock:
            services = [service for service, waiting in self._waiting.items()
                        if waiting and service not in self._in_flight][:max(free, 0)]
            batches = []
            for service in services:  # to the back: more services than threads take turns
                waiting = self._waiting[service] = self._waiting.pop(service)
                batches.append((service, [waiting.popleft()
                                          for _ in range(min(self.batch, len(waiting)))]))
                self._in_flight.add(service)
            for service in [s for s, w in self._waiting.items()
                            if not w and s not in self._in_flight]:
                del self._waiting[service]
            return batches

    def in_flight(self) -> int:
        with self._lock:
            return len(self._in_flight)

    def settled(self, event: Event) -> None:
        with self._lock:
            self._held.pop((event.stream, event.entry_id), None)

    def done(self, service: str, items: list[Item]) -> None:
        """The batch ended (its events settled, or left for a retry or a claim)."""
        with self._lock:
            self._in_flight.discard(service)
            for event, _ in items:
                self._held.pop((event.stream, event.entry_id), None)

    def held(self) -> list[Item]:
        with self._lock:
            return list(self._held.values())
