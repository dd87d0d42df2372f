"""A small in-process event bus: the domain says what happened; metrics, audit and logs
subscribe. Keeps the domain free of prometheus and of the audit store.

Events are named by :class:`Event`, which producers and listeners share: a name nobody
emits, or one nobody listens to, is then a name that does not exist, not a silent string.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from enum import StrEnum
from typing import Any

log = logging.getLogger(__name__)

Listener = Callable[..., None]


class Event(StrEnum):
    SENT = "sent"  # country, test
    SEND_FAILED = "send_failed"  # country, service
    CHECKED = "checked"  # verification, valid
    PHONE_LOCKED = "phone_locked"
    TEST_NUMBER_USED = "test_number_used"  # verification
    LIMIT_HIT = "limit_hit"  # limit
    BREAKER_TRIPPED = "breaker_tripped"  # kind, breaker (its key), country, service
    DELIVERY = "delivery"  # status, reason_class, verification_id
    CREDITS = "credits"  # credits: the balance the gateway reported


class Events:
    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def __call__(self, name: Event, **details: Any) -> None:
        event = Event(name)  # a name outside the set is the producer's bug: raised, loudly
        for listener in self._listeners:
            try:
                listener(event, **details)
            except Exception:  # an observer must never break a verification
                log.exception("event listener failed for %s", event)
