"""Phone numbers: parse, normalise to E.164, and refuse what cannot or must not get an SMS.

Normalising before anything else means every spelling of a number shares one verification,
one limit counter and one lockout (docs/security.md 12).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers
from phonenumbers import PhoneNumberType

from service.verification.errors import CountryNotAllowed, InvalidPhone, PhoneNotSmsCapable

_SPELLING = re.compile(r"\A[0-9+() .\-/]{3,32}\Z")
SMS_CAPABLE = {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE}
TYPE_NAMES = {
    PhoneNumberType.FIXED_LINE: "fixed line",
    PhoneNumberType.TOLL_FREE: "toll-free",
    PhoneNumberType.PREMIUM_RATE: "premium-rate",
    PhoneNumberType.SHARED_COST: "shared-cost",
    PhoneNumberType.VOIP: "VoIP",
    PhoneNumberType.PERSONAL_NUMBER: "personal",
    PhoneNumberType.PAGER: "pager",
    PhoneNumberType.UAN: "UAN",
    PhoneNumberType.VOICEMAIL: "voicemail",
    PhoneNumberType.UNKNOWN: "unknown",
}


@dataclass(frozen=True)
class Phone:
    e164: str
    country: str

    @property
    def prefix(self) -> str:
        """The number without its last four digits: the unit of SMS-pumping velocity."""
        return self.e164[:-4]


@dataclass(frozen=True)
class PhonePolicy:
    default_region: str | None = None
    allowed_countries: frozenset[str] = frozenset()
    allow_voip: bool = False

    def parse(self, raw: str) -> Phone:
        """Normalise ``raw`` or raise the problem that says why it is refused."""
        number = _parse(raw, self.default_region)
        country = phonenumbers.region_code_for_number(number) or "ZZ"
        number_type = phonenumbers.number_type(number)
        allowed = SMS_CAPABLE | ({PhoneNumberType.VOIP} if self.allow_voip else set())
        if number_type not in allowed:
            kind = TYPE_NAMES.get(number_type, "this kind of")
            raise PhoneNotSmsCapable(f"A {kind} number cannot receive verification codes.")
        if self.allowed_countries and country not in self.allowed_countries:
            raise CountryNotAllowed(f"Numbers from {country} are not accepted here.")
        e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        return Phone(e164, country)

    def normalise(self, raw: str) -> str:
        """``raw`` in E.164, read as :meth:`parse` reads it but without the policy's
        refusals: a number texted once is still found after the policy changed."""
        number = _parse(raw, self.default_region)
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _parse(raw: str, default_region: str | None) -> phonenumbers.PhoneNumber:
    if not isinstance(raw, str) or not _SPELLING.match(raw.strip()):
        raise InvalidPhone("The phone number contains characters a number cannot have.")
    text = raw.strip()
    if text.startswith("00"):
        text = "+" + text[2:]
    if not text.startswith("+") and default_region is None:
        raise InvalidPhone("Give the phone number in international format, e.g. +41791234567.")
    try:
        number = phonenumbers.parse(text, None if text.startswith("+") else default_region)
    except phonenumbers.NumberParseException:
        raise InvalidPhone("The phone number could not be read.") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone("The phone number is not a valid number.")
    return number


def mask_phone(e164: str) -> str:
    """``+41791234567`` → ``+417*******67``: enough to recognise, not enough to call."""
    if len(e164) < 8:
        return "*" * len(e164)
    return e164[:4] + "*" * (len(e164) - 6) + e164[-2:]
