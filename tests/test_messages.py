"""The SMS text: what it costs (GSM 03.38 encoding and parts) for every built-in locale,
and the start-up warning for a configured template that costs more than one part."""

from __future__ import annotations

import logging

import pytest

from service.config import load_settings
from service.verification import gsm, messages
from service.verification.codes import MAX_MASK_LENGTH
from tests.test_config import FULL

# The GSM 7-bit default alphabet, row by row as 3GPP TS 23.038 prints it (0x1B = escape).
TABLE_ROWS = [
    "@Δ 0¡P¿p", "£_!1AQaq", '$Φ"2BRbr', "¥Γ#3CScs", "èΛ¤4DTdt", "éΩ%5EUeu", "ùΠ&6FVfv",
    "ìΨ'7GWgw", "òΣ(8HXhx", "ÇΘ)9IYiy", "\nΞ*:JZjz", "Ø\x1b+;KÄkä", "øÆ,<LÖlö", "\ræ-=MÑmñ",
    "Åß.>NÜnü", "åÉ/?O§oà",
]


def test_the_basic_table_is_the_128_characters_of_gsm_03_38_without_the_escape():
    table = {ch for row in TABLE_ROWS for ch in row} - {"\x1b"}
    assert len(table) == 127 and gsm.BASIC == table
    assert gsm.EXTENSION == set("\f^{}\\[~]|€")


@pytest.mark.parametrize("text, cost", [
    ("a" * 160, ("GSM-7", 1)), ("a" * 161, ("GSM-7", 2)), ("a" * 306, ("GSM-7", 2)),
    ("a" * 307, ("GSM-7", 3)), ("€" * 80, ("GSM-7", 1)), ("€" * 81, ("GSM-7", 2)),
    # an escape pair is never split: the € opens the second part, which then overflows
    ("a" * 152 + "€" + "a" * 152, ("GSM-7", 3)),
    ("È", ("UCS-2", 1)), ("È" * 70, ("UCS-2", 1)), ("È" * 71, ("UCS-2", 2)),
    ("a" * 134 + "È", ("UCS-2", 3)), ("😀" * 35, ("UCS-2", 1)), ("😀" * 36, ("UCS-2", 2)),
    ("èéùìòàÄÖÑÜäöñü", ("GSM-7", 1)), ("ÈÀÙ", ("UCS-2", 1)), ("ç", ("UCS-2", 1)),
])
def test_encoding_and_parts_follow_the_gsm_rules(text, cost):
    assert gsm.cost(text) == cost


@pytest.mark.parametrize("locale", sorted(messages.TEMPLATES))
def test_every_built_in_text_fits_one_gsm_7_part_at_the_longest_validity_and_code(locale):
    # OTP_VALIDITY_MINUTES allows at most 60; a mask at most MAX_MASK_LENGTH characters
    text = messages.render(locale, 60).replace(messages.PLACEHOLDER, "N" * MAX_MASK_LENGTH)
    assert gsm.cost(text) == ("GSM-7", 1), text
    assert messages.longest_cost(locale, 60) == ("GSM-7", 1)




@pytest.mark.parametrize("template, encoding, parts", [
    ("È il suo codice: <VERIFICATIONCODE>", "UCS-2", 1),
    ("Ihr Code: <VERIFICATIONCODE> " + "x" * 140, "GSM-7", 2),
    ("Code <VERIFICATIONCODE> ☺ " + "x" * 60, "UCS-2", 2),
])
def test_a_template_that_needs_ucs_2_or_more_parts_starts_with_one_warning_naming_it(
        caplog, template, encoding, parts):
    with caplog.at_level(logging.WARNING, logger="service.config"):
        settings = load_settings({**FULL, "OTP_MESSAGE_TEMPLATE": template})
    assert settings.policy.message_template == template
    warnings = [r.getMessage() for r in caplog.records if "OTP_MESSAGE_TEMPLATE" in r.getMessage()]
    assert len(warnings) == 1
    assert f"{encoding} in {parts} part(s)" in warnings[0]


def test_a_template_that_fits_one_gsm_7_part_starts_without_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="service.config"):
        load_settings({**FULL, "OTP_MESSAGE_TEMPLATE": "Code <VERIFICATIONCODE>, {minutes} min"})
    assert not [r for r in caplog.records if "OTP_MESSAGE_TEMPLATE" in r.getMessage()]
