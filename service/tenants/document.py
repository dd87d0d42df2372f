"""A service's document: the fields an admin sets (contract §7, §8), held to the rules the
environment's values meet, and the :class:`Tenant` they make. No Flask here.

A document holds only overrides, in the contract's JSON names; every field left out falls
back to the deployment's default from the environment. The tenant is built by
``dataclasses.replace`` over the environment's Policy, Limits and PhonePolicy, so a value a
service may set is exactly a value the environment may set (one rule per field, in
:mod:`service.verification.policy`); a bad one is a 422 with field errors in JSON names.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import replace
from datetime import date
from typing import Any
from urllib.parse import urlsplit

import phonenumbers

from service.tenants.schema import EVENT_TYPES, SCHEMA, load  # noqa: F401 (their home here)
from service.verification.errors import ValidationFailed
from service.verification.policy import PolicyError, TestNumber
from service.verification.tenant import DEFAULT, Tenant, twilio_service_sid
from service.webhooks import safety

ID_PATTERN = re.compile(r"\Asv_[0-9a-f]{32}\Z")
# JSON name -> (part of the Tenant, attribute); the part's own rule holds the value
POLICY_FIELDS = {name: ("policy", name) for name in (
    "friendly_name", "originator", "code_mask", "validity_minutes", "max_attempts",
    "resend_cooldown", "max_sends", "templates", "safe_list", "test_numbers",
    "require_end_user_ip", "sms_enabled")}
POLICY_FIELDS.update(allowed_countries=("phones", "allowed_countries"),
                     allow_voip=("phones", "allow_voip"))
LIMIT_FIELDS = {name: name for name in ("start_per_phone", "check_per_phone",
                                        "start_per_end_user_ip", "check_per_end_user_ip",
                                        "start_per_end_user")}
BUDGET_FIELDS = {"per_prefix": "budget_per_prefix", "per_country": "budget_per_country",
                 "total": "budget_total"}
_LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}


NESTED = ("limits", "budgets")


def merge(overrides: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """``patch`` over ``overrides``: limits and budgets field by field, null removes."""
    merged = dict(overrides)
    for name, value in patch.items():
        if name in NESTED and value is not None:
            value = {k: v for k, v in {**merged.get(name, {}), **value}.items() if v is not None}
            if not value:
                merged.pop(name, None)
                continue
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    return merged


def changed_fields(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """The names whose stored value differs (for the audit log: names, never values);
    ``limits`` and ``budgets`` field by field."""
    names = []
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if name in NESTED:
            inner = set(old or {}) | set(new or {})
            names += [f"{name}.{field}" for field in sorted(inner)
                      if (old or {}).get(field) != (new or {}).get(field)]
        elif old != new:
            names.append(name)
    return names


def named_fields(patch: dict[str, Any]) -> list[str]:
    """The names a change asks for (audited when it is refused)."""
    names = []
    for name, value in patch.items():
        if name in NESTED and isinstance(value, dict) and value:
            names += [f"{name}.{inner}" for inner in value]
        else:
            names.append(name)
    return sorted(names)


def build(base: Tenant, service_id: str, overrides: dict[str, Any], secret: bytes) -> Tenant:
    """The service's tenant: ``overrides`` over the environment's ``base``; ValidationFailed
    (422, field errors in JSON names) when a value breaks its field's rule."""
    errors: dict[str, Any] = {}
    parts: dict[str, dict[str, Any]] = {"policy": {}, "phones": {}, "limits": {}}
    for name, (part, attribute) in POLICY_FIELDS.items():
        if name in overrides:
            parts[part][attribute] = _convert(name, overrides[name], errors)
    for group, table in (("limits", LIMIT_FIELDS), ("budgets", BUDGET_FIELDS)):
        for name, attribute in table.items():
            if name in overrides.get(group, {}):
                parts["limits"][attribute] = overrides[group][name]
    _webhook(overrides, errors)
    made = {}
    for part in ("policy", "limits"):
        try:  # the environment's own value where nothing is overridden (parsed limits stay)
            made[part] = (replace(getattr(base, part), **parts[part]) if parts[part]
                          else getattr(base, part))
        except PolicyError as e:
            for attribute, problem in e.problems.items():
                _add(errors, _json_name(part, attribute), problem)
    if errors:
        raise ValidationFailed("Some fields are invalid.", errors=errors)
    events = overrides.get("webhook_events")
    return Tenant(service_id, made["policy"], made["limits"],
                  replace(base.phones, **parts["phones"]) if parts["phones"] else base.phones,
                  name=overrides.get("name") or (DEFAULT if service_id == DEFAULT else service_id),
                  twilio_sid=twilio_service_sid(secret, service_id),
                  webhook_url=overrides.get("webhook_url"),
                  webhook_events=frozenset(events or ()))


def effective(tenant: Tenant) -> dict[str, Any]:
    """Every field's value in force, in the document's JSON names."""
    policy, limits, phones = tenant.policy, tenant.limits, tenant.phones
    values: dict[str, Any] = {"name": tenant.name}
    for name, (part, attribute) in POLICY_FIELDS.items():
        values[name] = getattr({"policy": policy, "phones": phones}[part], attribute)
    values["templates"] = dict(policy.templates)
    values["safe_list"] = list(policy.safe_list)
    values["allowed_countries"] = sorted(phones.allowed_countries)
    values["test_numbers"] = [{"phone": t.phone, "code": t.code,
                               "expires": t.expires.isoformat()}
                              for t in policy.test_numbers.values()]
    values["limits"] = {name: getattr(limits, a) for name, a in LIMIT_FIELDS.items()}
    values["budgets"] = {name: getattr(limits, a) for name, a in BUDGET_FIELDS.items()}
    values["webhook_url"] = tenant.webhook_url
    values["webhook_events"] = sorted(tenant.webhook_events or EVENT_TYPES)
    return values


# -- helpers --------------------------------------------------------------------------------
def _convert(name: str, value: Any, errors: dict) -> Any:
    """JSON to the Policy's or PhonePolicy's own types (lists to tuples and sets)."""
    if name == "safe_list":
        return tuple(value)
    if name == "allowed_countries":
        codes = frozenset(code.upper() for code in value)
        unknown = sorted(codes - phonenumbers.SUPPORTED_REGIONS)
        if unknown:
            _add(errors, name, f"unknown country code {unknown[0]!r}")
        return codes
    if name == "allow_voip" and not isinstance(value, bool):
        _add(errors, name, f"must be true or false, got {value!r}")
        return False
    if name == "test_numbers":
        return {entry["phone"]: TestNumber(entry["phone"], entry["code"],
                                           date.fromisoformat(entry["expires"]))
                for entry in value if date.fromisoformat(entry["expires"]) >= date.today()}
    return value


def check_webhook(values: dict[str, Any], *, allow_private: bool) -> None:
    """At save: a ``webhook_url`` that no delivery could post to (the deliveries' own rule,
    :func:`safety.target`, with this deployment's OTP_WEBHOOK_ALLOW_PRIVATE) is a 422, not
    a day of retries per event. :func:`build` keeps its looser rule, so a service stored
    before still loads."""
    url = values.get("webhook_url")
    if url is None:
        return
    try:
        safety.target(url, allow_private=allow_private)
    except safety.Refused as e:
        raise ValidationFailed("Some fields are invalid.",
                               errors={"webhook_url": [str(e)]}) from None


def _webhook(overrides: dict[str, Any], errors: dict) -> None:
    url = overrides.get("webhook_url")
    if url is None:
        return
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname and _loopback(parts.hostname):
        return
    _add(errors, "webhook_url", "must be an https:// URL (http:// only to a loopback host)")


def _loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _json_name(part: str, attribute: str) -> str:
    if part == "policy":
        return attribute
    for group, table in (("limits", LIMIT_FIELDS), ("budgets", BUDGET_FIELDS)):
        for name, inner in table.items():
            if inner == attribute:
                return f"{group}.{name}"
    return attribute


def _add(errors: dict, name: str, problem: str) -> None:
    """Field errors as every problem has them: a list of messages per field, the field by
    its path (``limits.start_per_phone``, ``test_numbers.0.code``)."""
    errors.setdefault(name, []).append(problem)
