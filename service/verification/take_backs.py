"""Reserved sends taken back even while the store is down (no Flask here).

A start reserves its send in Redis before the SMS goes out (reserve_send.lua) and takes the
reservation back when the SMS never left (undo_send.lua). If Redis fails at that moment, the
reservation would stay: a pending verification whose code nobody received, holding a resend
cooldown against the user's retry. So an undo that fails on the store is kept and retried,
before this process's next reservation for that phone and by a background thread with a
growing pause, until it lands or its verification would have expired anyway. undo_send.lua
is safe to run again (a second run finds nothing left to take back).

What is kept lives in this process only: a worker that dies with undos still kept leaves
those reservations to expire on their own.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from service import waits
from service.errors import StoreUnavailable

log = logging.getLogger(__name__)

FIRST_PAUSE_SECONDS = 0.05
LONGEST_PAUSE_SECONDS = 2.0
MOST_KEPT = 10_000  # a long outage under load: beyond this the oldest are given up


class TakeBacks:
    def __init__(self, *, clock: Callable[[], float] = time.time,
                 first_pause: float = FIRST_PAUSE_SECONDS,
                 longest_pause: float = LONGEST_PAUSE_SECONDS):
        self._clock = clock
        self._first_pause, self._longest_pause = first_pause, longest_pause
        self._kept: list[tuple[float, str, Callable[[], object]]] = []  # (until, key, undo)
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def run(self, undo: Callable[[], object], *, key: str, until: float) -> None:
        """Run ``undo`` now; if the store fails, keep retrying it until ``until`` (epoch s).
        ``key`` names what it frees (a phone), for :meth:`flush`."""
        try:
            undo()
        except StoreUnavailable:
            log.warning("a reserved send could not be taken back; retrying in the background")
            self._keep(newer=[(until, key, undo)])

    @property
    def kept(self) -> int:
        with self._changed:
            return len(self._kept)

    def flush(self, key: str | None = None) -> bool:
        """Retry the kept undos (those for ``key`` only, if given) until the store fails
        again; True when none of them is left. Each undo is run by one caller at a time."""
        with self._changed:
            mine = [entry for entry in self._kept if key is None or entry[1] == key]
            if not mine:
                return True
            self._kept = [entry for entry in self._kept if key is not None and entry[1] != key]
        now = self._clock()
        for index, (until, _, undo) in enumerate(mine):
            if until <= now:
                continue  # its verification has expired: nothing left to hold a cooldown
            try:
                undo()
            except StoreUnavailable:  # still down: the rest need not wait a timeout each
                self._keep(older=[e for e in mine[index:] if e[0] > now])
                return False
        return True

    def _keep(self, older: list = (), newer: list = ()) -> None:
        """Keep undos, oldest first; past MOST_KEPT the oldest are given up."""
        with self._changed:
            self._kept = [*older, *self._kept, *newer]
            if len(self._kept) > MOST_KEPT:
                log.error("too many reserved sends could not be taken back; giving up the "
                          "oldest %d", len(self._kept) - MOST_KEPT)
                self._kept = self._kept[-MOST_KEPT:]
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._retry, name="take-backs",
                                                daemon=True)
                self._thread.start()
            self._changed.notify()

    def _retry(self) -> None:
        pause = self._first_pause
        while True:
            with self._changed:
                while not self._kept:
                    pause = self._first_pause
                    self._changed.wait()
            time.sleep(pause)
            waits.begin()  # each pass waits for the store once, as a request does
            pause = self._first_pause if self.flush() else min(pause * 2, self._longest_pause)
