"""Masks and typed codes."""

from __future__ import annotations

import pytest

from service.verification.codes import matches_mask, normalise_input, validate_mask


@pytest.mark.parametrize(("mask", "ok"), [
    ("######", True), ("NNNNNN", True), ("AAA-###", True), ("### ###", True),
    ("#####", False), ("NNNN", False), ("<###>###", False), ("", False), ("#" * 17, False),
])
def test_masks_need_six_code_characters_and_no_foreign_literals(mask, ok):
    assert (validate_mask(mask) is None) is ok


@pytest.mark.parametrize(("code", "mask", "ok"), [
    ("012345", "######", True), ("12345", "######", False), ("12345a", "######", False),
    ("ab12CD", "NNNNNN", True), ("ABC-123", "AAA-###", True), ("ABC123", "AAA-###", False),
])
def test_a_code_matches_only_the_form_of_its_mask(code, mask, ok):
    assert matches_mask(code, mask) is ok


def test_separators_the_mask_does_not_ask_for_are_ignored():
    assert normalise_input(" 123 456 ", "######") == "123456"
    assert normalise_input("123 456", "### ###") == "123 456"
