"""SendTokenSMS and VerifyToken: one-time codes generated and checked by the gateway (§7)."""

import hmac
import secrets
import string
from dataclasses import dataclass
from decimal import Decimal

from . import fields
from .codes import envelope
from .delivery import notification_urls

PLACEHOLDER = "<VERIFICATIONCODE>"
DEFAULT_MASK = "NNNN"
DEFAULT_VALIDITY = Decimal(5)  # minutes
# docs/gateway.md §7.1 A: only these three are special; generated letters are upper case.
_MASK_ALPHABETS = {
    "#": string.digits,
    "A": string.ascii_uppercase,
    "N": string.ascii_uppercase + string.digits,
}


@dataclass
class Token:
    code: str
    case_sensitive: bool
    expires_at: float
    verified: bool = False

    def matches(self, attempt: str) -> bool:
        expected, given = self.code, attempt
        if not self.case_sensitive:
            expected, given = expected.casefold(), given.casefold()
        return hmac.compare_digest(expected.encode(), given.encode())


def generate_code(mask: str) -> str:
    """A code for the mask: `#` digit, `A` letter, `N` letter or digit, the rest literal."""
    return "".join(
        secrets.choice(_MASK_ALPHABETS[ch]) if ch in _MASK_ALPHABETS else ch for ch in mask
    )


def render(template: str, code: str) -> str:
    """The SMS text: the template with the code in place, or only the code.

    As the gateway does it: docs/gateway.md §7.1.
    """
    return template.replace(PLACEHOLDER, code) if PLACEHOLDER in template else code


def send_token_sms(sim, body: dict) -> dict:
    """Text a code to each recipient and remember it per (number, TokenReference)."""
    targets = fields.recipients(body.get("Recipients"))
    sender = sim.sender(body.get("Originator"), required=False)
    template = fields.text(body, "MessageData", "11")
    reference = fields.text(body, "TokenReference", "11", numbers=True)
    validity = fields.positive_number(body.get("TokenValidity"), "11", DEFAULT_VALIDITY)
    mask = fields.text(body, "TokenMask", "11") or DEFAULT_MASK
    chosen = fields.text(body, "VerificationCode", "11", numbers=True)
    case_sensitive = fields.flag(body.get("TokenCaseSensitive"), "11")
    urls = notification_urls(body)
    codes = [chosen or generate_code(mask) for _ in targets]
    texts = [render(template, code) for code in codes]
    sim.charge(sum(fields.message_parts(text) for text in texts))
    expires_at = sim.now() + float(validity) * 60
    for (phone, trn), code, text in zip(targets, codes, texts, strict=True):
        # A new token for the same number and reference replaces the old one (§7.1 A).
        sim.tokens[(phone, reference)] = Token(code, case_sensitive, expires_at)
        extra = {"code": code, "token_reference": reference, "trn": trn}
        sim.record_message(phone, text, "SendTokenSMS", sender or phone, **extra)
        sim.deliveries.submit(phone, trn, urls)
    return envelope("1")


def verify_token(sim, body: dict) -> dict:
    """1 right code, 37 wrong, 38 unknown or expired; a verified token answers again (§7.2)."""
    number = body.get("PhoneNumber")
    if not isinstance(number, str) or not number.strip():
        return envelope("20")
    reference = fields.text(body, "TokenReference", "11", numbers=True)
    attempt = fields.text(body, "VerificationCode", "11", default=None, numbers=True)
    key = (fields.normalise_phone(number), reference)
    token = sim.tokens.get(key)
    if token is None or sim.now() >= token.expires_at:
        sim.tokens.pop(key, None)
        return envelope("38")
    if token.verified:
        # Observed gateway behaviour: any code "succeeds" again; optionally 39.
        return envelope(sim.repeat_verify_code)
    if not token.matches(attempt):
        return envelope("37")
    token.verified = True
    return envelope("1")


HANDLERS = {"SendTokenSMS": send_token_sms, "VerifyToken": verify_token}
