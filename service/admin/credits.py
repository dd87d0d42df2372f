"""The ``aspsms_credits`` gauge: the balance the gateway last reported, kept fresh.

The gauge is set whenever the service learns the balance (an admin's credits call, and
this refresher), through the ``Event.CREDITS`` event that :mod:`service.metrics` listens to. A
scrape of ``/metrics`` that finds this process's last reading older than
``REFRESH_SECONDS`` asks the gateway (``CheckCredits``) before it answers, so the gauge is
never older than that interval plus one scrape, and a process asks at most once per
interval however often it is scraped. A gateway that fails keeps the last value and is
asked again only after the interval. Under gunicorn each worker keeps its own reading;
the gauge's ``mostrecent`` mode shows the newest of them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from service.events import Event
from service.gateway import AspsmsClient, GatewayError

log = logging.getLogger(__name__)

REFRESH_SECONDS = 300.0


class CreditsRefresher:
    def __init__(self, gateway: AspsmsClient, events: Callable[..., None], *,
                 max_age: float = REFRESH_SECONDS,
                 clock: Callable[[], float] = time.monotonic):
        self.gateway = gateway
        self.events = events
        self.max_age = max_age
        self.clock = clock
        self._asked_at: float | None = None  # the last reading, ours or anyone's
        self._asking = threading.Lock()

    def on_event(self, name: Event, **details) -> None:
        """Event-bus listener: a balance learned elsewhere counts as a fresh reading."""
        if name is Event.CREDITS:
            self._asked_at = self.clock()

    def refresh_if_stale(self) -> None:
        """Ask the gateway when the last reading is older than ``max_age``."""
        if self._asked_at is not None and self.clock() - self._asked_at < self.max_age:
            return
        if not self._asking.acquire(blocking=False):
            return  # another scrape of this process is asking right now
        try:
            self._asked_at = self.clock()
            credits = self.gateway.check_credits().credits
        except GatewayError as e:
            log.warning("the credits gauge could not be refreshed: %s", e)
            return
        finally:
            self._asking.release()
        self.events(Event.CREDITS, credits=credits)

