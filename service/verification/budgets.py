"""Phone-level limits and SMS-pumping budgets, decided where the phone is known.

Request-level limits (per IP, per client key) are Flask-Limiter's, in the HTTP layer. The
limits here need the normalised number or the verification, which only the domain has:

* sends to one phone (``OTP_LIMIT_START_PER_PHONE``) and checks against one phone
  (``OTP_LIMIT_CHECK_PER_PHONE``, counted by the check's claim, claim_attempt.lua), keyed
  by the number's HMAC;
* budgets per prefix (the number without its last four digits), per country and global.
  Exhausting a budget trips a breaker that refuses every send to that prefix / country /
  everywhere for the budget's whole window, then resets by itself.

All use the moving window of the ``limits`` library (exact counts across processes, one
list entry per counted request), and ``limits`` parses the notation. The counting itself is
one Lua script, ``count_limits.lua``, because ``limits`` counts one item per round trip and
each independently: a send would cost six round trips with the default limits, and a send
refused by its prefix budget would still have spent the global one. The script counts all
of a send's limits and checks the breakers in one round trip, all or nothing; the
moving window's Lua (``_moving_window.lua``) is shared with claim_attempt.lua.

Redis Cluster: one script's keys share a slot. A send's limits, budgets and breakers carry
the tag ``{otp-breakers}`` (sends cost money: their rate is far below one node's), a
check's limit the phone's own tag, like its verification.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from limits import RateLimitItem, parse_many

from service.errors import RateLimited
from service.events import Event
from service.storage import store_call
from service.verification.decisions import Count, Counted
from service.verification.event_log import BREAKERS_TAG, EventLog
from service.verification.phones import Phone
from service.verification.policy import Limits
from service.verification.scripts import register_script
from service.verification.tenant import DEFAULT

log = logging.getLogger(__name__)
BREAKER_TAG = "{" + BREAKERS_TAG + "}"  # one slot: a send's limits, budgets and breakers
# Originator unlock codes to one number: an operator needs one, maybe a retry; more is abuse.
UNLOCK_CODE_LIMIT = "3 per hour;5 per day"


@dataclass(frozen=True)
class _Counted:
    """One limit item as the script counts it."""

    kind: str
    item: RateLimitItem
    key: str
    breaker: int  # 1-based index of its breaker among the script's keys; 0: none


class PhoneLimits:
    def __init__(self, *, store_client, secret: bytes, settings: Limits,
                 on_event: Callable[..., None] | None = None,
                 clock: Callable[[], float] = time.time, events: EventLog | None = None):
        self._secret = secret
        self.event_log = events or EventLog(sharded=False)  # budget.breaker_tripped goes there
        self._clock = clock
        self.on_event = on_event or (lambda *args, **kwargs: None)
        self._script = register_script(store_client, "count_limits")
        self.items = {
            "start_per_phone": parse_many(settings.start_per_phone),
            "check_per_phone": parse_many(settings.check_per_phone),
            "prefix": parse_many(settings.budget_per_prefix),
            "country": parse_many(settings.budget_per_country),
            "global": parse_many(settings.budget_global),
            "unlock_code": parse_many(UNLOCK_CODE_LIMIT),
        }

    def _hash(self, value: str) -> str:
        return hmac.new(self._secret, value.encode(), hashlib.sha256).hexdigest()[:32]

    def _budget_scopes(self, phone: Phone) -> list[tuple[str, str]]:
        return [("global", "all"), ("country", phone.country),
                ("prefix", self._hash("prefix:" + phone.prefix))]

    @staticmethod
    def breaker_key(kind: str, scope: str) -> str:
        return f"otp:{BREAKER_TAG}:{kind}:{scope}"

    def _counted(self, tag: str, kind: str, scope: str, breaker: int = 0) -> list[_Counted]:
        return [_Counted(kind, item,
                         f"otp:{tag}:w:{kind}:{scope}:{item.amount}/{item.get_expiry()}",
                         breaker)
                for item in self.items[kind]]

    def count_send(self, phone: Phone, phone_hash: str) -> None:
        """Count one send against the phone's limit and the budgets, or refuse it: a tripped
        breaker, or a limit or budget whose window is full (which trips its breaker)."""
        self._count_sms(phone, "start_per_phone", phone_hash)

    def count_unlock_code(self, phone: Phone, phone_hash: str) -> None:
        """An originator unlock code is an SMS too: counted like a send against the budgets,
        and against a limit of its own (``UNLOCK_CODE_LIMIT``) instead of the phone's."""
        self._count_sms(phone, "unlock_code", phone_hash)

    def _count_sms(self, phone: Phone, own_limit: str, phone_hash: str) -> None:
        scopes = self._budget_scopes(phone)
        counted = [c for index, (kind, scope) in enumerate(scopes, start=1)
                   for c in self._counted(BREAKER_TAG, kind, scope, breaker=index)]
        counted += self._counted(BREAKER_TAG, own_limit, phone_hash)
        self._count([(kind, self.breaker_key(kind, scope)) for kind, scope in scopes], counted)

    def check_windows(self, phone_hash: str) -> tuple[tuple[str, int, int], ...]:
        """The check limit's windows, as (key, amount, window ms), in the phone's slot: the
        check's claim (claim_attempt.lua) counts them, in the same round trip."""
        return tuple((c.key, c.item.amount, c.item.get_expiry() * 1000)
                     for c in self._counted(f"{{{phone_hash[:4]}}}", "check_per_phone",
                                            phone_hash))

    def refuse_check(self, window: int, wait_ms: int) -> None:
        """Raise the refusal for the check limit's ``window``-th item (1-based)."""
        item = self.items["check_per_phone"][window - 1]
        self._refuse(_Counted("check_per_phone", item, "", 0), wait_ms / 1000, False)

    @store_call
    def _count(self, breakers: list[tuple[str, str]], counted: list[_Counted]) -> None:
        """``breakers``: each budget's (kind, breaker key), in the order counted names them."""
        args: list = [int(self._clock() * 1000), len(breakers)]
        for c in counted:
            args += [c.item.amount, c.item.get_expiry() * 1000, c.breaker]
        args.append(DEFAULT)  # the service whose send this is (budget.breaker_tripped)
        count = Count.parse(self._script(
            keys=[*(key for _, key in breakers), *(c.key for c in counted),
                  self.event_log.stream(BREAKERS_TAG)], args=args))
        if count.decision is Counted.TRIPPED:
            kind = breakers[count.index - 1][0]
            raise RateLimited(f"Sending is paused: the {kind} budget is spent.",
                              count.wait_ms / 1000, f"{kind}_budget")
        if count.decision is Counted.REFUSED:
            self._refuse(counted[count.index - 1], count.wait_ms / 1000, count.opened)

    def _refuse(self, counted: _Counted, wait: float, opened: bool) -> None:
        kind, item = counted.kind, counted.item
        self.on_event(Event.LIMIT_HIT, limit=kind)
        if not counted.breaker:
            raise RateLimited(f"Too many requests for this phone number ({item}).",
                              max(1.0, wait), kind, limit=item.amount)
        if opened:
            log.warning("SMS budget breaker tripped", extra={"budget": kind, "limit": str(item)})
            self.on_event(Event.BREAKER_TRIPPED, kind=kind)
        raise RateLimited(f"Sending is paused: the {kind} budget is spent.", wait,
                          f"{kind}_budget", limit=item.amount)


class NoLimits:
    """The null PhoneLimits, for a service built without limits and budgets: every send
    and check counts against nothing."""

    def count_send(self, phone: Phone, phone_hash: str) -> None:
        pass

    def count_unlock_code(self, phone: Phone, phone_hash: str) -> None:
        pass

    def check_windows(self, phone_hash: str) -> tuple:
        return ()  # no window, so claim_attempt.lua never answers 'limited'


NO_LIMITS = NoLimits()
