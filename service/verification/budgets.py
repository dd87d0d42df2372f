"""Phone-level limits and SMS-pumping budgets, decided where the phone is known.

Request-level limits (per IP, per client key) are Flask-Limiter's, in the HTTP layer. The
limits here need the normalised number or the verification, which only the domain has, so
they use the same ``limits`` library and storage directly:

* sends to one phone (``OTP_LIMIT_START_PER_PHONE``) and checks against one phone
  (``OTP_LIMIT_CHECK_PER_PHONE``), keyed by the number's HMAC;
* budgets per prefix (the number without its last four digits), per country and global.
  Exhausting a budget trips a breaker that refuses every send to that prefix / country /
  everywhere for the budget's whole window, then resets by itself.

All use the moving window: exact counts across processes (each hit is one Lua script in
Redis), at the price of one list entry per counted request.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis
from limits import RateLimitItem, parse_many
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from service.errors import RateLimited, StoreUnavailable
from service.verification.phones import Phone
from service.verification.store import STORE_ERRORS

log = logging.getLogger(__name__)
BREAKER_TAG = "{otp-breakers}"  # one slot: the breakers are read together


@dataclass(frozen=True)
class LimitSettings:
    start_per_phone: str
    check_per_phone: str
    budget_per_prefix: str
    budget_per_country: str
    budget_global: str


class PhoneLimits:
    def __init__(self, *, storage_uri: str, storage_options: dict, store_client,
                 secret: bytes, settings: LimitSettings,
                 on_event: Callable[..., None] | None = None):
        self.strategy = MovingWindowRateLimiter(storage_from_string(storage_uri,
                                                                    **storage_options))
        self.redis = store_client
        self._secret = secret
        self.on_event = on_event or (lambda *args, **kwargs: None)
        self.items = {
            "start_per_phone": parse_many(settings.start_per_phone),
            "check_per_phone": parse_many(settings.check_per_phone),
            "prefix": parse_many(settings.budget_per_prefix),
            "country": parse_many(settings.budget_per_country),
            "global": parse_many(settings.budget_global),
        }

    def _hash(self, value: str) -> str:
        return hmac.new(self._secret, value.encode(), hashlib.sha256).hexdigest()[:32]

    def _budget_scopes(self, phone: Phone) -> list[tuple[str, str]]:
        return [("global", "all"), ("country", phone.country),
                ("prefix", self._hash("prefix:" + phone.prefix))]

    @staticmethod
    def _breaker_key(kind: str, scope: str) -> str:
        return f"otp:{BREAKER_TAG}:{kind}:{scope}"

    def refuse_if_tripped(self, phone: Phone) -> None:
        """Before any state change: a tripped breaker refuses the send outright."""
        scopes = self._budget_scopes(phone)
        try:
            until = self.redis.mget([self._breaker_key(k, s) for k, s in scopes])
        except (redis.RedisError, *STORE_ERRORS) as e:
            raise StoreUnavailable("The state store is unavailable; nothing was sent.") from e
        now_ms = time.time() * 1000
        for (kind, _), value in zip(scopes, until, strict=True):
            if value and float(value) > now_ms:
                raise RateLimited(f"Sending is paused: the {kind} budget is spent.",
                                  (float(value) - now_ms) / 1000, f"{kind}_budget")

    def count_send(self, phone: Phone, phone_hash: str) -> None:
        """Count one send against the phone's limit and the budgets, or refuse it."""
        for kind, scope in self._budget_scopes(phone):
            self._hit(kind, scope, breaker=True)
        self._hit("start_per_phone", phone_hash)

    def count_check(self, phone_hash: str) -> None:
        self._hit("check_per_phone", phone_hash)

    def _hit(self, kind: str, scope: str, breaker: bool = False) -> None:
        for item in self.items[kind]:
            try:
                allowed = self.strategy.hit(item, "otp", kind, scope)
            except (redis.RedisError, *STORE_ERRORS) as e:
                raise StoreUnavailable("The state store is unavailable; nothing was done.") from e
            if not allowed:
                self._refuse(kind, scope, item, breaker)

    def _refuse(self, kind: str, scope: str, item: RateLimitItem, breaker: bool) -> None:
        self.on_event("limit_hit", limit=kind)
        if not breaker:
            reset = self.strategy.get_window_stats(item, "otp", kind, scope).reset_time
            raise RateLimited(f"Too many requests for this phone number ({item}).",
                              max(1.0, reset - time.time()), kind, limit=item.amount)
        hold = item.get_expiry()
        until_ms = (time.time() + hold) * 1000
        if self.redis.set(self._breaker_key(kind, scope), f"{until_ms:.0f}", nx=True,
                          px=hold * 1000):
            log.warning("SMS budget breaker tripped", extra={"budget": kind, "limit": str(item)})
            self.on_event("breaker_tripped", kind=kind)
        raise RateLimited(f"Sending is paused: the {kind} budget is spent.", hold,
                          f"{kind}_budget", limit=item.amount)
