"""Phone limits, end-user limits and SMS-pumping budgets, decided where the phone is known.

The per-client limit is Flask-Limiter's, in the HTTP layer. The limits here need the
normalised number, the verification or the end user the caller names, which only the
domain has, and they are the service's (tenant's) own, handed in per call:

* sends to one phone (``start_per_phone``) and checks against one phone
  (``check_per_phone``, counted by the check's claim, claim_attempt.lua), keyed by the
  number's HMAC;
* starts and checks for one end user (``start_per_end_user_ip``, ``check_per_end_user_ip``,
  ``start_per_end_user``), keyed by the HMAC of the end-user IP or id the caller names
  (:mod:`service.verification.end_users`); the calling backend is never an end user;
* budgets per prefix (the number without its last four digits), per country and, if it
  sets one, for all of a service's sends (``budget_total``), and one global budget for
  every send of the deployment. Exhausting a budget trips a breaker that refuses every
  send in that scope for the budget's whole window, then resets by itself. A service's
  budgets and breakers are its own: a pumping wave on one service's signup trips only its
  breakers, never another's, unless the global budget is spent. A safe-listed number
  counts against no budget and passes every breaker (never its phone or end-user limits).

All use the moving window of the ``limits`` library (exact counts across processes, one
list entry per counted request), and ``limits`` parses the notation, once per distinct
Limits value (:func:`limit_items`). The counting itself is one Lua script,
``count_limits.lua``: a send's phone limit, end-user limits, budgets and breakers cost one
round trip, all or nothing (a send refused by its prefix budget spends no global budget).

Key names: the default service keeps the names it had before services existed (an
upgraded deployment keeps its counts); another service's scopes start with its id.

Redis Cluster: one script's keys share a slot. A send's limits, budgets and breakers carry
the tag ``{otp-breakers}`` (sends cost money: their rate is far below one node's); a
check's phone limit the phone's own tag, like its verification; a check's end-user IP
limit a tag of the IP's HMAC (``{ip<4 hex>}``), never the phone's: it is counted beside
the check's read, in the same round trip (:meth:`VerificationStore.read_along`).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from limits import RateLimitItem, parse_many

from service.errors import RateLimited
from service.events import Event
from service.storage import store_call
from service.verification import keys
from service.verification.decisions import Count, Counted
from service.verification.end_users import NO_END_USER, EndUser
from service.verification.event_log import BREAKERS_TAG, EventLog
from service.verification.phones import Phone
from service.verification.policy import Limits
from service.verification.scripts import register_script
from service.verification.tenant import DEFAULT, Tenant
from service.verification.uncount import CountedSend, Uncount

log = logging.getLogger(__name__)
BREAKER_TAG = "{" + BREAKERS_TAG + "}"  # one slot: a send's limits, budgets and breakers
# Originator unlock codes to one number: an operator needs one, maybe a retry; more is abuse.
UNLOCK_CODE_LIMIT = "3 per hour;5 per day"
_UNLOCK_ITEMS = parse_many(UNLOCK_CODE_LIMIT)
# each counted kind: the Limits field it is read from
FIELDS = {"start_per_phone": "start_per_phone", "check_per_phone": "check_per_phone",
          "prefix": "budget_per_prefix", "country": "budget_per_country",
          "global": "budget_global", "total": "budget_total",
          "start_per_end_user_ip": "start_per_end_user_ip",
          "check_per_end_user_ip": "check_per_end_user_ip",
          "start_per_end_user": "start_per_end_user"}
REFUSALS = {  # a refusal's words, per limit (the budgets: "Sending is paused")
    "start_per_phone": "Too many codes for this phone number",
    "unlock_code": "Too many codes for this phone number",
    "check_per_phone": "Too many checks for this phone number",
    "start_per_end_user_ip": "Too many codes for this end user's IP address",
    "check_per_end_user_ip": "Too many checks for this end user's IP address",
    "start_per_end_user": "Too many codes for this end user",
}


@functools.lru_cache(maxsize=256)
def limit_items(limits: Limits) -> dict[str, list[RateLimitItem]]:
    """Every limit of ``limits`` parsed, per kind (FIELDS; an unset budget_total: none).
    A service's Limits is one frozen value, so its requests parse nothing."""
    return {kind: parse_many(getattr(limits, name)) if getattr(limits, name) else []
            for kind, name in FIELDS.items()}


def scoped(service: str, scope: str) -> str:
    """A service's own scope of a limit: the default service's is the scope itself."""
    return scope if service == DEFAULT else f"{service}/{scope}"


@dataclass(frozen=True)
class _Counted:
    """One limit item as the script counts it."""

    kind: str
    item: RateLimitItem
    key: str
    breaker: int  # 1-based index of its breaker among the script's keys; 0: none


@dataclass(frozen=True)
class Counting:
    """One run of count_limits.lua, made but not yet run: a check runs it beside its read."""

    script: object  # the registered count_limits script (its sha)
    breakers: tuple[tuple[str, str], ...]  # each budget's (kind, breaker key)
    counted: tuple[_Counted, ...]
    keys: tuple[str, ...]
    args: tuple
    country: str = ""  # the phone's, and the service counting, for a tripped breaker's event
    service: str = DEFAULT


class PhoneLimits:
    def __init__(self, *, store_client, secret: bytes,
                 on_event: Callable[..., None] | None = None,
                 clock: Callable[[], float] = time.time, events: EventLog | None = None):
        self._secret = secret
        self.event_log = events or EventLog.off(store_client)  # budget.breaker_tripped
        self._clock = clock
        self.on_event = on_event or (lambda *args, **kwargs: None)
        self._script = register_script(store_client, "count_limits")
        self.take_back = Uncount(store_client)  # a send the gateway surely did not carry out

    def _hash(self, value: str) -> str:
        return keys.hmac32(self._secret, value)

    def _budget_scopes(self, tenant: Tenant, phone: Phone) -> list[tuple[str, str]]:
        """(kind, scope) of the budgets a send counts against, the deployment's first."""
        own = [("total", tenant.id)] if tenant.limits.budget_total else []
        return [("global", "all"), *own, ("country", scoped(tenant.id, phone.country)),
                ("prefix", scoped(tenant.id, self._hash("prefix:" + phone.prefix)))]

    @staticmethod
    def breaker_key(kind: str, scope: str) -> str:
        return f"otp:{BREAKER_TAG}:{kind}:{scope}"

    @staticmethod
    def _counted(items: list[RateLimitItem], tag: str, kind: str, scope: str,
                 breaker: int = 0) -> list[_Counted]:
        return [_Counted(kind, item,
                         f"otp:{tag}:w:{kind}:{scope}:{item.amount}/{item.get_expiry()}",
                         breaker)
                for item in items]

    def count_send(self, tenant: Tenant, phone: Phone, phone_hash: str,
                   end_user: EndUser = NO_END_USER, *, safe: bool = False) -> CountedSend:
        """Count one send against the phone's and the end user's limits and the budgets, or
        refuse it: a tripped breaker, or a limit or budget whose window is full (which trips
        its breaker). ``safe``: a safe-listed number, past every budget and breaker. What it
        counted, for :attr:`take_back`."""
        items = limit_items(tenant.limits)
        own = self._counted(items["start_per_phone"], BREAKER_TAG, "start_per_phone",
                            scoped(tenant.id, phone_hash))
        for kind, value in (("start_per_end_user_ip", end_user.ip),
                            ("start_per_end_user", end_user.id)):
            if value:
                own += self._counted(items[kind], BREAKER_TAG, kind, scoped(tenant.id, value))
        scopes = [] if safe else self._budget_scopes(tenant, phone)
        return self._count_sms(tenant, phone, scopes, own)

    def count_unlock_code(self, tenant: Tenant, phone: Phone, phone_hash: str) -> None:
        """An originator unlock code is an SMS too: counted like a send against the budgets,
        and against a limit of its own (``UNLOCK_CODE_LIMIT``) instead of the phone's."""
        own = self._counted(_UNLOCK_ITEMS, BREAKER_TAG, "unlock_code", phone_hash)
        self._count_sms(tenant, phone, self._budget_scopes(tenant, phone), own)

    def _count_sms(self, tenant: Tenant, phone: Phone, scopes: list[tuple[str, str]],
                   own: list[_Counted]) -> CountedSend:
        items = limit_items(tenant.limits)
        counted = [c for index, (kind, scope) in enumerate(scopes, start=1)
                   for c in self._counted(items[kind], BREAKER_TAG, kind, scope, breaker=index)]
        breakers = [(kind, self.breaker_key(kind, scope)) for kind, scope in scopes]
        counting = self._counting(breakers, counted + own, phone.country, tenant.id)
        self._count(counting)
        return CountedSend(tuple(c.key for c in counting.counted), counting.args[0])

    def check_windows(self, tenant: Tenant, phone_hash: str) -> tuple[tuple[str, int, int], ...]:
        """The check limit's windows, as (key, amount, window ms), in the phone's slot: the
        check's claim (claim_attempt.lua) counts them, in the same round trip."""
        return tuple((c.key, c.item.amount, c.item.get_expiry() * 1000)
                     for c in self._counted(limit_items(tenant.limits)["check_per_phone"],
                                            f"{{{phone_hash[:4]}}}", "check_per_phone",
                                            scoped(tenant.id, phone_hash)))

    def refuse_check(self, tenant: Tenant, window: int, wait_ms: int) -> None:
        """Raise the refusal for the check limit's ``window``-th item (1-based)."""
        item = limit_items(tenant.limits)["check_per_phone"][window - 1]
        self._refuse(_Counted("check_per_phone", item, "", 0), wait_ms / 1000, False)

    def end_user_check(self, tenant: Tenant, end_user: EndUser) -> Counting | None:
        """A check's count against the end-user IP limit (None: the caller named no IP), to
        run beside the check's read (store.read_along) and :meth:`decide`. Its keys are in
        a slot of the IP's own, never the phone's."""
        if not end_user.ip:
            return None
        counted = self._counted(limit_items(tenant.limits)["check_per_end_user_ip"],
                                f"{{ip{end_user.ip[:4]}}}", "check_per_end_user_ip",
                                scoped(tenant.id, end_user.ip))
        return self._counting([], counted, service=tenant.id, tag=f"ip{end_user.ip[:4]}")

    def _counting(self, breakers: list[tuple[str, str]], counted: list[_Counted],
                  country: str = "", service: str = DEFAULT, *,
                  tag: str = BREAKERS_TAG) -> Counting:
        """``tag``: the keys' hash tag (without braces), where a tripped breaker's event
        goes (lua/_event.lua); ``service``: whose send it is."""
        args: list = [int(self._clock() * 1000), len(breakers)]
        for c in counted:
            args += [c.item.amount, c.item.get_expiry() * 1000, c.breaker]
        args.append(service)  # whose send this is (budget.breaker_tripped)
        return Counting(self._script, tuple(breakers), tuple(counted),
                        (*(key for _, key in breakers), *(c.key for c in counted),
                         self.event_log.stream(tag)), tuple(args), country, service)

    @store_call
    def _count(self, counting: Counting) -> None:
        self.decide(counting, self._script(keys=list(counting.keys), args=list(counting.args)))

    def decide(self, counting: Counting, answer: list) -> None:
        """Raise the refusal count_limits.lua answered for ``counting``, if it refused."""
        count = Count.parse(answer)
        if count.decision is Counted.TRIPPED:
            kind = counting.breakers[count.index - 1][0]
            raise RateLimited(f"Sending is paused: the {kind} budget is spent.",
                              count.wait_ms / 1000, f"{kind}_budget")
        if count.decision is Counted.REFUSED:
            refused = counting.counted[count.index - 1]
            breaker = counting.breakers[refused.breaker - 1][1] if refused.breaker else ""
            self._refuse(refused, count.wait_ms / 1000, count.opened,
                         (breaker, counting.country, counting.service))

    def _refuse(self, counted: _Counted, wait: float, opened: bool,
                tripped: tuple[str, str, str] = ("", "", DEFAULT)) -> None:
        """``tripped``: the key of the breaker this refusal opens, the phone's country and
        the service, for the event (the dashboard lists the breaker and reads its state)."""
        kind, item = counted.kind, counted.item
        self.on_event(Event.LIMIT_HIT, limit=kind)
        if not counted.breaker:
            raise RateLimited(f"{REFUSALS[kind]} ({item}).", max(1.0, wait), kind,
                              limit=item.amount)
        if opened:
            log.warning("SMS budget breaker tripped", extra={"budget": kind, "limit": str(item)})
            breaker, country, service = tripped
            self.on_event(Event.BREAKER_TRIPPED, kind=kind, breaker=breaker, country=country,
                          service=service)
        raise RateLimited(f"Sending is paused: the {kind} budget is spent.", wait,
                          f"{kind}_budget", limit=item.amount)


class NoLimits:
    """The null PhoneLimits, for a service built without limits and budgets: every send
    and check counts against nothing."""

    def count_send(self, tenant: Tenant, phone: Phone, phone_hash: str,
                   end_user: EndUser = NO_END_USER, *, safe: bool = False) -> None:
        pass

    def take_back(self, counted: CountedSend | None) -> None:
        pass

    def count_unlock_code(self, tenant: Tenant, phone: Phone, phone_hash: str) -> None:
        pass

    def check_windows(self, tenant: Tenant, phone_hash: str) -> tuple:
        return ()  # no window, so claim_attempt.lua never answers 'limited'

    def end_user_check(self, tenant: Tenant, end_user: EndUser) -> None:
        return None


NO_LIMITS = NoLimits()
