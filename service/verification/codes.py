"""Code masks: what the gateway generates from a mask, and whether typed input can match it.

Mask semantics are the gateway's (docs/gateway.md §7.1): ``#`` one digit, ``A`` one letter,
``N`` one letter or digit; every other character is copied literally. We accept only a
space or a hyphen as literal characters, so a mask can never smuggle text into the SMS.
"""

from __future__ import annotations

import re

CODE_CHARACTERS = {"#": "[0-9]", "A": "[A-Za-z]", "N": "[A-Za-z0-9]"}
LITERALS = " -"
MIN_CODE_CHARACTERS = 6  # NIST SP 800-63B: at least 6 digits
MAX_MASK_LENGTH = 16
_TYPED_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015\u2212]")  # spaces, hyphens and dashes


def validate_mask(mask: str) -> str | None:
    """Return why the mask is not acceptable, or None when it is."""
    if not isinstance(mask, str) or not mask or len(mask) > MAX_MASK_LENGTH:
        return f"must be 1 to {MAX_MASK_LENGTH} characters"
    if any(ch not in CODE_CHARACTERS and ch not in LITERALS for ch in mask):
        return "may contain only #, A, N, spaces and hyphens"
    if sum(ch in CODE_CHARACTERS for ch in mask) < MIN_CODE_CHARACTERS:
        return f"needs at least {MIN_CODE_CHARACTERS} code characters (#, A or N)"
    return None


def normalise_input(code: str, mask: str) -> str:
    """What the user typed, in the mask's own spelling: the code characters in order, with
    the mask's separators where the mask has them. People type ``888241``, ``888 241`` or
    ``888-241`` for a code texted as ``888 241``; the gateway compares the exact text."""
    compact = _TYPED_SEPARATORS.sub("", code)
    positions = [ch in CODE_CHARACTERS for ch in mask]
    if len(compact) != sum(positions) or all(positions):
        return compact  # the mask test decides; no separators to put back
    typed = iter(compact)
    return "".join(next(typed) if is_code else literal
                   for is_code, literal in zip(positions, mask, strict=True))


def matches_mask(code: str, mask: str) -> bool:
    """Whether ``code`` could have been generated from ``mask`` (letters in either case)."""
    pattern = "".join(CODE_CHARACTERS.get(ch, re.escape(ch)) for ch in mask)
    return re.fullmatch(pattern, code) is not None
