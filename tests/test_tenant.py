"""The service (tenant) value and the policy fields issue 17 adds: each held to its rule."""

from __future__ import annotations

import dataclasses

import pytest

from service.verification.phones import PhonePolicy
from service.verification.policy import Limits, Policy, PolicyError
from service.verification.tenant import DEFAULT, Tenant

BASE = Policy(originator="Test")


@pytest.mark.parametrize(("field", "value"), [
    ("friendly_name", ""), ("friendly_name", "x" * 31),
    ("templates", {"en": "no placeholder"}),
    ("safe_list", ("4179123",)), ("safe_list", ("+41 79",)), ("safe_list", ["+4179123"]),
    # a prefix of every Swiss mobile would take the country out of the pumping budgets
    ("safe_list", ("+417",)), ("safe_list", ("+41791",)),
    # a text is chosen by the verification's language: these keys would never be used
    ("templates", {"en-US": "Code <VERIFICATIONCODE>"}),
    ("templates", {"EN": "<VERIFICATIONCODE>"}),
])
def test_a_bad_service_field_is_refused_naming_it(field, value):
    with pytest.raises(PolicyError) as refused:
        dataclasses.replace(BASE, **{field: value})
    assert set(refused.value.problems) == {field}


def test_good_service_fields_are_kept():
    policy = dataclasses.replace(BASE, friendly_name="Acme Login",
                                 safe_list=("+417912", "+41791234567"),
                                 templates={"de": "Code: <VERIFICATIONCODE>"},
                                 require_end_user_ip=True)
    assert policy.safe_list == ("+417912", "+41791234567") and policy.require_end_user_ip
    with pytest.raises(PolicyError):
        dataclasses.replace(Limits(), budget_total="lots")
    assert dataclasses.replace(Limits(), budget_total="100 per day").budget_total


def test_the_default_service_scopes_by_key_a_managed_one_by_service():
    default = Tenant(DEFAULT, BASE, Limits(), PhonePolicy())
    managed = dataclasses.replace(default, id="sv_" + "a" * 32)
    assert default.owner("web") == "web" != default.owner("app")
    assert managed.owner("web") == managed.owner("app") == managed.id


def test_twilio_sids_are_stable_distinct_and_shaped_like_twilios():
    import re

    from service.verification.tenant import twilio_account_sid, twilio_service_sid
    secret = b"s" * 32
    sid = twilio_service_sid(secret, DEFAULT)
    assert re.fullmatch(r"VA[0-9a-f]{32}", sid) and sid == twilio_service_sid(secret, DEFAULT)
    assert sid != twilio_service_sid(secret, "sv_" + "0" * 32) != twilio_service_sid(b"t", DEFAULT)
    assert re.fullmatch(r"AC[0-9a-f]{32}", twilio_account_sid(secret))
