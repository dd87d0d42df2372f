"""A small in-process event bus: the domain says what happened; metrics, audit and logs
subscribe. Keeps the domain free of prometheus and of the audit store."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

Listener = Callable[..., None]


class Events:
    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def __call__(self, name: str, **details: Any) -> None:
        for listener in self._listeners:
            try:
                listener(name, **details)
            except Exception:  # an observer must never break a verification
                log.exception("event listener failed for %s", name)
