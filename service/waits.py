"""A request waits for the state store at most once.

When a Redis call times out, the request fails with 503 ``store_unavailable``. What it
would do next, an undo of a reserved send or the release of an idempotency claim, is
another call to the same store, and it would wait the timeout again: a 503 after twice
``REDIS_TIMEOUT`` (seen: 2.02 s for 1 s) where the contract promises it within the
timeout. So after one timeout the request's later store calls fail at once; the state
they would have tidied is the same a crash would leave (an idempotency claim frees itself
after a minute). Only a timeout counts: a refused or reset connection costs no wait, and a
compensation then still gets its chance. The HTTP layer starts every request afresh
(:func:`begin`); the mark lives in a context variable, so it is per thread. Every store
call passes here through :func:`service.storage.store_call`.
"""

from __future__ import annotations

from contextvars import ContextVar

import redis

from service.errors import StoreUnavailable

_TIMED_OUT: ContextVar[bool] = ContextVar("store_timed_out", default=False)


def begin() -> None:
    """A new request: no wait for the store so far."""
    _TIMED_OUT.set(False)


def refuse_if_waited() -> None:
    """Fail at once when this request already waited for the store in vain."""
    if _TIMED_OUT.get():
        raise StoreUnavailable("The state store is unavailable; nothing was done.")


def note(error: BaseException) -> None:
    """Remember that the store did not answer in time (a timeout, not a refusal)."""
    if isinstance(error, redis.exceptions.TimeoutError):
        _TIMED_OUT.set(True)
