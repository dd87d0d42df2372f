"""Phone numbers: every spelling of a number is one E.164 number; unsendable ones refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.verification.errors import CountryNotAllowed, InvalidPhone, PhoneNotSmsCapable
from service.verification.phones import PhonePolicy, mask_phone

POLICY = PhonePolicy()


@pytest.mark.parametrize("spelling", [
    "+41791234567", "+41 79 123 45 67", "0041791234567", "+41 (79) 123-45-67", " +41791234567 ",
])
def test_international_spellings_normalise_to_e164(spelling):
    assert POLICY.parse(spelling).e164 == "+41791234567"


def test_national_format_needs_a_default_region():
    with pytest.raises(InvalidPhone):
        POLICY.parse("079 123 45 67")
    assert PhonePolicy(default_region="CH").parse("079 123 45 67").e164 == "+41791234567"


@pytest.mark.parametrize(("number", "error"), [
    ("+41 900 123 456", PhoneNotSmsCapable),    # premium rate
    ("+41 800 123 456", PhoneNotSmsCapable),    # toll free
    ("+41 840 123 456", PhoneNotSmsCapable),    # shared cost
    ("+41 44 668 18 00", PhoneNotSmsCapable),   # fixed line
    ("+41 79 123", InvalidPhone),
    ("+41791234567\nX-Injected: 1", InvalidPhone),
    ("call me maybe", InvalidPhone),
    ("+999 123456789", InvalidPhone),
])
def test_numbers_that_cannot_or_must_not_receive_sms_are_refused(number, error):
    with pytest.raises(error):
        POLICY.parse(number)


def test_countries_outside_the_allow_list_are_refused():
    policy = PhonePolicy(allowed_countries=frozenset({"CH"}))
    assert policy.parse("+41791234567").country == "CH"
    with pytest.raises(CountryNotAllowed):
        policy.parse("+491701234567")


def test_the_prefix_is_the_number_without_its_last_four_digits():
    assert POLICY.parse("+41791234567").prefix == "+4179123"


def test_a_masked_phone_keeps_only_the_country_and_the_last_two_digits():
    assert mask_phone("+41791234567") == "+417******67"


@given(subscriber=st.integers(min_value=0, max_value=9_999_999),
       spacing=st.sampled_from(["{cc}{n}", "{cc} {n}", "00{c}{n}", "{cc}-{n}", "{cc} ({n})"]))
def test_every_spelling_of_a_swiss_mobile_number_maps_to_one_key(subscriber, spacing):
    national = f"79{subscriber:07d}"
    text = spacing.format(cc="+41", c="41", n=national)
    assert POLICY.parse(text).e164 == f"+41{national}"
