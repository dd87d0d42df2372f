"""Reading request fields the way the gateway does, turning bad input into status codes.

Every reader either returns a clean value or raises `Refusal(code)`; handlers read all their
fields before they change any state, so a refused request leaves no trace.
"""

import re
from decimal import Decimal, InvalidOperation

from service.verification import gsm

from .codes import Refusal

# docs/gateway.md §9 A: international numbers only, spaces ignored, "00" or "+" prefix.
_PHONE = re.compile(r"(?:\+|00)[1-9]\d{6,14}")
# docs/gateway.md §8: up to 11 characters; XML allowed [A-Za-z0-9!@], clients also use spaces.
_ALPHANUMERIC = re.compile(r"[A-Za-z0-9 !@.\-]{1,11}")
# A sender that looks like an international number is a numeric originator (needs unlocking).
_NUMERIC = re.compile(r"(?:\+|00)\d+")
_URL = re.compile(r"https?://\S+", re.IGNORECASE)

MAX_RECIPIENTS = 1000  # docs/gateway.md §5.1 (X, HI)
MAX_TEXT = 1000  # docs/gateway.md §11 A

_TRUE_WORDS = {"true", "1"}
_FALSE_WORDS = {"false", "0"}


def normalise_phone(value) -> str | None:
    """`+41791234567` for any accepted spelling (spaces, `00` prefix), else None."""
    if not isinstance(value, str):
        return None
    compact = value.replace(" ", "")
    if not _PHONE.fullmatch(compact):
        return None
    return "+" + compact[2:] if compact.startswith("00") else compact


def text(body: dict, name: str, code: str, default: str | None = "", numbers=False) -> str:
    """A string field; absent/null gives `default` (None: required). Numbers only if allowed."""
    value = body.get(name)
    if value is None:
        if default is None:
            raise Refusal(code)
        return default
    if isinstance(value, str):
        return value
    if numbers and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise Refusal(code)


def flag(value, code: str, default: bool = False) -> bool:
    """Booleans as clients send them: true/"true"/"True"/"1"/1 (docs/gateway.md §11)."""
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str) and value.strip().lower() in _TRUE_WORDS | _FALSE_WORDS:
        return value.strip().lower() in _TRUE_WORDS
    raise Refusal(code)


def positive_number(value, code: str, default: Decimal | None = None) -> Decimal:
    """A finite number > 0 given as a JSON number or a numeric string."""
    if (value is None or value == "") and default is not None:
        return default
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise Refusal(code)
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation as e:
        raise Refusal(code) from e
    if not number.is_finite() or number <= 0:
        raise Refusal(code)
    return number


def recipients(value) -> list[tuple[str, str | None]]:
    """(number, TRN or None) pairs from an array or a `;`/`,` separated string.

    Invalid entries are dropped; none left is code 20 (docs/gateway.md §9 A).
    """
    if isinstance(value, str):
        entries = re.split(r"[;,]", value)
    elif isinstance(value, list):
        entries = [entry for entry in value if isinstance(entry, str)]
    else:
        raise Refusal("20")
    found = []
    for entry in entries:
        number, _, trn = entry.strip().partition(":")
        phone = normalise_phone(number)
        if phone is not None:
            found.append((phone, trn.strip() or None))
    if not found:
        raise Refusal("20")
    if len(found) > MAX_RECIPIENTS:
        raise Refusal("11")
    return found


def originator(value) -> tuple[str, str]:
    """("alpha", sender) or ("numeric", normalised number); anything else is code 10."""
    if not isinstance(value, str) or not value.strip():
        raise Refusal("10")
    compact = value.replace(" ", "")
    if _NUMERIC.fullmatch(compact):
        phone = normalise_phone(compact)
        if phone is None:
            raise Refusal("10")
        return "numeric", phone
    if _ALPHANUMERIC.fullmatch(value):
        return "alpha", value
    raise Refusal("10")


def notification_url(body: dict, name: str, code: str) -> str | None:
    """An optional callback URL: http(s), at most 200 characters (docs/gateway.md §6.4)."""
    value = text(body, name, code)
    if value == "":
        return None
    if len(value) > 200 or not _URL.fullmatch(value):
        raise Refusal(code)
    return value


def message_parts(message: str, force_gsm: bool = False) -> int:
    """SMS parts the text needs (docs/gateway.md §5.3 A); empty or over-long text is code 11."""
    if not message or len(message) > MAX_TEXT:
        raise Refusal("11")
    if force_gsm:  # what has no GSM-7 form is sent as "?"
        message = "".join(ch if gsm.is_gsm7(ch) else "?" for ch in message)
    return gsm.cost(message).parts
