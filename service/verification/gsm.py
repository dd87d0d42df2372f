"""How many SMS parts a text needs, and in which encoding (3GPP TS 23.038, "GSM 03.38").

A text whose every character is in the GSM 7-bit default alphabet goes as GSM-7: 160
septets in one SMS, 153 per part of a longer one (the user data header takes the rest); a
character of the extension table costs two septets (an escape, then the character), and
the pair is never split across parts. Any other character sends the whole text as UCS-2:
70 UTF-16 units in one SMS, 67 per part, a surrogate pair never split (3GPP TS 23.040 for
the part sizes). The gateway bills every part as one SMS.
"""

from __future__ import annotations

from typing import NamedTuple

# The default alphabet, in table order (0x1B, the escape to the extension table, left out).
BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
EXTENSION = frozenset("\f^{}\\[~]|€")
SINGLE = {"GSM-7": 160, "UCS-2": 70}
PER_PART = {"GSM-7": 153, "UCS-2": 67}


class Cost(NamedTuple):
    encoding: str  # GSM-7 | UCS-2
    parts: int


def is_gsm7(text: str) -> bool:
    return all(ch in BASIC or ch in EXTENSION for ch in text)


def _units(text: str, encoding: str) -> list[int]:
    """Each character's size in its encoding's units (septets, or UTF-16 units)."""
    if encoding == "GSM-7":
        return [2 if ch in EXTENSION else 1 for ch in text]
    return [2 if ord(ch) > 0xFFFF else 1 for ch in text]


def cost(text: str) -> Cost:
    """The encoding the text goes in and the number of SMS parts it takes."""
    encoding = "GSM-7" if is_gsm7(text) else "UCS-2"
    units = _units(text, encoding)
    if sum(units) <= SINGLE[encoding]:
        return Cost(encoding, 1)
    parts, used = 1, 0
    for size in units:  # a character that does not fit whole starts the next part
        if used + size > PER_PART[encoding]:
            parts, used = parts + 1, 0
        used += size
    return Cost(encoding, parts)
