"""What verifications may do, as frozen values: the policy of sends and checks, and the
limits and budgets that count them. No Flask, no environment here.

Each field states its default and its rule once, beside it (:func:`rule`); a value is held
to every rule when it is made. So the environment (:mod:`service.config`, which names the
variable in a problem) and a mapping of overrides over the deployment's defaults
(``dataclasses.replace(defaults, **overrides)``, which raises :class:`PolicyError` naming
each bad field) meet the same rules.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from limits import parse_many

from service.gateway.originators import originator_kind
from service.verification.codes import validate_mask

Check = Callable[[Any], "str | None"]  # the problem with a value, or None


class PolicyError(ValueError):
    """Values that break their field's rule; ``problems`` maps each field to its problem."""

    def __init__(self, problems: Mapping[str, str]):
        super().__init__("; ".join(f"{name}: {problem}" for name, problem in problems.items()))
        self.problems = dict(problems)


_KINDS = {int: "a whole number", bool: "true or false", str: "text", tuple: "a list"}


def rule(default: Any = dataclasses.MISSING, check: Check | None = None, *,
         kind: type | None = None, optional: bool = False, **options) -> Any:
    """A field with its rule: a value of ``kind`` (or None if ``optional``) that ``check``
    accepts; ``default_factory`` and the like pass through to dataclasses.field."""
    return field(default=default, metadata={"check": check, "kind": kind, "optional": optional},
                 **options)


def between(low: int, high: int) -> Check:
    return lambda value: (None if low <= value <= high
                          else f"must be between {low} and {high}, got {value}")


def _kind_problem(kind: type | None, value: Any) -> str | None:
    if kind is None:
        return None
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return None
    return f"must be {_KINDS[kind]}, got {value!r}"


def _originator(value: str) -> str | None:
    return (None if originator_kind(value) is not None
            else "must be up to 11 letters/digits or an E.164 number like +41791234567")


def _template(value: str) -> str | None:
    return None if "<VERIFICATIONCODE>" in value else "must contain <VERIFICATIONCODE>"


def _friendly_name(value: str) -> str | None:
    return None if 1 <= len(value) <= 30 else "must be 1 to 30 characters"


_LANGUAGE = re.compile(r"\A[a-z]{2,3}\Z")


def _templates(value: Mapping[str, str]) -> str | None:
    for locale, text in value.items():
        if not isinstance(locale, str) or not isinstance(text, str):
            return "must map locales to texts"
        if not _LANGUAGE.match(locale):
            # a verification's text is chosen by its language (de-CH → de): a key like
            # en-US or EN would be kept and never used
            return f"{locale}: must be a lower-case language code like en or de"
        if "<VERIFICATIONCODE>" not in text:
            return f"{locale}: must contain <VERIFICATIONCODE>"
    return None


# at least six digits: a shorter prefix (+417: every Swiss mobile) would take a country's
# numbers out of the pumping budgets
_SAFE_ENTRY = re.compile(r"\A\+[1-9][0-9]{5,14}\Z")


def _safe_list(value: tuple[str, ...]) -> str | None:
    bad = [entry for entry in value if not isinstance(entry, str) or not _SAFE_ENTRY.match(entry)]
    return (None if not bad else
            f"entries must be E.164 numbers or prefixes of at least 6 digits like +4179123, "
            f"got {bad[0]!r}")


def _limit(value: str) -> str | None:
    try:
        parsed = parse_many(value)
    except ValueError:
        parsed = []
    return None if parsed else f"must be limit notation like '5 per hour', got {value!r}"


@dataclass(frozen=True)
class TestNumber:
    """A number that gets a fixed code and no SMS, until its date."""

    phone: str
    code: str
    expires: date


class _Checked:
    """Every field held to its rule when the value is made (by replace() too)."""

    def __post_init__(self) -> None:
        problems = {f.name: problem for f in dataclasses.fields(self)
                    if (problem := self.problem(f.name, getattr(self, f.name)))}
        if problems:
            raise PolicyError(problems)

    @classmethod
    def problem(cls, name: str, value: Any) -> str | None:
        """What is wrong with ``value`` for the field ``name``, or None."""
        meta = cls.__dataclass_fields__[name].metadata
        if value is None and meta.get("optional"):
            return None
        problem = _kind_problem(meta.get("kind"), value)
        if problem or meta.get("check") is None:
            return problem
        return meta["check"](value)

    @classmethod
    def default(cls, name: str) -> Any:
        spec = cls.__dataclass_fields__[name]
        if spec.default_factory is not dataclasses.MISSING:
            return spec.default_factory()
        return None if spec.default is dataclasses.MISSING else spec.default


@dataclass(frozen=True)
class Policy(_Checked):
    """How codes are sent and checked."""

    originator: str = rule(check=_originator, kind=str)
    code_mask: str = rule("######", validate_mask, kind=str)
    validity_minutes: int = rule(10, between(1, 60), kind=int)  # the default and the maximum
    max_attempts: int = rule(5, between(1, 10), kind=int)
    resend_cooldown: int = rule(30, between(0, 3600), kind=int)  # s; doubles after each send
    max_sends: int = rule(5, between(1, 10), kind=int)
    max_failures_per_phone: int = rule(10, between(1, 100), kind=int)  # NIST: at most 100
    sms_enabled: bool = rule(True, kind=bool)
    message_template: str | None = rule(None, _template, kind=str, optional=True)
    test_numbers: Mapping[str, TestNumber] = rule(default_factory=dict, repr=False)  # by E.164
    # issue 17 (services): a service's name in its texts ({service}), its texts per
    # locale, the numbers exempt from budgets and breakers, and whether a start or check
    # must say which end user it is for
    friendly_name: str | None = rule(None, _friendly_name, kind=str, optional=True)
    templates: Mapping[str, str] = rule(default_factory=dict, check=_templates)
    safe_list: tuple[str, ...] = rule((), _safe_list, kind=tuple)
    require_end_user_ip: bool = rule(False, kind=bool)


@dataclass(frozen=True)
class Limits(_Checked):
    """Limits and budgets, in the ``limits`` library's notation ("5 per hour;10 per day").

    The phone's and the end user's limits and the budgets are counted by the domain
    (budgets.PhoneLimits); the per-client one by the HTTP layer, per request. The end-user
    defaults are chosen for a login flow: a person signs in a few times a day, a household
    or an office shares one address (raise them behind carrier-grade NAT).
    """

    start_per_phone: str = rule("5 per hour;10 per day", _limit, kind=str)
    # the end user the caller names (end_user_ip), never the calling backend (issue 17)
    start_per_end_user_ip: str = rule("10 per hour;50 per day", _limit, kind=str)
    check_per_phone: str = rule("30 per hour", _limit, kind=str)
    per_client: str = rule("6000 per minute", _limit, kind=str)
    budget_per_prefix: str = rule("50 per hour", _limit, kind=str)
    budget_per_country: str = rule("1000 per hour", _limit, kind=str)
    budget_global: str = rule("5000 per hour;50000 per day", _limit, kind=str)
    # issue 17: limits on the end user the caller names (end_user_ip, end_user_id), and a
    # service's own cap on all its sends (None: only the deployment's budget_global)
    check_per_end_user_ip: str = rule("50 per hour;200 per day", _limit, kind=str)
    start_per_end_user: str = rule("10 per hour;20 per day", _limit, kind=str)
    budget_total: str | None = rule(None, _limit, kind=str, optional=True)
