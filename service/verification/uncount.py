"""A send's limits and budgets taken back when the gateway surely did nothing (no Flask).

A send is counted (count_limits.lua) before the SMS goes out, so that a refused send costs
no SMS. When the gateway then surely did not carry it out (a refused connection, or a status
saying it did nothing: ``GatewayError.may_have_acted`` is False), it sent nothing and charged
nothing, and its counts would only lock a retrying user out and spend a service's budgets
during a credit or credentials outage. So exactly the entries that send pushed are removed
(uncount_limits.lua, one round trip on that failure path only). A send whose outcome is
unknown keeps its counts: it may have texted someone.

No breaker needs an undo: a send that passed its count did not trip one. If the undo fails
(the store down), the counts stand, which errs on the safe side, and the caller answers the
gateway's error, not the store's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import redis

from service.errors import StoreUnavailable
from service.storage import store_call
from service.verification.scripts import register_script

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CountedSend:
    """What one send's count_limits.lua run pushed: the time it pushed (ms, as the script
    wrote it) onto each of these windows (all in one slot, ``{otp-breakers}``)."""

    windows: tuple[str, ...]
    at_ms: int


class Uncount:
    def __init__(self, store_client):
        self._script = register_script(store_client, "uncount_limits")

    def __call__(self, counted: CountedSend | None) -> None:
        """Remove ``counted``'s entries from its windows (None, or no window: nothing)."""
        if counted is None or not counted.windows:
            return
        try:
            self._run(counted)
        except (StoreUnavailable, redis.exceptions.RedisError):
            log.warning("a failed send's limits could not be taken back; they stay counted",
                        exc_info=True)

    @store_call
    def _run(self, counted: CountedSend) -> None:
        self._script(keys=list(counted.windows), args=[str(counted.at_ms)])
