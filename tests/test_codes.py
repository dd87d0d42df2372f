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


@pytest.mark.parametrize(("typed", "mask", "spelled"), [
    ("888241", "### ###", "888 241"), ("888-241", "### ###", "888 241"),
    (" 888  241 ", "### ###", "888 241"), ("888 241", "###-###", "888-241"),
    ("888241", "###-###", "888-241"), ("ab12cd", "AA-##-AA", "ab-12-cd"),
    ("888\u2013241", "###-###", "888-241"),  # an en dash from a phone's keyboard
    ("88824", "### ###", "88824"), ("8882411", "### ###", "8882411"),
])
def test_typed_separators_are_respelled_the_way_the_mask_groups_the_code(typed, mask, spelled):
    assert normalise_input(typed, mask) == spelled


def test_a_grouped_code_typed_without_its_separator_fits_the_mask():
    for typed in ("888241", "888 241", "888-241"):
        assert matches_mask(normalise_input(typed, "### ###"), "### ###")
    assert not matches_mask(normalise_input("88824", "### ###"), "### ###")
