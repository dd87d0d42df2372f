"""Which sender ids ASPSMS takes (docs/gateway.md §8): up to 11 characters ([A-Za-z0-9!@]
documented, spaces, dots and hyphens in use), or a phone number that must be unlocked."""

from __future__ import annotations

import re

_ALPHANUMERIC = re.compile(r"\A[A-Za-z0-9 !@.-]{1,11}\Z")
_E164 = re.compile(r"\A\+[1-9][0-9]{6,14}\Z")


def originator_kind(originator: str) -> str | None:
    """``alphanumeric``, ``numeric``, or None when the gateway would refuse it."""
    if _E164.match(originator):
        return "numeric"
    if _ALPHANUMERIC.match(originator) and not originator.isdigit():
        return "alphanumeric"
    return None
