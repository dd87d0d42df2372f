"""Timed delivery events and the HTTP callbacks they trigger (docs/gateway.md §6.4).

One scheduler thread runs due events under the simulator's lock (its condition shares that
lock, so the state has exactly one); a few worker threads then request the callback URLs
outside the lock, so a slow receiver never blocks the gateway.
"""

import heapq
import itertools
import logging
import queue
import threading
import time
import urllib.request
from collections.abc import Callable
from urllib.parse import quote

_log = logging.getLogger(__name__)

TAGS = (
    "<RCPNT>",
    "<SCTS>",
    "<DSCTS>",
    "<SCTSUTC>",
    "<DSCTSUTC>",
    "<SCTSCET>",
    "<DSCTSCET>",
    "<RSN>",
    "<DST>",
    "<TRN>",
)
_WORKERS = 4
# Callbacks go to a local receiver; an http_proxy variable in the environment must not divert them.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def expand_url(url: str, values: dict[str, str]) -> str:
    """Substitute the tags (URL-encoded); a URL without any tag gets the TRN appended."""
    if not any(tag in url for tag in TAGS):
        return url + quote(values["<TRN>"], safe="")
    for tag in TAGS:
        url = url.replace(tag, quote(values[tag], safe=""))
    return url


class Notifier:
    """Runs actions after a delay and requests callback URLs in the background."""

    def __init__(self, lock: threading.RLock, timeout: float):
        self._cond = threading.Condition(lock)
        self._timeout = timeout
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()  # ties on the due time keep submission order
        self._outbox: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._workers = 0
        # Threads belong to one generation; close() ends it, and a later schedule() (a
        # restarted server) simply starts a new one.
        self._generation = 0

    def schedule(self, delay: float, action: Callable[[], None]) -> None:
        """Run `action` (under the lock) after `delay` seconds. Caller holds the lock."""
        heapq.heappush(self._heap, (time.monotonic() + delay, next(self._order), action))
        self._start_threads()
        self._cond.notify()

    def cancel_all(self) -> None:
        """Forget every pending event (a reset). Caller holds the lock."""
        self._heap.clear()

    def request(self, url: str) -> None:
        """Queue one callback request."""
        self._outbox.put(url)

    def close(self) -> None:
        """End the threads; pending events and queued callbacks are dropped."""
        with self._cond:
            self._generation += 1
            self._heap.clear()
            self._cond.notify_all()
            outbox, self._outbox = self._outbox, queue.SimpleQueue()
            workers, self._workers = self._workers, 0
        for _ in range(workers):
            outbox.put(None)

    def _start_threads(self) -> None:
        # Lazily, so a Simulator used without notifications starts no threads at all.
        if self._workers:
            return
        self._workers = _WORKERS
        threads = [threading.Thread(target=self._run_events, args=(self._generation,))]
        threads += [
            threading.Thread(target=self._run_callbacks, args=(self._outbox,))
            for _ in range(_WORKERS)
        ]
        for thread in threads:
            thread.daemon = True
            thread.start()

    def _run_events(self, generation: int) -> None:
        with self._cond:
            while generation == self._generation:
                wait = self._heap[0][0] - time.monotonic() if self._heap else None
                if wait is None or wait > 0:
                    self._cond.wait(wait)
                    continue
                _, _, action = heapq.heappop(self._heap)
                try:
                    action()
                except Exception:  # one broken event must not end all later deliveries
                    _log.exception("simulator delivery event failed")

    def _run_callbacks(self, outbox: queue.SimpleQueue) -> None:
        while (url := outbox.get()) is not None:
            try:
                with _OPENER.open(url, timeout=self._timeout) as response:
                    response.read()
            except Exception:  # the receiver's trouble is never the gateway's (errors swallowed)
                _log.debug("simulator callback failed", exc_info=True)
